"""A new supervisor for a pod whose supervisor is gone (``nsrun recover``): it reads the
durable records (``runtime.podrecords``), finds the live pause process and containers
(each checked by pidfd and start time, so a reused pid is never taken for them), and takes
over where the old supervisor stopped.

With the pause process alive, the sandbox is re-attached: its namespaces, volumes and
network as they are; live containers are supervised again (through their monitors), and the
exits that happened meanwhile are read from the monitors' records. With the pause process
gone (a reboot, or it was killed), what is left of the pod is killed and a new sandbox made:
every init container runs again from the first, restart counts carried over, with the
kubelet's ``SandboxChanged`` event (a ``restartPolicy: Never`` pod is not restarted).
"""

from __future__ import annotations

import os
import signal
import time

import msgspec

from nsrun.core import reattachment, recovery, rules
from nsrun.core.observed import Observed
from nsrun.core.reattachment import Verdict
from nsrun.core.spec import Pod
from nsrun.host import monitor
from nsrun.runtime import attempts
from nsrun.runtime.podrecords import Saved
from nsrun.state import PodPaths

PAUSE_COMM = "nsrun-pause"


class Live(msgspec.Struct, frozen=True):
    """A container to supervise: its pidfd (-1: it has ended, its monitor is still writing
    the record) and the fd whose readability means it ended (its monitor's pidfd; a copy
    of its own pidfd when the monitor is gone)."""

    pid: int
    pidfd: int
    watch_fd: int


def find(paths: PodPaths, pod: Pod, observed: Observed
         ) -> tuple[dict[str, list[recovery.Found]], dict[str, Live]]:
    """Each container's attempts that observed.json may not know the end of (the running
    one, and any the old supervisor started after its last save), as found on the host;
    and the live ones."""
    found: dict[str, list[recovery.Found]] = {}
    live = {}
    for c in list(pod.spec.init_containers) + list(pod.spec.containers):
        obs = observed.history(c.name)
        numbers = [len(obs.attempts) - 1] if obs.running else []
        n = len(obs.attempts)
        while _launched(paths, c.name, n):
            numbers.append(n)
            n += 1
        for attempt in numbers:
            f, alive = _inspect(paths, c.name, attempt)
            found.setdefault(c.name, []).append(f)
            if alive is not None:
                live[c.name] = alive
    return found, live


def _launched(paths: PodPaths, name: str, attempt: int) -> bool:
    """Whether attempt ``attempt`` was started though observed.json does not have it: its
    record exists, and a "launching" one is replaced by its monitor's within
    ``LAUNCH_WAIT`` (else the start never happened, and the record goes)."""
    path = paths.record(name, attempt)
    deadline = time.monotonic() + attempts.LAUNCH_WAIT
    while path.exists():
        rec = monitor.read_record(path)
        if rec is not None and rec.pid:
            return True
        if time.monotonic() > deadline:
            path.unlink(missing_ok=True)
            return False
        time.sleep(0.02)
    return False


def _inspect(paths: PodPaths, name: str, attempt: int) -> tuple[recovery.Found, Live | None]:
    """What attempt ``attempt`` of ``name`` is now, as ``core.reattachment`` decides from a
    look at it: waiting once for a monitor whose container has ended (its record is coming)."""
    path = paths.record(name, attempt)
    waited = False
    while True:
        facts, rec, pidfd, watch = _look(path)
        verdict = reattachment.decide(facts, waited)
        if verdict is Verdict.WAIT:
            attempts.wait_readable(watch, attempts.MONITOR_EXIT_WAIT)
            _close(pidfd, watch)
            waited = True
            continue
        return _act(verdict, attempt, rec, pidfd, watch)


def _look(path) -> tuple[reattachment.Facts, monitor.Record | None, int, int]:
    """The facts in the order the decision relies on: the monitor and the container the
    record names (a pidfd of each still the same process, else -1), then the record read
    again: a record read after its monitor was found gone is final. A record that changed
    in between (its start record just written) is looked at again."""
    named = monitor.read_record(path)
    while True:
        pidfd = watch = -1
        if named is not None and named.pid and named.exit_code is None:
            pidfd = monitor.same_process(named.pid, named.start_ticks)
            watch = monitor.same_process(named.monitor_pid, named.monitor_start_ticks)
        rec = monitor.read_record(path)
        state = reattachment.record_state(rec.pid if rec else None, rec.exit_code if rec else None)
        if state != reattachment.STARTED or rec == named:
            return reattachment.Facts(state, watch >= 0, pidfd >= 0), rec, pidfd, watch
        _close(pidfd, watch)
        named = rec


