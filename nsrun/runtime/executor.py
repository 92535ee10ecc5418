"""The executor: the only place that turns planner actions into side effects.

It starts containers (through the launcher), signals them (SIGTERM, then SIGKILL through the
cgroup after the grace period; a whole pod as ``core.termination`` plans it, through
``podstop``), reaps them by pidfd, and records every fact in ``observed`` and the event log
with the kubelet's reasons and messages.
"""

from __future__ import annotations

import signal

import msgspec

from nsrun.bundle import hardening as confine
from nsrun.bundle.images import ImageStore
from nsrun.core import termination
from nsrun.core.actions import (
    Action,
    KillContainer,
    KillPod,
    RestartPod,
    SetupNetwork,
    StartContainer,
    WakeAt,
)
from nsrun.core.observed import ERR_IMAGE_NEVER_PULL, OOM_KILLED, START_ERROR, Attempt, Observed
from nsrun.core.spec import Container, Pod
from nsrun.errors import BundleError, CgroupError, SpawnError
from nsrun.host.cgroupdriver import PodCgroups
from nsrun.host.sandbox import Sandbox
from nsrun.report import logs
from nsrun.report.events import NORMAL, WARNING, EventLog
from nsrun.runtime import attempts, launcher, podstop
from nsrun.runtime.health import Health
from nsrun.state import PodPaths, write_atomic

MIN_GRACE = termination.MIN_GRACE  # the kubelet never gives less than 2 s before SIGKILL
# the sandbox's own leaf ("_" is no container's): the pause process and the monitors
SANDBOX_LEAF = "_pause"


class Running(msgspec.Struct):
    """A live container process and its monitor (whose exit the supervisor waits for)."""

    name: str
    pid: int
    pidfd: int
    oom_before: int = 0
    kill_at: float | None = None  # a single container's stop (liveness, update): SIGKILL then
    launched: launcher.Launched | None = None
    monitor_pidfd: int = -1
    announced: bool = False  # its ``Killing`` event was emitted
    hook_started: bool = False  # preStop
    hook_done: bool = False
    term_at: float | None = None  # SIGTERM sent
    killed: bool = False  # SIGKILL sent


