"""kubectl's ``get pods`` row: NAME READY STATUS RESTARTS AGE (pure).

The STATUS strings are what users pattern-match on (``Init:0/2``, ``Init:CrashLoopBackOff``,
``PodInitializing``, ``Running``, ``Completed``), so they follow kubectl's printPod exactly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

COLUMNS = ("NAME", "READY", "STATUS", "RESTARTS", "AGE")


def human_duration(seconds: float) -> str:
    """kubectl's HumanDuration (apimachinery ``duration.HumanDuration``): 45s, 3m20s, 15m,
    5h30m, 10h, 3d5h, 30d, 2y30d, 9y."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    s = max(0, s)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return _two(minutes, "m", s % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return _two(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return _two(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return _two(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


def parse_time(text: str | None) -> float | None:
    """An RFC 3339 time (``2026-11-25T02:01:37Z``) as epoch seconds; None when absent or
    not such a time."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


def _term_reason(term: dict[str, Any], prefix: str) -> str:
    if term.get("reason"):
        return prefix + term["reason"]
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode')}"


def _init_reason(statuses: list[dict], sidecars: set[str]) -> tuple[str | None, int, int]:
    """(``Init:…`` reason or None when initialized, restarts, ready sidecars)."""
    restarts, ready = 0, 0
    for i, cs in enumerate(statuses):
        restarts += cs.get("restartCount", 0)
        state = cs.get("state", {})
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if cs["name"] in sidecars and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if term:
            return _term_reason(term, "Init:"), restarts, ready
        if wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            return f"Init:{wait['reason']}", restarts, ready
        return f"Init:{i}/{len(statuses)}", restarts, ready
    return None, restarts, ready


def _app_reason(reason: str, statuses: list[dict]) -> tuple[str, int, int, bool]:
    """kubectl scans app containers last to first; the first in spec order wins."""
    restarts, ready, running = 0, 0, False
    for cs in reversed(statuses):
        restarts += cs.get("restartCount", 0)
        state = cs.get("state", {})
        wait, term = state.get("waiting"), state.get("terminated")
        if wait and wait.get("reason"):
            reason = wait["reason"]
        elif term:
            reason = _term_reason(term, "")
        elif cs.get("ready"):
            running = True
            ready += 1
    return reason, restarts, ready, running


def _pod_ready(status: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in status.get("conditions", []))


def get_row(pod: dict[str, Any], now: float) -> tuple[str, str, str, str, str]:
    """One ``nsrun get`` row from a full Pod object (metadata, spec, status as JSON)."""
    status = pod.get("status", {})
    spec = pod.get("spec", {})
    sidecars = {c["name"] for c in spec.get("initContainers", [])
                if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers", [])) + len(sidecars)
    reason = status.get("reason") or status.get("phase", "Unknown")
    init_reason, restarts, ready = _init_reason(status.get("initContainerStatuses", []), sidecars)
    if init_reason:
        reason = init_reason
    else:
        sidecar_restarts = sum(cs.get("restartCount", 0)
                               for cs in status.get("initContainerStatuses", [])
                               if cs["name"] in sidecars)
        reason, app_restarts, app_ready, running = _app_reason(
            reason, status.get("containerStatuses", []))
        restarts, ready = sidecar_restarts + app_restarts, ready + app_ready
        if reason == "Completed" and running:
            reason = "Running" if _pod_ready(status) else "NotReady"
    if pod.get("metadata", {}).get("deletionTimestamp") and status.get("phase") not in (
            "Succeeded", "Failed"):
        reason = "Terminating"
    if status.get("phase") == "Unknown":
        reason = "Unknown"  # no supervisor: what the containers do is not known
    start = parse_time(status.get("startTime")) or now
    return (pod.get("metadata", {}).get("name", ""), f"{ready}/{total}", reason,
            str(restarts), human_duration(now - start))


def table(rows: list[tuple[str, ...]], header: tuple[str, ...] = COLUMNS) -> str:
    """Columns padded like kubectl's tabwriter (three spaces between columns)."""
    all_rows = [header, *rows]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    lines = ["   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in all_rows]
    return "\n".join(lines)
