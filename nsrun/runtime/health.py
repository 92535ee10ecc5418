"""Probes and lifecycle hooks of a pod's running containers, driven from the supervisor loop.

``Health`` decides when each check runs (``nsrun.core.probing``), hands it to the worker
threads (``nsrun.runtime.probes``) and turns results into facts on the container's attempt
(``started``, ``ready``, ``unhealthy``) and the kubelet's events (``Unhealthy``,
``FailedPostStartHook``, ``FailedPreStopHook``). postStart runs to completion before the
container counts as started (and before its probes begin); preStop runs before SIGTERM, and
once a container is being stopped only its readiness probe goes on (as the kubelet's).
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from nsrun.core import probing
from nsrun.core.spec import Container
from nsrun.report.events import WARNING
from nsrun.runtime import probes


class Executor(Protocol):
    """What ``Health`` uses of its pod's executor (``runtime.executor.Executor``)."""

    pod: Any
    containers: dict[str, tuple[Container, str]]
    sandbox: Any

    def current_attempt(self, name: str) -> Any: ...
    def update_attempt(self, name: str, **changes: Any) -> None: ...
    def emit_for(self, name: str, now: float, kind: str, reason: str, message: str) -> None: ...
    def exec_check(self, name: str, argv: list[str], timeout: float | None
                   ) -> tuple[bool, str]: ...
    def pre_stop_done(self, name: str, now: float) -> None: ...
    def stopping(self, name: str) -> bool: ...


def _hook_command(container: Container, which: str) -> list[str] | None:
    handler = getattr(container.lifecycle, which, None) if container.lifecycle else None
    return handler.exec.command if handler is not None and handler.exec is not None else None


class Health:
    """Probe state and in-flight hooks for one pod."""

    def __init__(self, ex: Executor) -> None:
        self.ex = ex
        containers = list(ex.pod.spec.init_containers) + list(ex.pod.spec.containers)
        self.checks = probes.Checks() if probes.needs_checks(containers) else None
        self.states: dict[str, list[probing.ProbeState]] = {}

    @property
    def fd(self) -> int | None:
        return self.checks.read_fd if self.checks else None

    @staticmethod
    def initial_flags(container: Container) -> dict[str, bool]:
        """An attempt starts not ``started`` while a postStart hook or startup probe is
        pending, and not ``ready`` while it has a readiness probe."""
        hook = _hook_command(container, "post_start") is not None
        return {"started": not (container.startup_probe or hook),
                "ready": container.readiness_probe is None, "post_start_pending": hook}

    def container_started(self, name: str, container: Container, token: float) -> None:
        command = _hook_command(container, "post_start")
        if command is not None and self.checks is not None:
            self.checks.submit(("postStart", name, token),
                               lambda: self.ex.exec_check(name, command, None))
        elif container.startup_probe or container.liveness_probe or container.readiness_probe:
            self.states[name] = probing.probes_for(container, token,
                                                   self.ex.containers[name][1] == "init container")

    def container_stopped(self, name: str) -> None:
        self.states.pop(name, None)

    def has_pre_stop(self, container: Container) -> bool:
        """Whether the container has a preStop hook that can run."""
        return self.checks is not None and _hook_command(container, "pre_stop") is not None

    def pre_stop(self, name: str, container: Container, token: float) -> bool:
        """Start the preStop hook; True when SIGTERM must wait for it."""
        command = _hook_command(container, "pre_stop")
        if command is None or self.checks is None:
            return False
        self.checks.submit(("preStop", name, token),
                           lambda: self.ex.exec_check(name, command, None))
        return True

    def run_due(self, now: float) -> None:
        """Launch every probe that is due."""
        for name, states in self.states.items():
            attempt = self.ex.current_attempt(name)
            if attempt is None:
                continue
            stopping = self.ex.stopping(name)
            for state in probing.due(states, attempt.started, now, stopping):
                self._launch(name, state, attempt.started_at)

    def _launch(self, name: str, state: probing.ProbeState, token: float) -> None:
        assert self.checks is not None
        states = self.states[name]
        states[states.index(state)] = msgspec.structs.replace(state, in_flight=True)
        self.checks.submit(("probe", name, state.kind, token), self._check(name, state))

    def _check(self, name: str, state: probing.ProbeState):
        container, _ = self.ex.containers[name]
        probe, timeout = state.probe, state.timeout
        kind = probes.handler_of(probe)
        if kind == "exec":
            command = (probe.exec.command or []) if probe.exec else []
            return lambda: self.ex.exec_check(name, command, timeout)
        net = self.ex.sandbox.ns_fds["net"]
        if kind == "httpGet":
            return lambda: probes.http_check(net, probe.http_get, container, timeout)
        return lambda: probes.tcp_check(net, probe.tcp_socket, container, timeout)

    def next_wake(self) -> float | None:
        times = []
        for name, states in self.states.items():
            attempt = self.ex.current_attempt(name)
            if attempt is not None:
                t = probing.next_wake(states, attempt.started, self.ex.stopping(name))
                if t is not None:
                    times.append(t)
        return min(times, default=None)

    def on_results(self, now: float) -> None:
        """Apply every result that arrived; stale ones (an earlier attempt) are dropped."""
        assert self.checks is not None
        for result in self.checks.drain():
            kind, name, *rest = result.key
            attempt = self.ex.current_attempt(name)
            if attempt is None or attempt.started_at != rest[-1]:
                continue
            if kind == "probe":
                self._probe_result(name, rest[0], result, now)
            elif kind == "postStart":
                self._post_start_result(name, result, now)
            else:
                self._pre_stop_result(name, result, now)

    def _probe_result(self, name: str, kind: str, result: probes.Result, now: float) -> None:
        states = self.states.get(name, [])
        state = next((s for s in states if s.kind == kind), None)
        if state is None:
            return
        new, verdict = probing.record(state, result.ok, now)
        states[states.index(state)] = new
        if not result.ok:
            self.ex.emit_for(name, now, WARNING, "Unhealthy",
                             f"{kind} probe failed: {result.message}".rstrip())
        changes = {k: v for k, v in (("started", verdict.started), ("ready", verdict.ready))
                   if v is not None}
        if verdict.kill:
            changes["unhealthy"] = verdict.kill
        if changes:
            self.ex.update_attempt(name, **changes)

    def _post_start_result(self, name: str, result: probes.Result, now: float) -> None:
        container, kind = self.ex.containers[name]
        if result.ok:
            self.states[name] = probing.probes_for(container, self.ex.current_attempt(name)
                                                   .started_at, kind == "init container")
            self.ex.update_attempt(name, post_start_pending=False,
                                   **({"started": True} if container.startup_probe is None
                                      else {}))
            return
        self.ex.emit_for(name, now, WARNING, "FailedPostStartHook",
                         f"PostStartHook failed: {result.message}".rstrip())
        self.ex.update_attempt(name, unhealthy="FailedPostStartHook", post_start_pending=False)

    def _pre_stop_result(self, name: str, result: probes.Result, now: float) -> None:
        if not result.ok:
            self.ex.emit_for(name, now, WARNING, "FailedPreStopHook",
                             f"PreStopHook failed: {result.message}".rstrip())
        self.ex.pre_stop_done(name, now)

    def close(self) -> None:
        if self.checks is not None:
            self.checks.close()
