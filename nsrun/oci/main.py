"""``nsrun-oci``: the entry point. Global flags, then the verb's module, imported alone.

Global flags (runc's): ``--root DIR`` (env ``NSRUN_OCI_ROOT``, default ``/run/nsrun/oci``),
``--log FILE``, ``--log-format text|json``, ``--systemd-cgroup`` (``cgroupsPath`` is
``slice:prefix:name``), ``--debug``; ``--rootless`` and ``--criu`` are accepted and ignored.
Every failure is one line (stderr, and the log file as an ``error`` entry) and exit code 1;
``run`` (without ``--detach``) exits with the container's status; an unknown verb exits 3, as
runc does. ``NSRUN_DEBUG=1`` or ``--debug`` adds the traceback of an internal error.
"""

from __future__ import annotations

import os
import sys

from nsrun.oci import args as flags
from nsrun.oci.log import Log

EXIT_FAILURE, EXIT_UNKNOWN_VERB = 1, 3
SPEC_VERSION = "1.1.0"

# verb -> module (under nsrun.oci) holding ``cmd_<verb>(ctx, argv)``.
VERBS = {
    "create": "create", "run": "create", "start": "lifecycle", "kill": "lifecycle",
    "delete": "lifecycle", "pause": "lifecycle", "resume": "lifecycle", "state": "info",
    "list": "info", "ps": "info", "features": "info", "spec": "info", "exec": "execverb",
    "update": "update",
}

GLOBAL_FLAGS = {
    "--root": ("root", flags.STR), "--log": ("log", flags.STR),
    "--log-format": ("log_format", flags.STR), "--systemd-cgroup": ("systemd_cgroup", flags.BOOL),
    "--debug": ("debug", flags.BOOL), "--rootless": ("rootless", flags.STR),
    "--criu": ("criu", flags.STR), "--version": ("version", flags.BOOL),
    "-v": ("version", flags.BOOL), "--help": ("help", flags.BOOL), "-h": ("help", flags.BOOL),
}


class Context:
    """What every verb gets: the state root, the log and the global switches."""

    def __init__(self, root: str, log: Log, systemd_cgroup: bool = False,
                 debug: bool = False) -> None:
        self.root, self.log = root, log
        self.systemd_cgroup, self.debug = systemd_cgroup, debug


def version() -> str:
    from nsrun import __version__

    return (f"nsrun-oci version {__version__}\nspec: {SPEC_VERSION}\n"
            f"python: {sys.version.split()[0]}\n")


USAGE = ("usage: nsrun-oci [--root DIR] [--log FILE] [--log-format text|json] "
         "[--systemd-cgroup] [--debug] VERB [flags] [ID] ...\nverbs: " +
         " ".join(sorted(VERBS)) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    log = Log(None)
    try:
        opts, rest = flags.parse(argv, GLOBAL_FLAGS)
        log = Log(opts["log"], opts["log_format"] or "text", bool(opts["debug"]))
        if opts["log_format"] not in (None, "text", "json"):
            raise _oci_error(f"invalid log-format: {opts['log_format']}")
        if opts["version"]:
            os.write(1, version().encode())
            return 0
        if opts["help"] or not rest:
            os.write(1 if opts["help"] else 2, USAGE.encode())
            return 0 if opts["help"] else EXIT_FAILURE
        if rest[0] not in VERBS:
            log.error(f"No help topic for '{rest[0]}'")
            return EXIT_UNKNOWN_VERB
        root = opts["root"] or os.environ.get("NSRUN_OCI_ROOT") or "/run/nsrun/oci"
        ctx = Context(os.path.abspath(root), log, bool(opts["systemd_cgroup"]),
                      bool(opts["debug"]))
        module = __import__(f"nsrun.oci.{VERBS[rest[0]]}", fromlist=["_"])
        return getattr(module, "cmd_" + rest[0])(ctx, rest[1:])
    except Exception as err:  # noqa: BLE001 - every failure is one line, as runc's
        return _fail(log, err, bool(os.environ.get("NSRUN_DEBUG")) or log.debug_on)


def _oci_error(msg: str) -> Exception:
    from nsrun.errors import OciError

    return OciError(msg)


def _fail(log: Log, err: Exception, debug: bool) -> int:
    from nsrun.errors import NsrunError

    if isinstance(err, NsrunError):
        log.error(str(err))
        return EXIT_FAILURE
    if isinstance(err, OSError):
        log.error(f"{err.filename + ': ' if err.filename else ''}{err.strerror or err}")
    else:
        log.error(f"internal error: {type(err).__name__}: {err}")
    if debug:
        import traceback

        traceback.print_exc()
    return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
