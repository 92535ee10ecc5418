"""Following a pod over time: ``get -w`` rows and ``logs -f`` output."""

from __future__ import annotations

import sys
import time
from typing import Any

from nsrun.state import PodPaths, StateRoot, supervisor_alive


def read_pods(state: StateRoot, name: str | None) -> list[dict[str, Any]]:
    """The Pod objects (status.json) of one pod or of all."""
    from nsrun.report import statusfile

    names = [name] if name else state.pod_names()
    return [p for p in (statusfile.read(state.existing(n)) for n in names) if p]


def watch(state: StateRoot, name: str | None, pods: list[dict[str, Any]]) -> None:
    """Print a row each time a pod's READY, STATUS or RESTARTS changes; a named pod is
    followed until it is deleted or its supervisor ends."""

    from nsrun.core.printer import get_row
    from nsrun.errors import StateError

    seen = {p["metadata"]["name"]: get_row(p, time.time())[1:4] for p in pods}
    while True:
        time.sleep(0.1)
        try:
            current = read_pods(state, name)
        except StateError:
            return
        for p in current:
            row = get_row(p, time.time())
            if seen.get(row[0]) != row[1:4]:
                seen[row[0]] = row[1:4]
                print("   ".join(row), flush=True)
        if name and not supervisor_alive(state.pod(name)):
            return


def follow(f, paths: PodPaths, container: str, attempt: int) -> None:
    """Print what the attempt writes until it stops running (or the pod's supervisor ends)."""


    while True:
        chunk = f.read()
        if chunk:
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            continue
        if paths.attempts(container)[-1:] != [attempt] or not supervisor_alive(paths):
            sys.stdout.buffer.write(f.read())
            return
        time.sleep(0.1)