class Executor:
    """Carries out actions for one pod and keeps ``observed`` up to date."""

    def __init__(self, pod: Pod, paths: PodPaths, sandbox: Sandbox, cgroup: PodCgroups,
                 images: ImageStore, events: EventLog, observed: Observed) -> None:
        self.pod, self.paths, self.sandbox, self.cgroup = pod, paths, sandbox, cgroup
        self.images, self.events, self.observed = images, events, observed
        self.running: dict[str, Running] = {}
        self.grace = float(pod.spec.termination_grace_period_seconds)
        self.forced = False  # delete --grace-period 0: kill at once
        self.termination: termination.Termination | None = None  # the pod is stopping
        self.stop_wake: float | None = None
        self.log_max_attempts, self.log_max_bytes = logs.MAX_ATTEMPTS, logs.MAX_BYTES
        self.log_max_size, self.log_max_files = logs.MAX_SIZE, logs.MAX_FILES
        self.oom_score_adj: dict[str, int] = {}  # per QoS (kubelet), name -> value
        self.containers: dict[str, tuple[Container, str]] = {}
        self.reload(pod)
        self.recreate_sandbox = None  # set by the supervisor: () -> Sandbox
        self.setup_network = None  # set by the supervisor: () -> None, or NoAddress
        self.health = Health(self)

    def reload(self, pod: Pod) -> None:
        """Use an updated spec (``nsrun apply``) for every later start."""
        self.pod = pod
        self.containers = {c.name: (c, kind) for c, kind in _with_kinds(pod)}

    def request_restart(self, name: str, now: float, message: str) -> None:
        """Restart the container whatever the restart policy (its definition changed)."""
        obs = self.observed.history(name)
        if not obs.attempts:  # a start that keeps failing (missing image): retry at once
            self._record(name, msgspec.structs.replace(obs, failed_starts=0,
                                                       last_failed_start=None))
            return
        self._record(name, obs.updated(restart_requested=True))
        self.kill(name, now, message)

    def apply(self, actions: list[Action], now: float) -> float | None:
        """Carry out ``actions``; returns the earliest ``WakeAt`` (or None)."""
        wake = None
        for action in actions:
            if isinstance(action, StartContainer):
                self.start(action.name, now)
            elif isinstance(action, KillContainer):
                self.kill(action.name, now, action.message)
            elif isinstance(action, KillPod):
                self.kill_pod(action, now)
            elif isinstance(action, RestartPod):
                self.restart_pod(now)
            elif isinstance(action, SetupNetwork):
                self.retry_network(now)
            elif isinstance(action, WakeAt):
                wake = action.at if wake is None else min(wake, action.at)
        return wake

    # -- starting ---------------------------------------------------------------------------

    def start(self, name: str, now: float) -> None:
        container, kind = self.containers[name]
        path = _field_path(container, kind)
        try:
            bundle = launcher.resolve_bundle(self.images, container.image)
            plan = launcher.build_plan(self.pod, container, bundle, self.sandbox)
        except launcher.ImageMissing:
            return self._start_failed(name, ERR_IMAGE_NEVER_PULL, _never_pull(container), now,
                                      path)
        except BundleError as err:
            reason = getattr(err, "reason", "CreateContainerError")
            return self._start_failed(name, reason, str(err), now, path)
        for warning in getattr(plan, "warnings", ()):
            self.events.emit(now, WARNING, "Warning", warning, path)
        self._spawn(name, container, kind, self._with_oom_score_adj(name, plan), now, path)

    def _with_oom_score_adj(self, name: str, plan):
        """The kubelet's per-QoS oom_score_adj where the bundle sets none. Lowering it needs
        CAP_SYS_RESOURCE: without it the value is raised to nsrun's own."""
        if plan.confinement.oom_score_adj is not None or name not in self.oom_score_adj:
            return plan
        value = max(self.oom_score_adj[name], _own_oom_score_adj())
        return msgspec.structs.replace(plan, confinement=msgspec.structs.replace(
            plan.confinement, oom_score_adj=value))

    def _spawn(self, name: str, container: Container, kind: str, plan, now: float,
               path: str) -> None:
        obs = self.observed.history(name)
        gen = self.observed.sandbox_gen
        attempt = len(obs.attempts)
        logs.prune(self.paths, name, self.log_max_attempts - 1, self.log_max_bytes)
        leaf = self.cgroup.leaf(name)
        try:
            spec = attempts.monitor_spec(self.paths, name, attempt, self.log_max_size,
                                         self.log_max_files,  # OSError: a full disk
                                         self.cgroup.leaf(SANDBOX_LEAF))
            plan = _with_termination_log(plan, container, logs.termination_file(
                self.paths, name, attempt))
            leaf.set_devices(plan.confinement.device_policy)  # the device allow-list
            if not self.cgroup.enabled:
                plan = confine.without_mknod(plan)  # no device cgroup: nodev and no mknod
            launched = launcher.spawn(plan, self.sandbox, leaf, spec,
                                      confine.keyring_name(self.pod, name))
        except (SpawnError, BundleError, CgroupError, OSError) as err:
            message = str(err.for_container(name, kind) if isinstance(err, SpawnError) else err)
            attempts.launch_failed(self.paths, name, attempt, f"nsrun: {message}\n")
            self._record(name, obs.started(Attempt(now, gen=gen).finish(
                now, 128, None, START_ERROR, message)))
            self.events.emit(now, WARNING, "Failed", f"Error: {message}", path)
            return
        self.running[name] = Running(name, launched.pid, launched.pidfd, leaf.oom_kills(),
                                     launched=launched, monitor_pidfd=launched.monitor_pidfd)
        self._write_pids()
        self._record(name, obs.started(Attempt(now, pid=launched.pid, gen=gen,
                                               **Health.initial_flags(container))))
        self.events.emit(now, NORMAL, "Pulled", f'Container image "{container.image}" '
                         "already present on machine", path)
        self.events.emit(now, NORMAL, "Created", f"Created container: {name}", path)
        self.events.emit(now, NORMAL, "Started", f"Started container {name}", path)
        self.health.container_started(name, container, now)

    def adopt(self, name: str, pid: int, pidfd: int, watch_fd: int) -> None:
        """Supervise again a container an earlier supervisor started (``recover``): its exit
        is seen through ``watch_fd``; probes go on, hooks that ran are not run again. With
        ``pidfd`` -1 it has ended already, and only its monitor (writing the record) is left."""
        from nsrun.core import probing

        container, _ = self.containers[name]
        leaf = self.cgroup.leaf(name)
        launched = self._launched_again(container, pid, pidfd) if pidfd >= 0 else None
        self.running[name] = Running(name, pid, pidfd, leaf.oom_kills(), monitor_pidfd=watch_fd,
                                     launched=launched)
        current = self.current_attempt(name)
        probed = container.startup_probe or container.liveness_probe or container.readiness_probe
        if current is not None and pidfd >= 0 and probed:
            self.health.states[name] = probing.probes_for(container, current.started_at)

    def _launched_again(self, container: Container, pid: int, pidfd: int):
        """The request ``container`` was started with, rebuilt for its exec probes and
        hooks (None when its bundle is gone)."""
        try:
            bundle = launcher.resolve_bundle(self.images, container.image)
            plan = launcher.build_plan(self.pod, container, bundle, self.sandbox)
            leaf = self.cgroup.leaf(container.name)
            req = launcher.request(plan, self.sandbox, leaf.clone_fd, -1, leaf.join_fds,
                                   confine.keyring_name(self.pod, container.name))
        except (launcher.ImageMissing, BundleError):
            return None
        return launcher.Launched(pid, pidfd, req)

    def _start_failed(self, name: str, reason: str, message: str, now: float,
                      path: str) -> None:
        self._record(name, self.observed.history(name).start_failed(reason, message, now))
        self.events.emit(now, WARNING, reason if reason == ERR_IMAGE_NEVER_PULL else "Failed",
                         message, path)

    def _record(self, name: str, obs) -> None:
        self.observed = self.observed.with_container(name, obs)

    def _write_pids(self) -> None:
        """``pids.json``: the containers' pids, for ``nsrun exec`` when there is no pod cgroup
        to find them in (written at each start; an entry of an exited container stays until
        then, and exec checks its parent)."""
        if self.cgroup.enabled:
            return
        write_atomic(self.paths.pids,
                     msgspec.json.encode({n: p.pid for n, p in self.running.items()}),
                     durable=False)

    def current_attempt(self, name: str) -> Attempt | None:
        """The container's running attempt, if it runs."""
        obs = self.observed.history(name)
        return obs.current if obs.running else None

    def update_attempt(self, name: str, **changes) -> None:
        """Record probe and hook results on the running attempt."""
        if self.current_attempt(name) is not None:
            self._record(name, self.observed.history(name).updated(**changes))

    def emit_for(self, name: str, now: float, kind: str, reason: str, message: str) -> None:
        container, ckind = self.containers[name]
        self.events.emit(now, kind, reason, message, _field_path(container, ckind))

    def exec_check(self, name: str, argv: list[str], timeout: float | None) -> tuple[bool, str]:
        """Run ``argv`` inside the running container (probe or hook): (exit 0?, output)."""
        proc = self.running.get(name)
        if proc is None or proc.launched is None:
            return False, "container is not running" if proc is None else \
                "container's bundle is gone: it cannot be entered"
        return launcher.exec_check(proc.launched, argv, self.cgroup.leaf(name), timeout)

    # -- stopping ---------------------------------------------------------------------------

    def kill(self, name: str, now: float, message: str = "") -> None:
        """SIGTERM now; SIGKILL when the grace period ends (see ``kill_overdue``)."""
        proc = self.running.get(name)
        if proc is None or proc.kill_at is not None:
            return
        container, kind = self.containers[name]
        proc.kill_at, proc.announced = now + max(self.grace, MIN_GRACE), True
        self.events.emit(now, NORMAL, "Killing", message or f"Stopping container {name}",
                         _field_path(container, kind))
        current = self.current_attempt(name)
        proc.hook_started = True
        if current is None or not self.health.pre_stop(name, container, current.started_at):
            proc.hook_done = True
            self.terminate(name, now)

    def stopping(self, name: str) -> bool:
        """Whether the container is being stopped (its liveness and startup probes end)."""
        proc = self.running.get(name)
        return proc is not None and (self.termination is not None or proc.kill_at is not None)

    def pre_stop_done(self, name: str, now: float) -> None:
        """The preStop hook returned: SIGTERM for a single stop; the pod's plan decides
        when the whole pod stops."""
        proc = self.running.get(name)
        if proc is not None:
            proc.hook_done = True
            if self.termination is None:
                self.terminate(name, now)

    def terminate(self, name: str, now: float) -> None:
        """SIGTERM now (after the preStop hook, if any)."""
        proc = self.running.get(name)
        if proc is not None:
            proc.term_at = now if proc.term_at is None else proc.term_at
            _signal(proc.pidfd, signal.SIGTERM)

    def sigkill(self, name: str) -> None:
        """SIGKILL the container's processes through its cgroup, and its init by pidfd."""
        proc = self.running.get(name)
        if proc is not None:
            proc.killed = True
            self.cgroup.kill_leaf(name)
            _signal(proc.pidfd, signal.SIGKILL)

    def kill_pod(self, action: KillPod, now: float) -> None:
        """Stop the pod as the kubelet does (``core.termination``): every preStop hook at
        once, SIGTERM to the regular containers, then to the sidecars in reverse order, and
        SIGKILL for what is left at the end of the grace period (at least 2 s after each
        SIGTERM)."""
        if action.reason and not self.observed.killed_reason:
            self.observed = msgspec.structs.replace(self.observed, killed_reason=action.reason,
                                    killed_message=action.message)
            self.events.emit(now, NORMAL, action.reason, action.message)
        if self.termination is None:
            self.termination = termination.begin(now, self.grace, self.forced)
        self.stop_wake = podstop.step(self, self.termination, now)

    def override_grace(self, grace: float, now: float) -> None:
        """A delete's grace period (``--grace-period``): it replaces the pod's, and a
        shorter one shortens a termination under way; 0 kills at once."""
        self.grace, self.forced = grace, grace <= 0
        if self.termination is not None:
            self.termination = termination.shorten(self.termination, now, grace, self.forced)

    def restart_pod(self, now: float) -> None:
        """Everything has stopped: a new sandbox, and initialization starts over."""
        self.events.emit(now, NORMAL, "SandboxChanged",
                         "Pod sandbox changed, it will be killed and re-created.")
        if self.recreate_sandbox is not None:
            self.sandbox = self.recreate_sandbox()
        self.observed = msgspec.structs.replace(self.observed, restarting=False,
                                sandbox_gen=self.observed.sandbox_gen + 1)
        self.termination = self.stop_wake = None

    def network_failed(self, now: float, message: str) -> None:
        """The pod could not get its network: it waits, and says why (the kubelet's
        ``FailedCreatePodSandBox``)."""
        obs = self.observed
        self.observed = msgspec.structs.replace(
            obs, network_pending=message, network_failures=obs.network_failures + 1,
            network_failed_at=now)
        self.events.emit(now, WARNING, "FailedCreatePodSandBox",
                         f"Failed to create pod sandbox: {message}")

    def retry_network(self, now: float) -> None:
        from nsrun.runtime.podnetwork import NoAddress

        try:
            if self.setup_network is not None:
                self.setup_network()
        except NoAddress as err:
            return self.network_failed(now, str(err))
        self.observed = msgspec.structs.replace(self.observed, network_pending="",
                                                network_failures=0, network_failed_at=None)

    def kill_overdue(self, now: float) -> None:
        """SIGKILL every container whose grace period has run out."""
        for proc in list(self.running.values()):
            if proc.kill_at is not None and now >= proc.kill_at and not proc.killed:
                self.sigkill(proc.name)

    def next_deadline(self) -> float | None:
        times = [p.kill_at for p in self.running.values() if p.kill_at is not None]
        if self.termination is not None and self.stop_wake is not None:
            times.append(self.stop_wake)
        return min(times, default=None)

    # -- reaping ----------------------------------------------------------------------------

    def watched_fds(self) -> set[int]:
        """The fds whose readability means a container has ended (its monitor's pidfd)."""
        return {p.monitor_pidfd for p in self.running.values()}

    def reap(self, fd: int, now: float) -> None:
        """Collect an ended container's exit (its monitor's record) and record its attempt."""
        proc = next(p for p in self.running.values() if p.monitor_pidfd == fd)
        obs = self.observed.history(proc.name)
        current = obs.current
        assert current is not None
        attempt = len(obs.attempts) - 1
        end = attempts.collect(self.paths, proc.name, attempt, proc.pidfd, fd, now)
        del self.running[proc.name]
        self.health.container_stopped(proc.name)
        reason = end.reason
        if not reason and self.cgroup.leaf(proc.name).oom_kills() > proc.oom_before:
            reason = OOM_KILLED
        container, _ = self.containers[proc.name]
        message = end.message or logs.termination_message(
            self.paths, proc.name, attempt, container.termination_message_policy or "File",
            end.code)
        if end.log_dropped:
            self.emit_for(proc.name, now, WARNING, "LogDropped", f"{end.log_dropped} bytes of "
                          f"container {proc.name}'s output were lost: the log disk was full")
        self._record(proc.name, obs.finished(current.finish(end.finished_at, end.code,
                                                            end.signal, reason, message)))

    def stop_everything(self) -> None:
        """Last resort at teardown: SIGKILL whatever still runs and reap it."""
        self.cgroup.kill_all()
        for proc in list(self.running.values()):
            _signal(proc.pidfd, signal.SIGKILL)
            self.reap(proc.monitor_pidfd, _now())


def _now() -> float:
    import time

    return time.time()


def _with_kinds(pod: Pod) -> list[tuple[Container, str]]:
    return ([(c, "init container") for c in pod.spec.init_containers]
            + [(c, "container") for c in pod.spec.containers])


def _field_path(container: Container, kind: str) -> str:
    key = "initContainers" if kind == "init container" else "containers"
    return f"spec.{key}{{{container.name}}}"


def _own_oom_score_adj() -> int:
    with open("/proc/self/oom_score_adj") as f:
        return int(f.read())


def _with_termination_log(plan, container: Container, source: str):
    """The plan plus a bind of the attempt's termination-message file at the container's
    ``terminationMessagePath`` (default ``/dev/termination-log``), as the kubelet does."""
    target = container.termination_message_path or "/dev/termination-log"
    mount = {"destination": target, "type": "bind", "source": source,
             "options": ["rbind", "rw"]}
    return msgspec.structs.replace(plan, mounts=[*plan.mounts, mount])


def _never_pull(container: Container) -> str:
    return f'Container image "{container.image}" is not present with pull policy of Never'


def _signal(pidfd: int, sig: int) -> None:
    if pidfd < 0:  # re-attached after it had ended: only its monitor is left
        return
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        pass

