"""Removing what dead worlds left on the host: bridges and nftables tables of state roots
that no longer exist.

A world's bridge carries its state root as its ``ifalias`` and its table names it in its
comment (``nsrun world <root>``). A world whose root has no ``network/config.json`` any more
(its directory was removed while a pod or Service still held the bridge or the table, e.g.
a test's temporary directory after a killed run) can never be cleaned up by its own pods, so
the next world that creates a bridge removes its leftovers. Only ``nsrun-*`` objects whose
recorded root is gone are touched; the default world (``nsrun0``/``nsrun``) is never.
"""

from __future__ import annotations

import os
import re

from nsrun.core.proxyrules import WORLD_COMMENT

SYS_NET = "/sys/class/net"


def _dead(root: str) -> bool:
    return bool(root) and os.path.isabs(root) and not os.path.exists(
        os.path.join(root, "network", "config.json"))


def dead_bridges() -> list[str]:
    out = []
    for name in os.listdir(SYS_NET):
        if not name.startswith("nsrun-") or not os.path.isdir(f"{SYS_NET}/{name}/bridge"):
            continue
        try:
            with open(f"{SYS_NET}/{name}/ifalias") as f:
                root = f.read().strip()
        except OSError:
            continue
        if _dead(root):
            out.append(name)
    return out


def dead_tables() -> list[str]:
    import subprocess

    from nsrun.host.nft import nft_binary

    nft = nft_binary()
    listed = subprocess.run([nft, "list", "tables", "ip"], capture_output=True, text=True)
    out = []
    for name in re.findall(r"^table ip (nsrun-[0-9a-f]{8})$", listed.stdout, re.M):
        text = subprocess.run([nft, "list", "table", "ip", name], capture_output=True,
                              text=True).stdout
        found = re.search(rf'comment "{WORLD_COMMENT}([^"]*)"', text)
        if found and _dead(found.group(1)):
            out.append(name)
    return out


def collect() -> list[str]:
    """Remove dead worlds' bridges and tables; their names."""
    from nsrun.host import nft
    from nsrun.host.rtnl import Rtnl

    bridges, tables = dead_bridges(), dead_tables()
    with Rtnl.open() as rtnl:
        for name in bridges:
            rtnl.delete_link(name)
    for name in tables:
        nft.remove_table(name)
    return sorted(set(bridges) | set(tables))
