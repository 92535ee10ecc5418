"""What one pod costs in system calls that wait on something else: ``fsync`` (a journal
commit when the state root is on a disk) and ``execve`` of helper programs (run by
``bench/bench.py``; root, ``strace``).

One ``nsrun run --rm`` of the benchmark's pod under ``strace -f``, counting each ``fsync``/
``fdatasync`` by the directory it went to (the pod's state, the world's network state, the
log directory) and each ``execve`` that is neither nsrun itself nor a container's command.
Counts, not times: they do not depend on the load, so two runs compare exactly.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

_SYNC = re.compile(r"\b(?:fsync|fdatasync)\(\d+<([^>]*)>")
_EXEC = re.compile(r'\bexecve\("([^"]+)"')


def filesystem(path: str) -> str:
    """The filesystem type of ``path`` (``stat -f``): ``tmpfs``, ``ext2/ext3``, ..."""
    out = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def count(cmd: list[str], own: tuple[str, ...]) -> dict:
    """``fsync`` calls by place and helper ``execve``s of one run of ``cmd``; ``own``: the
    programs that are not helpers (nsrun, the containers' commands)."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as trace:
        subprocess.run(["strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync,execve",
                        "-o", trace.name, *cmd], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        text = trace.read()
    places: dict[str, int] = {}
    for path in _SYNC.findall(text):
        place = ("log" if "/log" in path else "network" if "/network" in path
                 else "pod" if "/pods/" in path else "other")
        places[place] = places.get(place, 0) + 1
    helpers = [p for p in _EXEC.findall(text) if os.path.basename(p) not in own]
    return {"fsync": sum(places.values()), "fsync_by_place": places,
            "helpers": sorted(set(helpers)), "helper_execs": len(helpers)}


def measure(base: list[str], manifests: dict[str, Path]) -> dict[str, dict]:
    own = tuple(os.path.basename(c) for c in base[:1]) + ("true", "python3", "nsrun")
    return {name: count(base + ["run", "--rm", str(m)], own) for name, m in manifests.items()}


def report(counts: dict[str, dict], state_dir: str) -> None:
    print(f"\nsystem calls of one pod (2 init + 1 app, run --rm), state root on "
          f"{filesystem(state_dir)}:")
    for name, c in counts.items():
        where = ", ".join(f"{k} {v}" for k, v in sorted(c["fsync_by_place"].items()))
        print(f"  {name:>8}: {c['fsync']} fsync ({where}); helper programs run: "
              f"{c['helper_execs']} {' '.join(c['helpers'])}".rstrip())
