"""Every exit code of the ``nsrun`` command, in one table (the README's "Exit codes" table is
this one; ``tests/unit/test_cli.py`` checks they agree).

Error classes (``nsrun.errors``) take their ``exit_code`` from here, and every verb returns
one of these. ``nsrun-oci`` keeps runc's codes (``nsrun.oci.main``), and ``nsrun exec``
passes on the command's own status (126/127 as a shell reports them).
"""

from __future__ import annotations

OK = 0
FAILED = 1  # run: the pod Failed; wait: the condition was not met before --timeout
USAGE = 2  # bad input: usage, unreadable file, invalid manifest or bundle
HOST = 3  # the host cannot run it: not root, missing feature, no systemd, cgroup mode refused
STATE = 4  # no such pod/service, already exists, locked (wait: not found)
RUNTIME = 5  # a host operation failed: cgroup, sandbox, spawn outside a container
INTERNAL = 125  # a bug in nsrun: one line; NSRUN_DEBUG=1 shows the traceback
SIGNALLED = 128  # + n: stopped by signal n (130 SIGINT, 143 SIGTERM) while running a pod

TABLE: tuple[tuple[str, str], ...] = (
    ("0", "success; for `run`: the pod Succeeded (`-d`: the pod was started); for `wait`: "
          "the condition is met"),
    ("1", "`run`: the pod Failed (e.g. an init container failed with `restartPolicy: Never`); "
          "`wait`: `--timeout` passed before the condition was met"),
    ("2", "bad input: usage (the verb's usage is printed), unreadable file, invalid manifest "
          "or bundle (nothing is created); for `create -f`/`apply -f` also a name already "
          "taken or an unavailable ClusterIP, checked for every object before any is created"),
    ("3", "the host cannot run it: not root, a missing kernel feature, `--cgroups=v2` "
          "refused, `--systemd` on a host without systemd"),
    ("4", "state conflict: no such pod or Service (`Error from server (NotFound): …`) or "
          "image (`image rm`), or one of that name already exists"),
    ("5", "a host operation failed (cgroup, sandbox, spawn outside a container); for "
          "`delete`: the pod stopped but something of it could not be removed (named on "
          "stderr; a second `delete` finishes the job)"),
    ("125", "internal error in nsrun itself (a bug: one line; `NSRUN_DEBUG=1` shows the "
            "traceback)"),
    ("130, 143", "`run` in the foreground was stopped by SIGINT/SIGTERM (the pod was deleted "
                 "gracefully)"),
)


def markdown() -> str:
    """The table as the README shows it."""
    rows = ["| code | meaning |", "| --- | --- |"]
    rows += [f"| {code} | {meaning} |" for code, meaning in TABLE]
    return "\n".join(rows)
