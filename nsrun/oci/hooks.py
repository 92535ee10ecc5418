"""The config's ``hooks``, run at the runtime spec's points with the container's state on stdin.

=================  =====================================  ==========================  ========
stage              when                                   where                       failure
=================  =====================================  ==========================  ========
prestart           create: namespaces and mounts made,    the runtime's namespaces    fails
createRuntime      before pivot_root (the init waits)     the runtime's namespaces    fails
createContainer    right after, still before pivot_root   the container's namespaces  fails
startContainer     start: before the init is released     the container's namespaces  fails
poststart          start: after the init was released     the runtime's namespaces    warning
poststop           delete: after the container is gone    the runtime's namespaces    warning
=================  =====================================  ==========================  ========

"Failure" is a non-zero exit, a signal or the hook's ``timeout`` (seconds; killed then). A
failing create or start hook fails the verb, which then destroys the container. Hooks in the
container's namespaces join them (``host.execin.exec_in``) from the runtime's side, as root with
all capabilities, in the container's cgroup; before pivot_root their ``path`` resolves on the
host (the spec says: in the runtime namespace), after it inside the container. ``env`` given:
exactly that environment; absent: the runtime's.
"""

from __future__ import annotations

import os

from nsrun import jsonlite
from nsrun.errors import OciError

CREATE_STAGES = ("prestart", "createRuntime")
IN_CONTAINER = ("createContainer", "startContainer")
MUST_SUCCEED = ("prestart", "createRuntime", "createContainer", "startContainer")


def of(config: dict, stage: str) -> list[dict]:
    """The hooks of ``stage`` (checked: each needs an absolute ``path``)."""
    hooks = (config.get("hooks") or {}).get(stage) or []
    if not isinstance(hooks, list):
        raise OciError(f"config.json: hooks.{stage}: expected an array")
    for i, hook in enumerate(hooks):
        path = hook.get("path") if isinstance(hook, dict) else None
        if not isinstance(path, str) or not path.startswith("/"):
            raise OciError(f"config.json: hooks.{stage}[{i}].path: an absolute path is "
                           "needed")
    return hooks


def _argv_env(hook: dict) -> tuple[list[str], list[str] | None]:
    args = hook.get("args") or [hook["path"]]
    env = hook.get("env")
    return [str(a) for a in args], None if env is None else [str(e) for e in env]


def _run_here(hook: dict, state: bytes) -> tuple[bool, str]:
    import subprocess

    argv, env = _argv_env(hook)
    envmap = None if env is None else dict(e.partition("=")[::2] for e in env)
    try:
        done = subprocess.run(argv, executable=hook["path"], input=state, env=envmap,
                              capture_output=True, timeout=hook.get("timeout"))
    except subprocess.TimeoutExpired:
        return False, f"timed out after {hook.get('timeout')} s"
    except OSError as err:
        return False, err.strerror or str(err)
    if done.returncode != 0:
        how = (f"exited with {done.returncode}" if done.returncode > 0
               else f"was killed by signal {-done.returncode}")
        return False, how + (f": {done.stderr.decode(errors='replace').strip()}"
                             if done.stderr.strip() else "")
    return True, ""


def _run_inside(hook: dict, state: bytes, pid: int, pidfd: int,
                group: object) -> tuple[bool, str]:
    import signal

    from nsrun.errors import SpawnError
    from nsrun.host.execin import exec_in
    from nsrun.request import ExecRequest
    from nsrun.runtime.launcher import _wait_reading

    argv, env = _argv_env(hook)
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    try:
        os.write(stdin_w, state)  # a state document fits in the pipe's buffer
        os.close(stdin_w)
        stdin_w = -1
        req = ExecRequest(argv=argv, path=hook["path"],
                                 env=[f"{k}={v}" for k, v in os.environ.items()]
                                 if env is None else env,
                                 cgroup_fd=getattr(group, "clone_fd", -1),
                                 cgroup_join_fds=getattr(group, "join_fds", ()),
                                 stdin_fd=stdin_r, stdout_fd=out_w,
                                 stderr_fd=out_w)
        try:
            _, child = exec_in(pid, pidfd, req)
        except SpawnError as err:
            return False, str(err)
        os.close(out_w)
        out_w = -1
        exited, output = _wait_reading(child, out_r, hook.get("timeout"))
        if not exited:
            signal.pidfd_send_signal(child, signal.SIGKILL)
        info = os.waitid(os.P_PIDFD, child, os.WEXITED)
        os.close(child)
    finally:
        for fd in (stdin_r, stdin_w, out_r, out_w):
            if fd >= 0:
                os.close(fd)
    if not exited:
        return False, f"timed out after {hook.get('timeout')} s"
    if info.si_code == os.CLD_EXITED and info.si_status == 0:
        return True, ""
    from nsrun.exitstatus import describe

    return False, describe(info) + (f": {output.strip()}" if output.strip() else "")


def run(config: dict, stage: str, state: dict, log, *, pid: int = 0, pidfd: int = -1,
        group: object = None) -> None:
    """Run the hooks of ``stage`` in order. A failure of a create or start stage raises
    ``OciError``; of poststart/poststop, it is logged and the next hook runs."""
    hooks = of(config, stage)
    if not hooks:
        return
    data = jsonlite.dumps(state).encode()
    for hook in hooks:
        if stage in IN_CONTAINER:
            ok, what = _run_inside(hook, data, pid, pidfd, group)
        else:
            ok, what = _run_here(hook, data)
        if ok:
            continue
        message = f"{stage} hook {hook['path']}: {what}"
        if stage in MUST_SUCCEED:
            raise OciError(message)
        log.warning(message)
