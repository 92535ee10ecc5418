"""What the tests of a process joining a container share: a running container in a
sandbox (:class:`Container`; its init waits on a pipe), the mounts and confinement it gets,
and small readers. The fixtures that make them are in this directory's conftest.py."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from nsrun import native
from nsrun.bundle import security
from nsrun.host import execin
from nsrun.host.execin import exec_in
from nsrun.host.spawn import spawn
from nsrun.request import ExecRequest, MountSpec, SpawnRequest

from world import wait

PROC = MountSpec("/proc", "proc", "proc", native.MS_NOSUID | native.MS_NODEV | native.MS_NOEXEC)
DEV = MountSpec("/dev", "tmpfs", "tmpfs", native.MS_NOSUID | native.MS_STRICTATIME,
                "mode=755,size=65536k")
ONLY = MountSpec("/only", "tmpfs", "tmpfs", native.MS_NOSUID | native.MS_NODEV, "mode=1777")
MOUNTS = (PROC, DEV, ONLY)
EXTRA_APPLETS = ("readlink", "nc", "mkdir", "tr", "ps", "wc", "stat")
HOSTNAME = "exec-pod"
CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
# What the container gets: a realistic confinement, computed the way the launcher does it.
CONFIG = {
    "process": {
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 0o027},
        "noNewPrivileges": True,
        "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}],
        "oomScoreAdj": 500,
    },
    "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}},
}
# The container's init: marks its private /only tmpfs, then waits for stdin to close.
INIT = ["sh", "-c", "echo only-in-the-container > /only/marker; exec cat"]


class Container:
    """A running container (its init blocks on a pipe) in a sandbox; ``stop`` ends both."""

    def __init__(self, rootfs: Path, sandbox: dict[str, int], cgroup_fd: int = -1,
                 argv: list[str] | None = None, **kw) -> None:
        r, self.w = os.pipe2(os.O_CLOEXEC)
        self.request = SpawnRequest(argv=argv or INIT, env=["PATH=/bin", "WHO=container"],
                                    rootfs=str(rootfs), mounts=MOUNTS, join_ns=sandbox,
                                    hostname=HOSTNAME, cgroup_fd=cgroup_fd, stdin_fd=r, **kw)
        try:
            self.pid, self.pidfd = spawn(self.request)
        except BaseException:
            os.close(self.w)
            raise
        finally:
            os.close(r)
        if argv is None:  # INIT: marked /only and exec()ed cat
            self.wait_for(self._ready)

    def _ready(self) -> bool:
        try:
            with open(f"/proc/{self.pid}/cmdline", "rb") as f:
                return f.read() == b"cat\0"
        except OSError:
            return False

    @staticmethod
    def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.005)

    def exec(self, argv: list[str], out: Path | None = None, clone_mode: int | None = None,
             setns: execin.Setns | None = None, **kw) -> tuple[int, str]:
        """Run ``argv`` in the container like the container (exec_in, by ``clone_mode`` and
        ``setns``), wait; (code, output)."""
        out = out or Path(self.request.rootfs).parent / "exec.out"
        with open(out, "w+b") as f:
            kw.setdefault("stdout_fd", f.fileno())
            kw.setdefault("stderr_fd", f.fileno())
            pid, pidfd = exec_in(self.pid, self.pidfd,
                                 ExecRequest.from_spawn(self.request, argv, **kw),
                                 clone_mode=clone_mode, setns=setns)
            code = wait(pidfd)
            f.seek(0)
            return code, f.read().decode()

    def stop(self) -> int:
        if self.w >= 0:
            os.close(self.w)
            self.w = -1
        if self.pidfd < 0:
            return 0
        code = wait(self.pidfd)
        self.pidfd = -1
        return code


def confinement() -> dict:
    conf = security.confine(CONFIG, "test config.json")
    assert conf.seccomp is not None
    return {"uid": conf.uid, "gid": conf.gid, "additional_gids": conf.additional_gids,
            "capabilities": conf.capabilities, "no_new_privs": conf.no_new_privileges,
            "seccomp_bpf": conf.seccomp.bpf, "seccomp_flags": conf.seccomp.flags,
            "rlimits": conf.rlimits, "umask": conf.umask, "oom_score_adj": conf.oom_score_adj}


def status_fields(text: str, *keys: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in keys:
            out[key] = value.strip()
    return out
