"""``nsrun logs``: which container and attempt, then the lines as kubectl prints them
(``--tail``, ``--since``, ``--timestamps``, ``--prefix``, ``--all-containers``, ``-f``).

Containers write straight into their log file (no relay process), so a stored line has no
time of its own: ``--timestamps`` shows the attempt's start for stored lines and the time
they were read for followed ones, and ``--since`` keeps an attempt whose log was written in
that window (whole attempts, not lines).
"""

from __future__ import annotations

import os
import sys
import time

import msgspec

from nsrun.errors import BadRequest, UsageError
from nsrun.state import PodPaths


class LogRequest(msgspec.Struct):
    container: str | None = None
    previous: bool = False
    attempt: int | None = None
    follow: bool = False
    tail: int = -1
    timestamps: bool = False
    since: float | None = None
    all_containers: bool = False
    prefix: bool = False


def containers_of(pod: dict) -> tuple[list[str], list[str]]:
    """(init container names, app container names) of a Pod object."""
    spec = pod.get("spec", {})
    return ([c["name"] for c in spec.get("initContainers", [])],
            [c["name"] for c in spec.get("containers", [])])


def choose_containers(pod: dict, name: str, req: LogRequest) -> list[str]:
    """The containers to show, kubectl's messages when the choice is wrong."""
    inits, apps = containers_of(pod)
    if req.all_containers:
        return inits + apps
    if req.container:
        if req.container not in inits + apps:
            raise BadRequest(f"container {req.container} is not valid for pod {name}")
        return [req.container]
    default = pod.get("metadata", {}).get("annotations", {}).get(
        "kubectl.kubernetes.io/default-container")
    if default in apps:
        return [default]
    if len(apps) != 1:
        raise UsageError(f"a container name must be specified for pod {name}, choose one "
                         f"of: [{' '.join(apps)}] or one of the init containers: "
                         f"[{' '.join(inits)}]")
    return apps


def show(paths: PodPaths, req: LogRequest) -> int:
    from nsrun.report import logs, statusfile

    pod = statusfile.read(paths) or {}
    names = choose_containers(pod, paths.name, req)
    started = _start_times(pod)
    for container in names:
        if req.all_containers and not paths.attempts(container):
            continue  # kubectl skips a container that has no log yet
        attempt = logs.choose_attempt(paths, container, req.previous, req.attempt)
        path = paths.log(container, attempt)
        if req.since is not None and _mtime(path) < time.time() - req.since:
            continue
        prefix = f"[pod/{paths.name}/{container}] " if req.prefix else ""
        with open(path, "rb") as f:
            _write(_tail(f.read(), req.tail), prefix, req.timestamps and started.get(container))
            if req.follow and len(names) == 1:
                from nsrun.report.follow import follow

                follow(f, paths, container, attempt,
                       lambda chunk, p=prefix: _write(chunk, p, req.timestamps and time.time()))
    return 0


def _start_times(pod: dict) -> dict[str, float]:
    from nsrun.core.printer import parse_time

    out = {}
    status = pod.get("status", {})
    for cs in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
        state = cs.get("state", {})
        when = (state.get("running") or state.get("terminated") or {}).get("startedAt")
        if when:
            out[cs["name"]] = parse_time(when) or 0.0
    return out


def _mtime(path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _tail(data: bytes, n: int) -> bytes:
    """The last ``n`` lines (``-1``: all), kubectl's ``--tail``."""
    if n < 0:
        return data
    if n == 0:
        return b""
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-n:])


def _write(data: bytes, prefix: str, stamp: float | bool | None) -> None:
    if not data:
        return
    if prefix or stamp:
        from nsrun.core.status import rfc3339

        head = (prefix + (rfc3339(stamp) + " " if stamp else "")).encode()
        data = b"".join(head + line for line in data.splitlines(keepends=True))
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
