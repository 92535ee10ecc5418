"""The protocol between the CLI, the supervisor, the monitors and the containers: every file
in a pod's state directory and every signal, who writes it, who reads it, and when.

| file and its `PodPaths` member | written by | read by | how and when |
| --- | --- | --- | --- |
| `pod.json` (`manifest`) | CLI `run`/`apply`; supervisor (renames `pod.next.json` over it) | supervisor, `recover`, `get`, `delete` | atomic + durable, before the supervisor starts |
| `pod.next.json` (`next_manifest`) | CLI `apply` | supervisor on SIGHUP | atomic + durable, then SIGHUP; the supervisor renames it to `pod.json` |
| `status.json` (`status`) | supervisor | `get`, `describe`, `wait`, `run -w` | atomic + durable on every status change; on ENOSPC the last good copy stays and the write is retried |
| `events.jsonl` (`events`) | supervisor | `describe`, `events` | one JSON line appended per event; a line that cannot be written is dropped and counted |
| `observed.json` (`observed`) | supervisor | `recover` | atomic + durable on every observed change: attempts, restart counts, back-off, sandbox generation |
| `initialized` (`initialized`) | supervisor | `recover` | durable, once every init container of the sandbox has completed |
| `containers/<c>/<n>.json` (`records`, `record()`) | supervisor ("launching", pid 0), then the monitor of attempt n | supervisor, `recover` | atomic: "launching" before the monitor is forked, then pids and start times once started (they guard against a process crash; after a reboot the attempt is in `observed.json`); atomic + durable: exit code, signal and finish time once reaped, before the monitor exits |
| `supervisor.pid` (`pidfile`) | supervisor | `delete`, `restart`, `apply`, `recover` | atomic, at start |
| `supervisor.json` (`handoff`) | CLI `run`/`create`/`apply` | the supervisor's entry point (`runtime.supervise`), also with `--recover` | atomic + durable, with `pod.json`, before the supervisor starts: its options (`runtime.options.Handoff`) |
| `supervisor.log` (`supervisor_log`) | detached supervisor (stderr) | the user | appended |
| `lock` (`lockfile`) | supervisor (flock held while it runs) | every verb: is a supervisor alive? | flock, released by the kernel when it dies |
| `delete-grace` (`grace_override`) | CLI `delete --grace-period` | supervisor on SIGTERM | atomic, before SIGTERM |
| `cgroup` (`cgroup_record`) | supervisor | `delete` after a crash, `exec`, `recover` | atomic, once the pod cgroup exists (cgroups do not outlive the machine) |
| `sandbox.pid` (`sandbox_pid`) | supervisor | `recover` | atomic, at each new sandbox (after a reboot a missing or torn one reads as a lost sandbox, as it is) |
| `runtime.json` (`runtime`) | supervisor | `exec`, `recover` | atomic, at each start of a supervisor: image store, secrets, configmaps, log settings |
| `pids.json` (`pids`) | supervisor (no pod cgroup only) | `exec` | atomic, at each container start |
| `network.json` (`network`) | supervisor | `delete` after a crash, `recover` | atomic, once the pod has an address |
| `etc-hosts`, `resolv.conf`, `serviceaccount/` (`hosts`, `resolv_conf`, `service_account`) | supervisor | containers (bind mounts) | before the first container |
| `shm/`, `volumes/<v>/` (`shm`, `volumes`) | supervisor (tmpfs, emptyDir) | containers | before the first container |
| `termination/<c>/<n>` (`termination`, `termination_file()`) | the container | supervisor, once it exited | the container's `terminationMessagePath` |
| `logs/` (`logs`, `log()`) | monitor (the container's stdout/stderr, rotated) | `logs` | a symlink to `<--log-dir>/<namespace>_<name>_<uid>/` |

| signal | sent by | to | means |
| --- | --- | --- | --- |
| SIGTERM, SIGINT | CLI `delete` (after `delete-grace`), Ctrl-C, systemd | supervisor | delete the pod gracefully; handled until the teardown has ended; once more with a shorter `delete-grace`: shorten the stop under way |
| SIGUSR1 | CLI `restart` | supervisor | restart the pod: new sandbox, init containers again |
| SIGHUP | CLI `apply` (after `pod.next.json`) | supervisor | adopt the updated manifest |
| SIGTERM, then SIGKILL at the deadline | supervisor | containers (by pidfd, then the cgroup) | stop a container |
| (exit) | container | its monitor (the parent), then supervisor (polls the monitor's pidfd) | the monitor reaps it and writes its record, then exits |

Durable (``fsync``) is what a reboot must not lose: the pod and its options, the attempts
and their exit codes, restart counts; what names processes, cgroups and addresses is
only atomic (no ``fsync`` on the start path), since none of them outlives the machine.
The order that keeps a crash harmless: the manifest before the supervisor, the monitor's
record before the monitor exits, ``observed.json`` before ``status.json``.
"""

from __future__ import annotations


def tables() -> str:
    """The two tables above, as ``docs/protocol.md`` repeats them."""
    lines = (__doc__ or "").splitlines()
    return "\n".join(line for line in lines if line.startswith("|")) + "\n"


def file_properties() -> set[str]:
    """The ``PodPaths`` properties and methods the file table names."""
    names: set[str] = set()
    for line in tables().splitlines():
        cell = line.split("|")[1]
        if "(`" in cell:
            inner = cell.split("(", 1)[1].rsplit(")", 1)[0]
            names |= {n.strip(" `").removesuffix("()") for n in inner.split(",")}
    return names
