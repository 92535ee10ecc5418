"""nsrun's own nftables table: loaded with ``nft -f -``, one atomic transaction per change.

Only the world's table (``ip nsrun`` or ``ip nsrun-<hash>``) is ever written or removed;
the scripts come from ``nsrun.core.proxyrules``. The host's other tables are never listed,
flushed or edited.
"""

from __future__ import annotations

import shutil
import subprocess

from nsrun.core.proxyrules import delete_script
from nsrun.errors import HostError

NFT_CANDIDATES = ("/usr/sbin/nft", "/sbin/nft")


def nft_binary() -> str:
    found = next((p for p in NFT_CANDIDATES if shutil.which(p)), None) or shutil.which("nft")
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

