"""What a foreground ``nsrun run`` tells while the pod runs: a ``get`` row per status change,
a failed container's reason and last log lines (before ``--rm`` can take them), what it does
when stopped (Ctrl-C), and the pod's final phase.

Rows go to ``rows_out`` (stdout for ``-w``, stderr on a terminal, else nowhere); the rest to
stderr, the final phase of a pod that succeeded only with ``final`` (a terminal or ``-w``: a
script's successful run stays silent, a failed one never is). ``RunReport`` is the
supervisor's ``on_change`` hook: it only reads the Pod object and the pod's log files.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from nsrun.state import PodPaths

LAST_LINES = 5


class RunReport:
    def __init__(self, paths: PodPaths, rows_out=None, tell: bool = True,
                 final: bool = True) -> None:
        self.paths, self.tell, self.final, self.rows_out = paths, tell, final, rows_out
        self.last: dict[str, Any] | None = None
        self.row: tuple[str, ...] | None = None
        self.told: set[tuple[str, int]] = set()
        self.stopping = False

    def __call__(self, pod: dict[str, Any]) -> None:
        from nsrun.core.printer import get_row

        self.last = pod
        row = get_row(pod, time.time())
        if self.rows_out is not None and row[1:4] != (self.row or ())[1:4]:
            print("   ".join(row), file=self.rows_out, flush=True)
        self.row = row
        if self.tell:
            self._failures(pod)
            self._stopping(pod)

    def _failures(self, pod: dict[str, Any]) -> None:
        status = pod.get("status", {})
        for kind, key in (("init container", "initContainerStatuses"),
                          ("container", "containerStatuses")):
            for cs in status.get(key, []):
                term = cs.get("state", {}).get("terminated") or {}
                mark = (cs["name"], cs.get("restartCount", 0))
                if term and term.get("exitCode", 0) != 0 and mark not in self.told:
                    self.told.add(mark)
                    self._tell_failure(kind, cs["name"], term)

    def _tell_failure(self, kind: str, name: str, term: dict[str, Any]) -> None:
        why = term.get("reason") or "Error"
        lines = [f'nsrun: {kind} "{name}" failed: {why}, exit code {term.get("exitCode")}']
        if term.get("message"):
            lines.append(f"  message: {term['message'].rstrip()}")
        tail = self._log_tail(name)
        if tail:
            lines.append(f"  last {len(tail)} log line(s):")
            lines += [f"    {line}" for line in tail]
        print("\n".join(lines), file=sys.stderr, flush=True)

    def _log_tail(self, container: str) -> list[str]:
        attempts = self.paths.attempts(container)
        if not attempts:
            return []
        try:
            with open(self.paths.log(container, attempts[-1]), "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 8192))
                data = f.read()
        except OSError:
            return []
        return data.decode(errors="replace").splitlines()[-LAST_LINES:]

    def _stopping(self, pod: dict[str, Any]) -> None:
        if self.stopping or not pod.get("metadata", {}).get("deletionTimestamp"):
            return
        self.stopping = True
        grace = pod.get("spec", {}).get("terminationGracePeriodSeconds", 30)
        print(f'nsrun: stopping pod "{self.paths.name}": preStop hooks, then SIGTERM to '
              f"each container (grace period {grace}s; sidecars last)...",
              file=sys.stderr, flush=True)

    def finish(self, code: int) -> None:
        """The final line: the pod's phase and nsrun's exit code."""
        if not self.tell or self.last is None or (code == 0 and not self.final):
            return
        phase = self.last.get("status", {}).get("phase", "Unknown")
        print(f'nsrun: pod "{self.paths.name}" {phase} (exit code {code})', file=sys.stderr,
              flush=True)
