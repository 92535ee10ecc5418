"""Helpers of the OCI runtime tests: a bundle on a busybox rootfs, ``nsrun-oci`` and runc run
as subprocesses with a private ``--root``, this test process as the child subreaper a shim is
(so container inits stay in its tree and are reaped here), and the leftover check."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

NSRUN_OCI = str(Path(sys.executable).with_name("nsrun-oci"))
RUNC = shutil.which("runc") or "/usr/bin/runc"
PR_SET_CHILD_SUBREAPER = 36
APPLETS = ("sh", "cat", "ls", "true", "false", "sleep", "echo", "readlink", "tty", "test",
           "hostname", "id", "stat", "ps", "kill", "touch", "env", "wc", "head", "sed")


def make_rootfs(root: Path) -> Path:
    """A private copy of the static busybox with applet links (never a hardlink)."""
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        (root / d).mkdir()
    return root


def make_bundle(tmp: Path, args: list[str], *, name: str = "bundle", cgroup: str = "",
                **changes: object) -> Path:
    """``nsrun-oci spec`` with ``args``, the shared rootfs of ``tmp`` and a cgroup path under
    the test's parent; ``changes`` replace top-level keys (``process_<key>`` for process
    keys, ``linux_<key>`` for linux keys)."""
    rootfs = tmp / "rootfs"
    if not rootfs.exists():
        make_rootfs(rootfs)
    bundle = tmp / name
    bundle.mkdir()
    subprocess.run([NSRUN_OCI, "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(rootfs), "readonly": True}
    config["process"]["args"] = list(args)
    if cgroup:
        config["linux"]["cgroupsPath"] = cgroup
    for key, value in changes.items():
        if key.startswith("process_"):
            config["process"][key[8:]] = value
        elif key.startswith("linux_"):
            config["linux"][key[6:]] = value
        else:
            config[key] = value
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


class Runtime:
    """One runtime binary with its own ``--root``."""

    def __init__(self, binary: str, root: Path) -> None:
        self.binary, self.root = binary, root

    @property
    def name(self) -> str:
        return "runc" if self.binary == RUNC else "nsrun-oci"

    def __call__(self, *args: str, check: bool = False, timeout: float = 30,
                 **kw: object) -> subprocess.CompletedProcess:
        cmd = [self.binary, "--root", str(self.root), *args]
        kw.setdefault("capture_output", True)
        proc = subprocess.run(cmd, text=True, timeout=timeout, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd} exited {proc.returncode}: {proc.stderr}")
        return proc

    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid, check=True).stdout)

    def wait_status(self, cid: str, want: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(cid)
            if state["status"] == want or time.monotonic() > deadline:
                assert state["status"] == want, state
                return state
            reap()
            time.sleep(0.02)


def set_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap() -> list[tuple[int, int]]:
    """Reap every exited child (inits of containers reparented to us): ``(pid, status)``."""
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))


def cgroup_dirs(parent: str) -> list[Path]:
    """Every directory named ``parent`` at the top of a cgroup hierarchy (v1 and v2)."""
    return [p for p in Path("/sys/fs/cgroup").glob(f"*/{parent}") if p.is_dir()] + \
        [p for p in [Path("/sys/fs/cgroup") / parent] if p.is_dir()]


def remove_cgroups(parent: str) -> None:
    """Remove the test's cgroup parent in every hierarchy (leaves first)."""
    for top in cgroup_dirs(parent):
        for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir(path)
        _rmdir(top)


def _rmdir(path: Path) -> None:
    for _ in range(100):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


def processes_under(*dirs: Path) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            root = os.readlink(f"/proc/{pid}/root")
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(str(d) in root or str(d) in cmd for d in dirs):
            found.append(f"process {pid} ({cmd.strip()[:60]}) rooted at {root}")
    return found


def leftovers(tmp: Path, parent: str) -> list[str]:
    """Mounts, processes and cgroups of a test still there."""
    with open("/proc/self/mountinfo") as f:
        found = [f"mount {line.split()[4]}" for line in f if str(tmp) in line]
    found += processes_under(tmp)
    found += [f"cgroup {p}" for p in cgroup_dirs(parent)]
    return found


class OciWorld:
    """A test's private roots for nsrun-oci and runc, bundles under ``tmp`` and cgroups
    under one parent of its own."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.parent = f"nsrun-oci-test-{os.getpid()}-{tmp.name}"[:80]
        self.runtimes = {"nsrun-oci": Runtime(NSRUN_OCI, tmp / "nsrun-root"),
                         "runc": Runtime(RUNC, tmp / "runc-root")}

    def bundle(self, cid: str, args: list[str], **changes: object) -> Path:
        return make_bundle(self.tmp, args, name=f"bundle-{cid}",
                           cgroup=f"/{self.parent}/{cid}", **changes)

    def create(self, rt: Runtime, cid: str, bundle: Path, *extra: str,
               stdin: int | None = None) -> subprocess.CompletedProcess:
        """``create`` with the container's stdio on files ``<cid>.out``/``.err`` (a pipe
        would keep the call waiting for the container's end); the result's ``stderr`` is
        what was in that file when it returned."""
        out_path, err_path = self._files(cid)
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = rt("create", "--bundle", str(bundle), *extra, cid, stdout=out, stderr=err,
                      stdin=subprocess.DEVNULL if stdin is None else stdin,
                      capture_output=False)
        proc.stderr = err_path.read_text()
        return proc

    def _files(self, cid: str) -> tuple[Path, Path]:
        safe = cid.replace("/", "_").replace(".", "dot")
        return self.tmp / f"{safe}.out", self.tmp / f"{safe}.err"

    def output(self, cid: str) -> tuple[str, str]:
        out, err = self._files(cid)
        return out.read_text(), err.read_text()

    def cleanup(self) -> list[str]:
        """Delete what is left, reap, and say what a runtime left behind (a cgroup of a
        container under the parent counts; the parent itself is the test's)."""
        found = []
        for rt in self.runtimes.values():
            if not rt.root.is_dir():
                continue
            for cid in os.listdir(rt.root):
                if (rt.root / cid).is_dir():
                    found.append(f"{rt.name} container {cid}")
                    rt("delete", "--force", cid)
        for _ in range(50):
            reap()
            if not processes_under(self.tmp):
                break
            time.sleep(0.02)
        for top in cgroup_dirs(self.parent):
            found += [f"cgroup {p}" for p in top.iterdir() if p.is_dir()]
        remove_cgroups(self.parent)
        return found + leftovers(self.tmp, self.parent)
