"""What the supervisor has observed of a pod's containers (pure data, no I/O).

The runtime records facts here (an attempt started, exited, failed to start); the planner
and status derivation read them. Times are seconds since the epoch, passed in by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

# Terminated reasons, as containerd reports them.
COMPLETED = "Completed"
ERROR = "Error"
OOM_KILLED = "OOMKilled"
START_ERROR = "StartError"

# Waiting reasons, as the kubelet reports them.
POD_INITIALIZING = "PodInitializing"
CONTAINER_CREATING = "ContainerCreating"
CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"


class Attempt(msgspec.Struct, frozen=True):
    """One run of a container: running while ``finished_at`` is None."""

    started_at: float
    finished_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""
    message: str = ""
    pid: int = 0
    gen: int = 0
    started: bool = True
    ready: bool = True
    unhealthy: str = ""
    restart_requested: bool = False
    post_start_pending: bool = False  # its postStart hook has not returned yet

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def succeeded(self) -> bool:
        """Exited 0 and was not OOM-killed (an OOM kill is a failure even with code 0)."""
        return not self.running and self.exit_code == 0 and self.reason != OOM_KILLED

    def finish(self, at: float, exit_code: int, signal: int | None = None,
               reason: str = "", message: str = "") -> Attempt:
        """This attempt, terminated."""
        if not reason:
            reason = COMPLETED if exit_code == 0 else ERROR
        return msgspec.structs.replace(self, finished_at=at, exit_code=exit_code, signal=signal,
                       reason=reason, message=message)


class ContainerObs(msgspec.Struct, frozen=True):
    """Every attempt of one container, plus a start failure that produced no attempt
    (``waiting_reason``, e.g. ``ErrImageNeverPull``)."""

    attempts: tuple[Attempt, ...] = ()
    waiting_reason: str = ""
    waiting_message: str = ""
    failed_starts: int = 0
    last_failed_start: float | None = None

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def running(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].running

    @property
    def restart_count(self) -> int:
        return max(0, len(self.attempts) - 1)

    def started(self, attempt: Attempt) -> ContainerObs:
        return msgspec.structs.replace(self, attempts=self.attempts + (attempt,), waiting_reason="",
                       waiting_message="", failed_starts=0, last_failed_start=None)

    def finished(self, attempt: Attempt) -> ContainerObs:
        return msgspec.structs.replace(self, attempts=self.attempts[:-1] + (attempt,))

    def updated(self, **changes) -> ContainerObs:
        """The current attempt with ``changes`` (probe results, restart requests)."""
        return self.finished(msgspec.structs.replace(self.attempts[-1], **changes))

    def in_gen(self, gen: int) -> ContainerObs:
        """Only the attempts made in sandbox generation ``gen`` (a pod restart starts over:
        initialization is judged on the current sandbox alone, as the kubelet does)."""
        kept = tuple(a for a in self.attempts if a.gen == gen)
        if len(kept) == len(self.attempts):
            return self
        return msgspec.structs.replace(self, attempts=kept)

    def start_failed(self, reason: str, message: str, at: float) -> ContainerObs:
        return msgspec.structs.replace(self, waiting_reason=reason, waiting_message=message,
                       failed_starts=self.failed_starts + 1, last_failed_start=at)


class Observed(msgspec.Struct, frozen=True):
    """The pod as observed: start time, per-container history, and pod-level facts."""

    start_time: float
    containers: Mapping[str, ContainerObs] = msgspec.field(default_factory=dict)
    deleting: bool = False
    killed_reason: str = ""
    killed_message: str = ""
    sandbox_gen: int = 0
    restarting: bool = False
    network_pending: str = ""  # why the pod has no network yet (it waits; "" when it has)
    network_failures: int = 0
    network_failed_at: float | None = None

    def get(self, name: str) -> ContainerObs:
        """The container's attempts in the current sandbox generation."""
        return self.containers.get(name, ContainerObs()).in_gen(self.sandbox_gen)

    def history(self, name: str) -> ContainerObs:
        """Every attempt of the container, across pod restarts."""
        return self.containers.get(name, ContainerObs())

    def with_container(self, name: str, obs: ContainerObs) -> Observed:
        return msgspec.structs.replace(self, containers={**self.containers, name: obs})
