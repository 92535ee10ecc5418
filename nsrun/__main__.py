import sys

from nsrun.cli import main

sys.exit(main())
