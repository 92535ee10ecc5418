"""Pod events as kubectl shows them: ``Event`` objects built from the pods' ``events.jsonl``
lines, a ``kubectl events`` table (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE), and a feed
that returns only what is new on each poll (``-w``)."""

from __future__ import annotations

import os
import time
from typing import Any

from nsrun.core import stateshape
from nsrun.state import StateRoot

COLUMNS = ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")


def event_object(pod: str, namespace: str, uid: str, index: int,
                 e: dict[str, Any]) -> dict[str, Any]:
    """One stored event as kubectl's ``Event`` (``core/v1``)."""
    from nsrun.core.status import rfc3339

    when = rfc3339(e.get("time", 0.0))
    involved = {"kind": "Pod", "namespace": namespace, "name": pod, "uid": uid,
                "apiVersion": "v1"}
    if e.get("fieldPath"):
        involved["fieldPath"] = e["fieldPath"]
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{pod}.{int(e.get('time', 0) * 1e9):x}.{index}",
                         "namespace": namespace, "creationTimestamp": when},
            "involvedObject": involved, "reason": e.get("reason", ""),
            "message": e.get("message", ""), "type": e.get("type", "Normal"),
            "source": {"component": e.get("source", "nsrun"), "host": os.uname().nodename},
            "firstTimestamp": when, "lastTimestamp": when, "count": e.get("count", 1),
            "reportingComponent": e.get("source", "nsrun"),
            "reportingInstance": os.uname().nodename}


class Feed:
    """The events of some pods (none named: every pod, new ones included), read
    incrementally: each ``poll`` returns the events written since the last one."""

    def __init__(self, state: StateRoot, names: list[str], types: set[str] | None) -> None:
        self.state, self.names, self.types = state, names, types
        self.offsets: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    def poll(self) -> list[dict[str, Any]]:
        out = []
        for name in self.names or self.state.pod_names():
            out += self._new(name)
        return sorted(out, key=lambda ev: ev["lastTimestamp"])

    def _new(self, name: str) -> list[dict[str, Any]]:
        paths = self.state.pod(name)
        try:
            with open(paths.events, "rb") as f:
                f.seek(self.offsets.get(name, 0))
                data = f.read()
        except OSError:
            return []
        complete = data[:data.rfind(b"\n") + 1]
        self.offsets[name] = self.offsets.get(name, 0) + len(complete)
        meta = _meta(paths)
        out = []
        for line in complete.splitlines():
            try:
                e = stateshape.event(line)
            except stateshape.Corrupt:
                continue  # a torn or corrupt line is skipped, not fatal
            self.counts[name] = self.counts.get(name, 0) + 1
            if self.types is None or e["type"] in self.types:
                out.append(event_object(name, meta[0], meta[1], self.counts[name], e))
        return out


def _meta(paths) -> tuple[str, str]:
    from nsrun.report.stateread import manifest

    meta = (manifest(paths) or {}).get("metadata", {})
    return meta.get("namespace") or "default", meta.get("uid") or ""


def row(ev: dict[str, Any], now: float) -> tuple[str, ...]:
    from nsrun.core.printer import human_duration, parse_time

    seen = parse_time(ev["lastTimestamp"]) or now
    obj = f"pod/{ev['involvedObject']['name']}"
    return (human_duration(now - seen), ev["type"], ev["reason"], obj,
            ev["message"].replace("\n", " "))


def print_table(events: list[dict[str, Any]], header: bool) -> None:
    """kubectl events' table (a watch prints rows without the header again)."""
    from nsrun.core.printer import table

    if not events:
        if header:
            print("No events found in default namespace.", flush=True)
        return
    rows = [row(ev, time.time()) for ev in events]
    text = table(rows, COLUMNS)
    print(text if header else "\n".join(text.splitlines()[1:]), flush=True)


def print_stream(events: list[dict[str, Any]], output: str) -> None:
    from nsrun.report.output import print_stream as one

    for ev in events:
        one(ev, output)
