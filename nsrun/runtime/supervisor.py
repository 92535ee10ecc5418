"""The pod supervisor: observe → derive → plan → execute → report, until the pod is done.

One process per pod, single-threaded: it polls the containers' pidfds and a signal wake-up
pipe, so a container's exit is noticed at once and no thread or asyncio loop sits on the
start path. SIGTERM/SIGINT turn into a graceful delete of the pod; they stay handled
(``podsignals``) from the supervisor's creation until its owner closes ``signals`` after the
teardown, so a delete never kills it halfway through its cleanup.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from typing import Any

import msgspec

from nsrun.core import rules
from nsrun.core.observed import CRASH_LOOP_BACK_OFF, Observed
from nsrun.core.plan import next_actions
from nsrun.core.resources import CgroupFiles
from nsrun.core.spec import Pod
from nsrun.core.status import derive_status, rfc3339
from nsrun.host.cgroupdriver import NO_POD, PodCgroups
from nsrun.host.sandbox import Sandbox
from nsrun.report import statusfile
from nsrun.report.events import WARNING, EventLog
from nsrun.runtime.executor import SANDBOX_LEAF, Executor
from nsrun.runtime.networking import Networking
from nsrun.runtime.options import Options
from nsrun.runtime.podrecords import Saver
from nsrun.runtime.podsignals import SignalPipe
from nsrun.state import PodPaths, write_atomic

STATUS_RETRY = 1.0  # seconds between tries to write status.json after a failed write


class Supervisor:
    """Runs one pod to completion (or until deleted)."""

    def __init__(self, pod: Pod, paths: PodPaths, options: Options) -> None:
        self.pod, self.paths, self.options = pod, paths, options
        self.manifest = _manifest(pod)
        self.signal_received = 0
        self.last_status: dict[str, Any] | None = None
        self.sandbox: Sandbox | None = None
        self.cgroup: PodCgroups = NO_POD
        self.executor: Executor | None = None
        self.networking: Networking | None = None
        self.status_retry_at: float | None = None  # a failed status.json write: retry then
        self.saver = Saver(paths)
        self.signals = SignalPipe()  # closed by the owner once the teardown is over

    def prepare(self) -> None:
        """Check every bundle, then the pod cgroup (values written before any container
        starts), then the sandbox."""
        self._check_bundles()
        self.make_cgroup()
        self.sandbox = Sandbox.create(self.pod, self.paths, cgroup_fd=self._pause_cgroup(),
                                      secrets=self.options.secrets,
                                      configmaps=self.options.configmaps,
                                      outlive=self.cgroup.enabled)
        self._record_pause()
        self.make_executor(Observed(time.time()))
        if self.options.net is not None:
            self._start_network()

    def make_cgroup(self) -> None:
        """The pod cgroup (an existing one is reused, its values written again), recorded."""
        self.cgroup = self._create_cgroup()
        if self.cgroup.record:
            write_atomic(self.paths.cgroup_record,
                         "".join(f"{p}\n" for p in self.cgroup.record).encode(), durable=False)

    def make_executor(self, observed: Observed) -> Executor:
        """``runtime.json``, then the executor, starting from ``observed``."""
        assert self.sandbox is not None
        write_atomic(self.paths.runtime, msgspec.json.encode({
            "images": str(self.options.images.root), "secrets": self.sandbox.secrets_dir,
            "configmaps": self.sandbox.configmaps_dir}), durable=False)
        events = EventLog(self.paths)
        self.executor = Executor(self.pod, self.paths, self.sandbox, self.cgroup,
                                 self.options.images, events, observed)
        self.executor.recreate_sandbox = self._new_namespaces
        self.executor.oom_score_adj = self.options.oom_score_adj or {}
        self.executor.log_max_attempts = self.options.log_max_attempts
        self.executor.log_max_bytes = self.options.log_max_bytes
        self.executor.log_max_size = self.options.log_max_size
        self.executor.log_max_files = self.options.log_max_files
        return self.executor

    def _start_network(self, resume: bool = False) -> None:
        """The pod's network (``resume``: the one recorded, re-attaching); a full pod CIDR
        makes the pod wait (retried by the planner)."""
        from nsrun.runtime.podnetwork import NoAddress

        ex, net = self.executor, self.options.net
        assert ex is not None and self.sandbox is not None and net is not None
        self.networking = Networking(self.paths.dir.parent.parent, net, self.pod, self.paths,
                                     self.options.resolv_conf)
        ex.setup_network = self._network_up
        try:
            self._network_up(resume)
        except NoAddress as err:
            ex.network_failed(time.time(), str(err))

    def _network_up(self, resume: bool = False) -> None:
        assert self.networking is not None and self.sandbox is not None
        if resume:
            self.networking.resume(self.sandbox)
        else:
            self.networking.start(self.sandbox)
        assert self.executor is not None
        for reason, message in self.networking.events:
            self.executor.events.emit(time.time(), WARNING, reason, message)

    def _check_bundles(self) -> None:
        """A bundle nsrun cannot apply stops the pod before anything is created (exit 2);
        a security context the image cannot satisfy (runAsNonRoot) is left to the
        container's start, which then waits with ``CreateContainerConfigError``."""
        from nsrun.bundle.security import ContainerConfigError
        from nsrun.runtime import launcher

        try:
            warnings = launcher.check_pod(self.pod, self.options.images)
        except ContainerConfigError:
            return
        for warning in warnings:
            print(f"nsrun: warning: {warning}", file=sys.stderr)

    def _create_cgroup(self) -> PodCgroups:
        """The pod's cgroups (``--cgroups``), every value written before any container."""
        from nsrun.host import cgroupdriver

        driver = cgroupdriver.choose(self.options.cgroup_mode,
                                    default_parent=self.options.cgroup_default)
        files = (self.options.cgroup_files or {}).get(driver.name) or CgroupFiles({}, {})
        return driver.create_pod(self.options.cgroup_parent, self.pod.metadata.uid,
                                 files.pod, files.leaves, qos=self.options.qos_class,
                                 declared=self.options.qos_class != "BestEffort")

    def _pause_cgroup(self) -> int:
        # "_pause" cannot clash with a container: names are DNS-1123 labels (no "_")
        return self.cgroup.leaf(SANDBOX_LEAF).clone_fd

    def _record_pause(self) -> None:
        """``sandbox.pid``; on cgroup v1 the pause process (started by nsrun, it never
        forks) joins its leaf now."""
        assert self.sandbox is not None
        leaf = self.cgroup.leaf(SANDBOX_LEAF)
        if leaf.join_fds:
            leaf.adopt(self.sandbox.pause_pid)
        write_atomic(self.paths.sandbox_pid, f"{self.sandbox.pause_pid}\n".encode(),
                     durable=False)

    def _new_namespaces(self) -> Sandbox:
        """A pod restart: fresh network, IPC and UTS namespaces; volumes are kept (an
        emptyDir outlives its pod's restarts, so init containers must be idempotent)."""
        assert self.sandbox is not None
        self.sandbox.new_namespaces(self._pause_cgroup())
        self._record_pause()
        if self.networking is not None:
            self.networking.restart(self.sandbox)
        return self.sandbox

    def _sandbox_lost(self, now: float) -> None:
        """The pause process died: the kubelet's SandboxChanged case, the pod starts over."""
        ex = self.executor
        assert ex is not None and self.sandbox is not None
        self.sandbox.pause_died()
        if not (ex.observed.deleting or rules.terminal(self.pod, ex.observed)):
            ex.observed = msgspec.structs.replace(ex.observed, restarting=True)

    def run(self) -> str:
        """Supervise until the pod is terminal or deleted; returns the final phase."""
        self._loop(self.signals.read_fd)
        return self.publish(time.time())["status"]["phase"]

    def _loop(self, wake_fd: int) -> None:
        ex = self.executor
        assert ex is not None
        poller = select.poll()
        poller.register(wake_fd, select.POLLIN)
        if ex.health.fd is not None:
            poller.register(ex.health.fd, select.POLLIN)
        watched: set[int] = set()
        while True:
            now = time.time()
            ex.kill_overdue(now)
            before = ex.observed
            wake = ex.apply(next_actions(self.pod, ex.observed, now, self.options.backoff), now)
            if ex.observed is not before:
                continue  # the actions changed the pod: plan again before reporting
            self.publish(now)
            if not ex.running and self._finished():
                return
            ex.health.run_due(now)
            pause = self.sandbox.pause_pidfd if self.sandbox else -1
            dns = set(self.networking.fds()) if self.networking else set()
            wanted = ex.watched_fds() | ({pause} if pause >= 0 else set())
            watched = _sync_poller(poller, watched, wanted | dns)
            timeout = _timeout_ms(now, wake, ex.next_deadline(), ex.health.next_wake(),
                                  self.status_retry_at)
            for fd, _ in poller.poll(timeout):
                if fd == wake_fd:
                    self._drain_signals(wake_fd)
                elif fd == ex.health.fd:
                    ex.health.on_results(time.time())
                elif fd == pause:
                    self._sandbox_lost(time.time())
                elif fd in dns:
                    self.networking.handle(fd)
                elif fd in watched:
                    ex.reap(fd, time.time())

    def _finished(self) -> bool:
        ex = self.executor
        assert ex is not None
        return ex.observed.deleting or rules.terminal(self.pod, ex.observed)

    def _drain_signals(self, fd: int) -> None:
        """SIGTERM/SIGINT delete the pod, SIGUSR1 restarts it (``nsrun restart``), SIGHUP
        adopts an updated manifest (``nsrun apply``)."""
        data = self.signals.drain()
        ex = self.executor
        assert ex is not None
        for sig in data:
            if sig in (signal.SIGTERM, signal.SIGINT):
                self.signal_received = self.signal_received or sig
                self.delete()
            elif ex.observed.deleting:
                continue
            elif sig == signal.SIGUSR1:
                ex.observed = msgspec.structs.replace(ex.observed, restarting=True)
            elif sig == signal.SIGHUP:
                self.adopt_update(time.time())

    def adopt_update(self, now: float) -> None:
        """Take the manifest ``nsrun apply`` left in ``pod.next.json`` (already validated
        against the running one) and act on what changed."""
        from nsrun.core.spec import Pod
        from nsrun.core.update import plan_update

        ex = self.executor
        assert ex is not None
        try:
            new = msgspec.json.decode(self.paths.next_manifest.read_bytes(), type=Pod)
        except (OSError, msgspec.DecodeError):
            return
        update = plan_update(self.pod, new)
        self.pod = ex.pod = new
        ex.reload(new)
        self.manifest["spec"] = msgspec.to_builtins(new)["spec"]
        self.paths.next_manifest.rename(self.paths.manifest)
        if update.restart_pod:
            ex.observed = msgspec.structs.replace(ex.observed, restarting=True)
        for name in update.restart_containers:
            ex.request_restart(name, now, f"Container {name} definition changed, "
                                          "will be restarted")

    def delete(self) -> None:
        """Mark the pod deleted: the planner stops everything, starts nothing. The
        ``deletionTimestamp`` is published at once (``get`` shows ``Terminating``); a later
        delete with a shorter ``--grace-period`` shortens the stop under way."""
        ex = self.executor
        assert ex is not None
        now, grace = time.time(), _grace_override(self.paths)
        if grace is not None:
            ex.override_grace(grace, now)
        if ex.observed.deleting:
            return
        ex.observed = msgspec.structs.replace(ex.observed, deleting=True)
        meta = self.manifest["metadata"]
        meta["deletionTimestamp"] = rfc3339(now)
        meta["deletionGracePeriodSeconds"] = int(ex.grace)
        self.last_status = None  # written on the next pass even if no container changed

    def publish(self, now: float) -> dict[str, Any]:
        """Write status.json when the status changed; emit BackOff on entering a crash loop."""
        ex = self.executor
        assert ex is not None
        status = derive_status(self.pod, ex.observed, now, self.options.backoff)
        status["qosClass"] = self.options.qos_class
        if self.networking is not None:
            status.update(self.networking.status())
        pod = statusfile.pod_object(self.manifest, status)
        changed = status != self.last_status
        if changed:
            self._backoff_events(status, now)
            self.last_status = status
        saved = self.saver.save(self.pod, ex.observed)  # observed.json before status.json
        if changed or self.status_retry_at is not None or not saved:
            self._write_status(pod, now, saved)
        if changed:
            if self.networking is not None:
                self.networking.published(pod)
            if self.options.on_change:
                self.options.on_change(pod)
        return pod

    def _write_status(self, pod: dict[str, Any], now: float, saved: bool = True) -> None:
        """status.json; on a full disk the last good copy stays, a Warning says so once, and
        the write is tried again every second until it succeeds (with observed.json)."""
        err = statusfile.write(self.paths, pod)
        if err is None and saved:
            self.status_retry_at = None
            return
        if self.status_retry_at is None:
            what = f"{self.paths.status.name}: {err.strerror}" if err else \
                self.paths.observed.name
            message = f"cannot write {what}; the last written status stays until the " \
                      "write succeeds"
            print(f"nsrun: warning: {message}", file=sys.stderr)
            assert self.executor is not None
            self.executor.events.emit(now, WARNING, "StatusWriteFailed", message)
        self.status_retry_at = now + STATUS_RETRY

    def _backoff_events(self, status: dict[str, Any], now: float) -> None:
        before = _waiting_reasons(self.last_status or {})
        for name, reason in _waiting_reasons(status).items():
            if reason == CRASH_LOOP_BACK_OFF and before.get(name) != reason:
                md = self.pod.metadata
                assert self.executor is not None
                self.executor.events.emit(
                    now, WARNING, "BackOff",
                    f"Back-off restarting failed container {name} in pod "
                    f"{md.name}_{md.namespace}({md.uid})", _path_of(self.pod, name))

    def teardown(self) -> None:
        """Kill what is left, remove the pod cgroup, release the namespaces and volumes."""
        try:
            if self.executor is not None:
                self.executor.stop_everything()
                self.executor.health.close()
                self.publish(time.time())
                self.executor.events.close()
        finally:
            if self.networking is not None:
                self.networking.close()
            self.cgroup.destroy()
            if self.sandbox is not None:
                self.sandbox.close()


