"""The durable records a new supervisor re-attaches from: ``observed.json`` (every attempt,
restart count, back-off and the sandbox generation, saved by the supervisor whenever they
change, before status.json) and ``initialized`` (the sandbox generation whose init
containers have all completed). :func:`load` reads them back with the manifest, checking
the options the pod was started with (``supervisor.json``) and the containers' monitor
records (``containers/<c>/<n>.json``, written atomically: a corrupt one is damage, not a
crash) too, and names the file that is torn or corrupt. An empty record is the one
exception: a "launching" record (not durable) that a reboot lost, read as absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from nsrun.core import rules
from nsrun.core.observed import Observed
from nsrun.core.spec import Pod
from nsrun.errors import UsageError
from nsrun.host.monitor import Record
from nsrun.runtime.options import Handoff
from nsrun.state import PodPaths, write_atomic


class Saver:
    """Saves ``observed.json`` (and ``initialized``) when the observed state changed."""

    def __init__(self, paths: PodPaths) -> None:
        self.paths = paths
        self.saved: Observed | None = None
        self.initialized_gen: int | None = None

    def save(self, pod: Pod, observed: Observed) -> bool:
        """True once what is on disk matches ``observed`` (False: a failed write, to be
        tried again)."""
        if observed is self.saved:
            return True
        try:
            write_atomic(self.paths.observed, msgspec.json.encode(observed))
            gen = observed.sandbox_gen
            if self.initialized_gen != gen and rules.initialized(pod, observed):
                write_atomic(self.paths.initialized, f"{gen}\n".encode())
                self.initialized_gen = gen
        except OSError:
            return False
        self.saved = observed
        return True


class Saved(msgspec.Struct):
    """What ``recover`` reads back."""

    pod: Pod
    observed: Observed | None
    initialized_gen: int | None
    created: str | None  # the pod's creationTimestamp, as first published


def load(paths: PodPaths) -> Saved:
    """The pod's records; ``UsageError`` (exit 2) naming a torn or corrupt file."""
    pod = _decode(paths.manifest, Pod)
    observed = _decode(paths.observed, Observed) if paths.observed.exists() else None
    _decode(paths.handoff, Handoff)  # the options the pod was started with
    for record in sorted(paths.records.glob("*/*.json")):
        if _read(record):  # empty: a "launching" record that a reboot lost
            _decode(record, Record)
    initialized = None
    if paths.initialized.exists():
        text = _read(paths.initialized).decode(errors="replace").strip()
        if not text.isdigit():
            raise _corrupt(paths.initialized, "not a sandbox generation")
        initialized = int(text)
    status = _decode(paths.status, dict) if paths.status.exists() else {}
    created = (status.get("metadata") or {}).get("creationTimestamp")
    return Saved(pod, observed, initialized, created if isinstance(created, str) else None)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise _corrupt(path, err.strerror or "unreadable") from None


def _decode(path: Path, kind: Any) -> Any:
    try:
        return msgspec.json.decode(_read(path), type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise _corrupt(path, str(err)) from None


def _corrupt(path: Path, why: str) -> UsageError:
    return UsageError(f"{path}: torn or corrupt ({why}); nothing was changed (delete the pod "
                      "to remove it)")
