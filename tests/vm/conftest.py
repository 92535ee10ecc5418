"""Fixtures for the VM test ring (``make test-vm``, docs/vm.md).

Every test under tests/vm gets the ``vm`` marker and needs a guest booted by
vm/run-in-vm.sh: ``NSRUN_VM`` set, root, and a pure cgroup v2 hierarchy at
/sys/fs/cgroup with at least the cpu, memory and pids controllers.

* Outside the guest (a plain ``pytest tests`` on a host) they are SKIPPED,
  with the reason.
* Inside the guest a missing requirement is an ERROR, not a skip, so a broken
  ring can never pass green; and any skip of a tests/vm test there (a
  ``pytest.skip``, ``skipif`` or ``importorskip`` meeting a missing tool,
  feature or source string) is turned into a FAILURE, unless the test carries
  ``@pytest.mark.vm_may_skip(reason)`` (what a backend documentedly lacks).

These tests must not need nsrun itself to be importable; the helpers here
talk to the kernel directly.
"""

from __future__ import annotations

import errno
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence

import pytest

CGROOT = pathlib.Path("/sys/fs/cgroup")
REQUIRED_CONTROLLERS = ("cpu", "memory", "pids")
HERE = pathlib.Path(__file__).resolve().parent


def in_vm() -> str | None:
    """The backend name (qemu/uml) when running inside the VM ring."""
    return os.environ.get("NSRUN_VM") or None


def controllers(path: pathlib.Path = CGROOT) -> set[str]:
    try:
        return set((path / "cgroup.controllers").read_text().split())
    except OSError:
        return set()


def _fs_type(path: pathlib.Path) -> str:
    # the field after the mount point in /proc/self/mounts; last match wins
    fstype = ""
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[1] == str(path):
                    fstype = fields[2]
    except OSError:
        pass
    return fstype


def ring_problem() -> str | None:
    """Why this process cannot run the VM tests, or None when it can."""
    if os.geteuid() != 0:
        return "needs root"
    fstype = _fs_type(CGROOT)
    if fstype != "cgroup2":
        return f"{CGROOT} is {fstype or 'not mounted'}, not a pure cgroup2 mount"
    missing = [c for c in REQUIRED_CONTROLLERS if c not in controllers()]
    if missing:
        return f"cgroup2 at {CGROOT} lacks the {', '.join(missing)} controller(s)"
    try:
        enabled = set((CGROOT / "cgroup.subtree_control").read_text().split())
    except OSError as e:
        return f"cannot read {CGROOT}/cgroup.subtree_control: {e}"
    missing = [c for c in REQUIRED_CONTROLLERS if c not in enabled]
    if missing:
        return f"{', '.join(missing)} not enabled in {CGROOT}/cgroup.subtree_control"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # conftest hooks see the whole session: only touch tests below this dir
    mine = [it for it in items if _mine(it)]
    if not mine:
        return
    problem = ring_problem()
    backend = in_vm()
    for it in mine:
        it.add_marker(pytest.mark.vm)
        if backend is None:
            it.add_marker(
                pytest.mark.skip(
                    reason="VM ring only (run `make test-vm`): NSRUN_VM is not set"
                    + (f"; {problem}" if problem else "")
                )
            )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Inside the guest a skipped tests/vm test is a failure (module docstring)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_vm() is not None and _mine(item) and \
            item.get_closest_marker("vm_may_skip") is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped inside the VM ring, where nothing may be missing: {reason}"


def _mine(item: pytest.Item) -> bool:
    return HERE in pathlib.Path(str(item.path)).resolve().parents