def _grace_override(paths: PodPaths) -> float | None:
    """The grace period ``delete --grace-period`` left, if any (junk: none)."""
    try:
        return max(0.0, float(paths.grace_override.read_text()))
    except (OSError, ValueError):
        return None


def _manifest(pod: Pod) -> dict[str, Any]:
    manifest = msgspec.to_builtins(pod)
    meta = manifest.setdefault("metadata", {})
    meta.setdefault("namespace", pod.metadata.namespace)
    manifest.setdefault("spec", {}).setdefault("nodeName", os.uname().nodename)
    meta["creationTimestamp"] = rfc3339(time.time())
    return manifest


def _waiting_reasons(status: dict[str, Any]) -> dict[str, str]:
    out = {}
    for cs in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
        waiting = cs.get("state", {}).get("waiting")
        if waiting:
            out[cs["name"]] = waiting.get("reason", "")
    return out


def _path_of(pod: Pod, name: str) -> str:
    inits = {c.name for c in pod.spec.init_containers}
    return f"spec.{'initContainers' if name in inits else 'containers'}{{{name}}}"


def _sync_poller(poller: select.poll, watched: set[int], wanted: set[int]) -> set[int]:
    for fd in watched - wanted:
        poller.unregister(fd)
    for fd in wanted - watched:
        poller.register(fd, select.POLLIN)
    return wanted


def _timeout_ms(now: float, *times: float | None) -> int | None:
    due = [t for t in times if t is not None]
    if not due:
        return None
    return max(0, int((min(due) - now) * 1000) + 1)
