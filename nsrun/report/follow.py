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


def watch(state: StateRoot, name: str | None, pods: list[dict[str, Any]],
          output: str | None = None) -> None:
    """Print each pod again each time its READY, STATUS or RESTARTS changes (a row, or with
    ``output`` one document per change: a JSON object per line, YAML after ``---``, a name);
    a named pod is followed until it is deleted or its supervisor ends."""
    from nsrun.core.printer import get_row
    from nsrun.errors import StateError

    seen = {p["metadata"]["name"]: _key(p, get_row(p, time.time())) for p in pods}
    while True:
        time.sleep(0.1)
        try:
            current = read_pods(state, name)
        except StateError:
            return
        for p in current:
            row = get_row(p, time.time())
            if seen.get(row[0]) != _key(p, row):
                seen[row[0]] = _key(p, row)
                print_change(p, row, output)
        if name and not supervisor_alive(state.pod(name)):
            return


def _key(pod: dict[str, Any], row: tuple) -> tuple:
    return (*row[1:4], pod.get("metadata", {}).get("deletionTimestamp"))


def print_change(pod: dict[str, Any], row: tuple, output: str | None) -> None:
    """One watch event: the row, or the object in ``output``'s format."""
    if output is None or output == "wide":
        print("   ".join(row), flush=True)
        return
    from nsrun.report.output import print_stream

    print_stream(pod, output)


def follow(f, paths: PodPaths, container: str, attempt: int, emit=None) -> None:
    """Pass what the attempt writes to ``emit`` (default: stdout) until it stops running
    (or the pod's supervisor ends)."""
    emit = emit or _stdout
    while True:
        chunk = f.read()
        if chunk:
            emit(chunk)
            continue
        if paths.attempts(container)[-1:] != [attempt] or not supervisor_alive(paths):
            emit(f.read())
            return
        time.sleep(0.1)


def _stdout(chunk: bytes) -> None:
    sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