@pytest.fixture(autouse=True)
def _vm_ring_ready(request: pytest.FixtureRequest) -> None:
    """Inside the guest, a guest without real cgroup v2 is a failure."""
    if in_vm() is None:
        pytest.skip("VM ring only (run `make test-vm`): NSRUN_VM is not set")
    problem = ring_problem()
    if problem:
        pytest.fail(f"the VM ring guest ({in_vm()}) is unfit: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def vm_backend() -> str:
    return in_vm() or ""


@pytest.fixture(scope="session")
def slow() -> float:
    """Multiply timeouts by this: qemu TCG runs Python ~20x slower than the host."""
    return {"qemu": 20.0, "uml": 6.0}.get(in_vm() or "", 1.0)


# ---------------------------------------------------------------- cgroups --


class Cgroup:
    """A throw-away child cgroup of /sys/fs/cgroup, removed by the fixture."""

    def __init__(self, path: pathlib.Path):
        self.path = path

    def __repr__(self) -> str:
        return f"Cgroup({str(self.path)!r})"

    def __truediv__(self, name: str) -> pathlib.Path:
        return self.path / name

    def write(self, name: str, value: str | int) -> None:
        (self.path / name).write_text(f"{value}\n")

    def read(self, name: str) -> str:
        return (self.path / name).read_text().strip()

    def keyed(self, name: str) -> dict[str, int]:
        """A flat-keyed file (memory.events, cpu.stat, pids.events ...)."""
        out = {}
        for line in self.read(name).splitlines():
            key, _, value = line.partition(" ")
            try:
                out[key] = int(value)
            except ValueError:
                pass
        return out

    def procs(self) -> list[int]:
        return [int(p) for p in self.read("cgroup.procs").split()]

    def populated(self) -> bool:
        return self.keyed("cgroup.events").get("populated", 0) == 1

    def enter(self) -> None:
        """Move the calling process into this cgroup (use as preexec_fn)."""
        fd = os.open(self.path / "cgroup.procs", os.O_WRONLY)
        try:
            os.write(fd, b"0\n")
        finally:
            os.close(fd)

    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:
        """Start argv inside this cgroup (moved in between fork and exec)."""
        return subprocess.Popen(list(argv), preexec_fn=self.enter, **kw)

    def run(
        self, argv: Sequence[str], timeout: float, capture_output: bool = False, **kw
    ) -> subprocess.CompletedProcess:
        """Like subprocess.run, inside this cgroup; on timeout the cgroup is killed."""
        if capture_output:
            kw["stdout"] = kw["stderr"] = subprocess.PIPE
        with self.popen(argv, **kw) as p:
            try:
                out, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                p.communicate()
                raise
            return subprocess.CompletedProcess(p.args, p.returncode, out, err)

    def kill(self, timeout: float = 30.0) -> None:
        """cgroup.kill, then wait until the cgroup is empty."""
        if not self.path.exists():
            return
        try:
            self.write("cgroup.kill", 1)
        except OSError as e:  # kernels before 5.14: signal every process instead
            if e.errno not in (errno.ENOENT, errno.EINVAL):
                raise
            for pid in self.procs():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        while self.populated() and time.monotonic() < deadline:
            time.sleep(0.02)

    def remove(self, attempts: int = 100, delay: float = 0.05) -> None:
        """Kill what is left and rmdir, retrying EBUSY a bounded number of times."""
        if not self.path.exists():
            return
        for child in sorted(self.path.iterdir(), reverse=True):
            if child.is_dir():
                Cgroup(child).remove(attempts, delay)
        self.kill()
        last: OSError | None = None
        for _ in range(attempts):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                last = e
                time.sleep(delay)
        raise RuntimeError(f"cannot remove {self.path} after {attempts} attempts: {last}")


@pytest.fixture
def cgroup_factory() -> Iterator:
    """make(name=None) -> Cgroup under /sys/fs/cgroup; all removed afterwards."""
    made: list[Cgroup] = []

    def make(name: str | None = None) -> Cgroup:
        path = CGROOT / (name or f"nsrun-vmtest-{uuid.uuid4().hex[:10]}")
        path.mkdir()
        cg = Cgroup(path)
        made.append(cg)
        return cg

    try:
        yield make
    finally:
        errors = []
        for cg in reversed(made):
            try:
                cg.remove()
            except Exception as e:  # keep removing the others
                errors.append(e)
        if errors:
            raise errors[0]
        leftovers = [cg.path for cg in made if cg.path.exists()]
        assert not leftovers, f"cgroups left behind: {leftovers}"


@pytest.fixture
def cgroup(cgroup_factory) -> Cgroup:
    """A fresh child cgroup of the guest's root cgroup."""
    return cgroup_factory()


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


# ---------------------------------------------------------------- nsrun --
# For the nsrun-level VM tests (tests/vm/test_nsrun_*.py): the real CLI, run as
# `python -m nsrun` with its own state dir, a busybox image store built once per
# session (`nsrun image busybox`) and a private --cgroup-parent; every pod is
# deleted afterwards and the test fails if a cgroup is left behind. nsrun is
# imported lazily, so the ring smoke tests above still run without it.


class Pods:
    """``nsrun`` with ``--root`` in ``tmp`` and a private cgroup parent."""

    def __init__(self, tmp: pathlib.Path, images: pathlib.Path, slow: float) -> None:
        self.tmp, self.images, self.slow = tmp, images, slow
        self.root = tmp / "state"
        self.parent_name = f"nsrun-vmtest-{uuid.uuid4().hex[:8]}"
        self.parent = CGROOT / self.parent_name

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "nsrun", "--root", str(self.root), "--images",
                str(self.images), *args]

    def nsrun(self, *args: str, timeout: float = 30, check: bool = False,
              **kw) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.argv(*args), capture_output=True, text=True,
                              timeout=timeout * self.slow, stdin=subprocess.DEVNULL, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"nsrun {' '.join(args)} exited {proc.returncode}: "
                                 f"{proc.stderr}")
        return proc

    def manifest(self, name: str, text: str) -> str:
        path = self.tmp / f"{name}.yaml"
        path.write_text(text)
        return str(path)

    def run(self, text: str, *extra: str, name: str = "p", parent: bool = True,
            timeout: float = 60, check: bool = False, **kw) -> subprocess.CompletedProcess:
        """``nsrun run [extra] manifest`` with fast back-off and the private parent."""
        args = ["run", "--backoff-initial", "0.2", "--backoff-max", "1"]
        if parent:
            args += ["--cgroup-parent", self.parent_name]
        return self.nsrun(*args, *extra, self.manifest(name, text), timeout=timeout,
                          check=check, **kw)

    def pod_dir(self, pod: str) -> pathlib.Path:
        return self.root / "pods" / pod

    def status(self, pod: str) -> dict:
        import json

        return json.loads((self.pod_dir(pod) / "status.json").read_text())

    def cgroup(self, pod: str) -> pathlib.Path:
        """The pod cgroup nsrun recorded for ``pod``."""
        return pathlib.Path((self.pod_dir(pod) / "cgroup").read_text().strip())

    def supervisor_pid(self, pod: str) -> int:
        return int((self.pod_dir(pod) / "supervisor.pid").read_text())

    def container(self, pod: str, name: str) -> dict:
        st = self.status(pod)["status"]
        for cs in st.get("initContainerStatuses", []) + st.get("containerStatuses", []):
            if cs["name"] == name:
                return cs
        raise KeyError(name)

    def wait(self, cond, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout * self.slow
        while True:
            try:
                if cond():
                    return
            except (OSError, ValueError, KeyError):
                pass
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def wait_running(self, pod: str, *names: str, timeout: float = 20) -> None:
        def running() -> bool:
            return all("running" in self.container(pod, n).get("state", {}) for n in names)

        self.wait(running, timeout, f"{pod}: {', '.join(names)} running")

    def delete(self, pod: str) -> None:
        self.nsrun("delete", pod, "--grace-period", "0", check=True)

    def cleanup(self) -> list[str]:
        """Delete what is left; returns the cgroups still there."""
        pods = self.root / "pods"
        for pod in sorted(pods.iterdir()) if pods.is_dir() else []:
            self.nsrun("delete", pod.name, "--grace-period", "0")
        left = []
        if self.parent.exists():
            left = [str(p) for p in sorted(self.parent.rglob("*")) if p.is_dir()]
            left.append(str(self.parent))
            for child in sorted(self.parent.rglob("*"), reverse=True):
                if child.is_dir():
                    Cgroup(child).remove()
            Cgroup(self.parent).remove()
        return left


@pytest.fixture(scope="session")
def nsrun_images(tmp_path_factory, slow) -> pathlib.Path:
    """An image store with ``busybox`` (Debian's busybox-static), built once."""
    images = tmp_path_factory.mktemp("images")
    proc = subprocess.run([sys.executable, "-m", "nsrun", "--images", str(images), "image",
                           "busybox"], capture_output=True, text=True, timeout=30 * slow)
    assert proc.returncode == 0, proc.stderr
    return images


@pytest.fixture
def pods(tmp_path, nsrun_images, slow) -> Iterator[Pods]:
    """A private nsrun world; afterwards every pod is deleted and no cgroup may be left."""
    world = Pods(tmp_path, nsrun_images, slow)
    yield world
    left = world.cleanup()
    assert not left, f"cgroups left behind: {left}"


def require_systemd() -> None:
    """The ring boots systemd as PID 1 (``VM_SYSTEMD=1``, the default of ``make test-vm``):
    a test that needs it fails without it, rather than skipping."""
    if not systemd_pid1():
        pytest.fail("PID 1 is not systemd (run the ring with VM_SYSTEMD=1)", pytrace=False)


def systemd_pid1() -> bool:
    try:
        return pathlib.Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False