def _act(verdict: Verdict, attempt: int, rec: monitor.Record | None, pidfd: int,
         watch: int) -> tuple[recovery.Found, Live | None]:
    if rec is None:
        _close(pidfd, watch)
        return recovery.Found(attempt), None
    found = recovery.Found(attempt, rec.pid, rec.started_at, rec.exit_code, rec.signal or None,
                           rec.finished_at)
    if verdict is Verdict.SUPERVISE_ENDED:
        _close(pidfd)
        pidfd = -1
    elif verdict is Verdict.SUPERVISE_UNMONITORED:
        _close(watch)
        watch = os.dup(pidfd)
    elif verdict is not Verdict.SUPERVISE:  # EXITED, UNKNOWN: nothing to supervise
        _close(pidfd, watch)
        return found, None
    return msgspec.structs.replace(found, alive=True), Live(rec.pid, pidfd, watch)


def _close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            os.close(fd)


def live_pause(paths: PodPaths, uid: str) -> tuple[int, int] | None:
    """The pod's pause process (pid, pidfd), if it still runs: the pid in ``sandbox.pid``,
    named ``nsrun-pause`` and in this pod's cgroup (the uid is in the cgroup's name)."""
    try:
        pid = int(paths.sandbox_pid.read_text().split()[0])
        pidfd = os.pidfd_open(pid)
    except (OSError, ValueError, IndexError):
        return None
    try:
        with open(f"/proc/{pid}/comm") as f, open(f"/proc/{pid}/cgroup") as g:
            if f.read().strip() == PAUSE_COMM and uid in g.read():
                return pid, pidfd
    except OSError:
        pass
    os.close(pidfd)
    return None


def kill_live(live: dict[str, Live]) -> None:
    """SIGKILL the live containers of a lost sandbox; return once their monitors recorded
    the exits."""
    for proc in live.values():
        try:
            if proc.pidfd >= 0:
                signal.pidfd_send_signal(proc.pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for proc in live.values():
        attempts.wait_readable(proc.watch_fd, attempts.MONITOR_EXIT_WAIT)
        _close(proc.watch_fd, proc.pidfd)


def reattach(sup, saved: Saved) -> None:
    """Set up ``sup`` (a ``Supervisor`` made with the saved manifest and options) on the
    pod as it is found, instead of ``prepare``."""
    from nsrun.host.sandbox import Sandbox

    now = time.time()
    paths, pod = sup.paths, sup.pod
    if saved.created:
        sup.manifest["metadata"]["creationTimestamp"] = saved.created
    observed = saved.observed or Observed(now)
    sup.make_cgroup()
    pause = live_pause(paths, pod.metadata.uid)
    found, live = find(paths, pod, observed)
    if pause is None:
        kill_live(live)
        found, live = find(paths, pod, observed)
    observed = recovery.reconcile(observed, found, now)
    observed = recovery.restore_inits(pod, observed, saved.initialized_gen, now)
    if pause is not None:
        sup.sandbox = Sandbox.attach(pod, paths, *pause, secrets=sup.options.secrets,
                                     configmaps=sup.options.configmaps)
    else:
        _clear_lost_sandbox(paths)
        sup.sandbox = Sandbox.create(pod, paths, cgroup_fd=sup._pause_cgroup(),
                                     secrets=sup.options.secrets,
                                     configmaps=sup.options.configmaps,
                                     outlive=sup.cgroup.enabled)
        sup._record_pause()
        observed = recovery.sandbox_lost(pod, observed, rules.terminal(pod, observed))
    ex = sup.make_executor(observed)
    if sup.options.net is not None:
        sup._start_network(resume=pause is not None)
    for name, proc in live.items():
        ex.adopt(name, proc.pid, proc.pidfd, proc.watch_fd)


def _clear_lost_sandbox(paths: PodPaths) -> None:
    """What a lost sandbox left: its mounts (tmpfs volumes, /dev/shm) and its address."""
    from nsrun.host import mounts
    from nsrun.runtime.podclean import mounts_below
    from nsrun.runtime.podnetwork import cleanup_after_crash

    for target in mounts_below(paths.dir):
        mounts.umount(target)
    cleanup_after_crash(paths.dir.parent.parent, paths)
