"""nsrun's own nftables table: loaded with ``nft -f -``, one atomic transaction per change.

Only the world's table (``ip nsrun`` or ``ip nsrun-<hash>``) is ever written or removed;
the scripts come from ``nsrun.core.proxyrules``. The host's other tables are never listed,
flushed or edited.
"""

from __future__ import annotations

import os
import subprocess

from nsrun.core.proxyrules import delete_script
from nsrun.errors import HostError

NFT_CANDIDATES = ("/usr/sbin/nft", "/sbin/nft")


def nft_binary() -> str:
    """``nft``'s path (``shutil.which`` would bring bz2 and lzma into the supervisor)."""
    path = os.environ.get("PATH", os.defpath).split(os.pathsep)
    found = next((p for p in (*NFT_CANDIDATES, *(os.path.join(d, "nft") for d in path if d))
                  if os.path.isfile(p) and os.access(p, os.X_OK)), None)
    if not found:
        raise HostError("nftables: the nft command is missing (apt-get install nftables)")
    return found


def load(script: str) -> None:
    """Run ``script`` as one ``nft -f`` transaction (all or nothing)."""
    proc = subprocess.run([nft_binary(), "-f", "-"], input=script, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        detail = " ".join(proc.stderr.split())[:400]
        raise HostError("nftables: loading the rules failed", detail=detail)


def remove_table(table: str) -> None:
    load(delete_script(table))

