"""The pod verbs of the command line: ``run``, ``restart``, ``exec`` and ``logs``.

Each parses its flags and calls the lifecycle API (``nsrun.runtime.lifecycle``); what a
foreground ``run`` tells on stderr is ``nsrun.report.runreport``.
"""

from __future__ import annotations

import sys

from nsrun.errors import UsageError

SDNOTIFY = ("initialized", "ready", "started", "none")


def add_run(sub) -> None:
    r = sub.add_parser("run", help="run a pod until it finishes (or -d: in the background)")
    r.add_argument("file", help="Pod manifest (YAML or JSON; - for stdin)")
    r.add_argument("-d", "--detach", action="store_true",
                   help="supervise the pod in the background and return once it runs")
    r.add_argument("-w", "--watch", action="store_true",
                   help="print a get row on stdout each time the pod's status changes")
    r.add_argument("-q", "--quiet", action="store_true",
                   help="foreground: print nothing on stderr (by default a failed "
                        "container's reason and last log lines, and the final phase; on a "
                        "terminal also a get row per change and the phase of a pod that "
                        "succeeded)")
    r.add_argument("--rm", action="store_true", help="remove the pod's state when it ends")
    r.add_argument("--systemd", action="store_true",
                   help="run in a systemd transient unit with Delegate=yes (a scope; with -d "
                        "a Type=notify service), the pod cgroup inside it")
    r.add_argument("--sdnotify", choices=SDNOTIFY, default=None,
                   help="with NOTIFY_SOCKET set, send READY=1 once the pod is initialized "
                        "(its init containers are done), ready, or started; STATUS= on "
                        "every change (default: initialized with --systemd -d, else none)")
    add_output(r)
    add_pod_options(r)
    r.set_defaults(func=cmd_run)


def add_output(p, choices=("json", "yaml", "name")) -> None:
    p.add_argument("-o", "--output", choices=choices,
                   help="print the object(s) as " + ", ".join(choices))


def add_pod_options(r) -> None:
    """Options of ``run`` that ``create`` and ``apply`` share (they may create the pod)."""
    r.add_argument("--cgroup-parent", help="parent cgroup. v2: absolute, relative to the "
                   "cgroup2 mount, or . (the cgroup nsrun runs in); default: a delegated "
                   "systemd unit nsrun was started in, else <cgroup2 mount>/nsrun. v1: "
                   "relative to (default nsrun) or . the cgroup nsrun runs in, in each "
                   "hierarchy, or absolute from each hierarchy's root")
    r.add_argument("--cgroups", choices=("auto", "v2", "v1", "none"), default="auto",
                   help="auto: cgroup v2 where it has the controllers, v1 on a hybrid or v1 "
                        "host, else none; warn once about what cannot be enforced. v2, v1: "
                        "that driver, refusing limits it cannot enforce; none: no pod cgroup")
    r.add_argument("--pod-pids-limit", "--pod-max-pids", dest="pod_pids_limit", type=int,
                   metavar="N", help="pids.max of the pod cgroup (the kubelet's "
                   "--pod-max-pids; default: no limit)")
    r.add_argument("--backoff-initial", type=float, default=10.0, metavar="SECONDS",
                   help="first crash-loop back-off delay (default %(default)s)")
    r.add_argument("--backoff-max", type=float, default=300.0, metavar="SECONDS",
                   help="crash-loop back-off cap (default %(default)s)")
    r.add_argument("--legacy-annotations", action="store_true",
                   help="honour the pre-1.8 init-container annotations")
    r.add_argument("--log-max-attempts", type=int, default=20, metavar="N",
                   help="log files kept per container, one per attempt (default %(default)s)")
    r.add_argument("--log-max-bytes", type=int, default=10 * 1024 * 1024, metavar="BYTES",
                   help="bytes of logs kept per container (oldest attempts go first; "
                        "default %(default)s)")
    r.add_argument("--log-max-size", default="10Mi", metavar="QUANTITY",
                   help="rotate an attempt's log beyond this size (the kubelet's "
                        "containerLogMaxSize; bytes or a quantity; default %(default)s)")
    r.add_argument("--log-max-files", type=int, default=5, metavar="N",
                   help="log files kept per attempt, the live one included (the kubelet's "
                        "containerLogMaxFiles, at least 2; default %(default)s)")


def cmd_run(args) -> int:
    from nsrun.runtime import lifecycle
    from nsrun.runtime.options import Report

    flags = lifecycle.RunFlags.of(args)
    pod = lifecycle.load_one_pod(args.file, args.legacy_annotations)
    if args.systemd:
        from nsrun.runtime import systemd

        flags.sdnotify = args.sdnotify or ("initialized" if args.detach else "none")
        return systemd.run_under_systemd(args.world, flags, args.file, pod, args.detach,
                                         rest=_after_verb(args.argv))
    flags.sdnotify = args.sdnotify or "none"
    if args.detach:
        code = lifecycle.run(args.world, flags, pod, detach=True)
        _print_started(args, pod.metadata.name)
        return code
    # this process becomes the pod's supervisor, which tells what is asked here
    report = Report(tell=not args.quiet, rows=not args.quiet and sys.stderr.isatty(),
                    watch=args.watch, output=args.output, sdnotify=flags.sdnotify)
    return lifecycle.run(args.world, flags, pod, detach=False, keep=not args.rm,
                         report=report)


def _after_verb(argv: list[str]) -> list[str]:
    """This command's words from the verb on, without ``--systemd``."""
    from nsrun.cli import verb_of

    at = argv.index(verb_of(argv) or "run")
    return [a for a in argv[at:] if a != "--systemd"]


def _print_started(args, name: str) -> None:
    """``run -d``'s line: the pod's name, or the object (``-o``)."""
    if not args.output:
        print(name)
        return
    from nsrun.report import statusfile

    print_objects([statusfile.read(args.world.state.existing(name)) or {}], args.output,
                  single=True)


def print_objects(objects: list[dict], output: str, single: bool = False) -> None:
    from nsrun.report import output as out

    out.print_objects(objects, output, single=single)


def add_restart(sub) -> None:
    r = sub.add_parser("restart", help="restart a running pod: stop every container, new "
                       "sandbox, every init container runs again in order")
    r.add_argument("names", nargs="+", metavar="[pod] NAME")
    add_output(r)
    r.set_defaults(func=cmd_restart)


def cmd_restart(args) -> int:
    from nsrun.cliobjects import each, pod_names
    from nsrun.runtime import lifecycle

    def one(name: str) -> str:
        lifecycle.restart(args.world, name)
        return _done_line(args, name, "restarted")
    return each(pod_names(args.names), one)


def _done_line(args, name: str, verb: str) -> str:
    """kubectl's line, or the pod as it is now (``-o json|yaml``)."""
    if args.output == "name":
        return f"pod/{name}"
    if args.output in ("json", "yaml"):
        from nsrun.report import statusfile
        from nsrun.report.output import stream_text

        return stream_text(statusfile.read(args.world.state.existing(name)) or {}, args.output)
    return f"pod/{name} {verb}"


def add_exec(sub) -> None:
    e = sub.add_parser("exec", help="run a command in a running container (like kubectl exec)")
    e.add_argument("-c", "--container",
                   help="container name (default: the pod's default container)")
    e.add_argument("-t", "--tty", action="store_true",
                   help="run the command on a pseudo-terminal")
    e.add_argument("-i", "--stdin", action="store_true",
                   help="accepted for kubectl compatibility: stdin is always passed")
    e.add_argument("pod", metavar="[pod/]NAME")
    e.add_argument("command", nargs="+", metavar="COMMAND",
                   help="after --: the command and its arguments")
    e.set_defaults(func=cmd_exec)


def cmd_exec(args) -> int:
    from nsrun.cliobjects import pod_names
    from nsrun.runtime import lifecycle

    return lifecycle.exec_in(args.world, pod_names([args.pod])[0], args.container,
                             args.command, tty=args.tty)


def add_logs(sub) -> None:
    lg = sub.add_parser("logs", help="print a container's log")
    lg.add_argument("pod", metavar="[pod/]NAME")
    lg.add_argument("container_arg", nargs="?", metavar="CONTAINER", help=argparse_suppress())
    lg.add_argument("-c", "--container", help="container name (default: the only one)")
    lg.add_argument("-p", "--previous", action="store_true", help="the previous attempt")
    lg.add_argument("--attempt", type=int, help="attempt number (0 = first run)")
    lg.add_argument("-f", "--follow", action="store_true",
                    help="keep printing as the container writes, until the pod ends")
    lg.add_argument("--tail", type=int, default=-1, metavar="N",
                    help="the last N lines only (-1: all)")
    lg.add_argument("--timestamps", action="store_true",
                    help="prefix each line with when it was written (RFC3339, as the "
                         "log file's time of the line's arrival is not kept: the attempt's "
                         "start for earlier lines, now for followed ones)")
    lg.add_argument("--since", metavar="DURATION",
                    help="only an attempt that ran in the last DURATION (5s, 2m, 3h)")
    lg.add_argument("--all-containers", action="store_true",
                    help="every container's log, init containers first")
    lg.add_argument("--prefix", action="store_true",
                    help="prefix each line with [pod/NAME/CONTAINER]")
    lg.set_defaults(func=cmd_logs)


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def cmd_logs(args) -> int:
    from nsrun.cliobjects import pod_names
    from nsrun.report import logview

    name = pod_names([args.pod])[0]
    if args.container_arg and args.container:
        raise UsageError("give the container once: -c CONTAINER or as the second word")
    return logview.show(args.world.state.existing(name), logview.LogRequest(
        container=args.container or args.container_arg, previous=args.previous,
        attempt=args.attempt, follow=args.follow, tail=args.tail,
        timestamps=args.timestamps, since=_since(args.since),
        all_containers=args.all_containers, prefix=args.prefix))


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    from nsrun.report.output import parse_duration

    seconds = parse_duration(text)
    if seconds is None:
        raise UsageError(f'invalid argument "{text}" for "--since" flag: time: invalid '
                         f'duration "{text}"')
    return seconds
