"""The nsrun command line: argparse, the verb table, and the one place errors become exit
codes (``nsrun.exitcodes``). No logic here: each verb lives in its own module, imported only
when that verb runs, and calls the lifecycle API (``nsrun.runtime.lifecycle``).

Global options come before the verb (``nsrun --root R --images I run pod.yaml``) and can be
set through ``NSRUN_*`` variables; they become one ``lifecycle.World`` passed down. Errors
are one line, ``nsrun: <message>``, or kubectl's ``Error from server (NotFound): pods "x" not
found``; a usage error also prints the verb's usage.
"""

from __future__ import annotations

import argparse
import os
import sys

from nsrun import exitcodes
from nsrun.errors import NsrunError, UsageError, tell

GLOBAL_VALUE_OPTIONS = ("--root", "--images", "--secrets", "--configmaps", "--pod-cidr",
                        "--service-cidr", "--cluster-domain", "--cluster-dns", "--resolv-conf",
                        "--seccomp-profile-root", "--log-dir")
# verb -> (module under nsrun, function adding its parser)
VERBS = {"run": ("podcli", "add_run"), "create": ("objcli", "add_create"),
         "apply": ("objcli", "add_apply"), "get": ("objcli", "add_get"),
         "describe": ("objcli", "add_describe"), "delete": ("objcli", "add_delete"),
         "logs": ("podcli", "add_logs"), "restart": ("podcli", "add_restart"),
         "exec": ("podcli", "add_exec"), "wait": ("watchcli", "add_wait"),
         "events": ("watchcli", "add_events"), "image": ("imagecli", "add_image"),
         "validate": ("modelcli", "add_validate"), "resources": ("modelcli", "add_resources"),
         "convert": ("modelcli", "add_convert"), "version": ("imagecli", "add_version"),
         "recover": ("recovercli", "add_recover")}


def verb_of(argv: list[str]) -> str | None:
    """The verb on the command line (the first word that is not a global option)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in GLOBAL_VALUE_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def _add(sub, verb: str) -> None:
    import importlib

    module, name = VERBS[verb]
    getattr(importlib.import_module(f"nsrun.{module}"), name)(sub)


def parser(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.Action]:
    """The parser and its verbs; only the verb being run gets its arguments built (a parser
    with every verb costs milliseconds on the start path), unless it is unknown (help)."""
    p = argparse.ArgumentParser(prog="nsrun", description="Run a Kubernetes Pod manifest on "
                                "this host with the kubelet's init-container semantics.")
    p.add_argument("--version", action="store_true", help="print nsrun's version and exit")
    _add_global_options(p)
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    verb = verb_of(argv)
    for name in [verb] if verb in VERBS else VERBS:
        _add(sub, name)
    return p, sub


def _add_global_options(p) -> None:
    from nsrun.core import netconfig as n
    from nsrun.runtime.lifecycle import DEFAULT_CONFIGMAPS, DEFAULT_LOG_DIR, DEFAULT_SECRETS
    from nsrun.state import DEFAULT_IMAGES, DEFAULT_ROOT

    env = os.environ.get
    for flag, default, what in (
            ("root", DEFAULT_ROOT, "state directory"),
            ("images", DEFAULT_IMAGES, "image store: one OCI bundle per image"),
            ("secrets", DEFAULT_SECRETS, "Secrets: <DIR>/<secretName>/<key>, one file per key"),
            ("configmaps", DEFAULT_CONFIGMAPS, "ConfigMaps: <DIR>/<name>/<key>"),
            ("log-dir", DEFAULT_LOG_DIR, "container logs: <DIR>/<namespace>_<pod>_<uid>/"),
            ("pod-cidr", n.DEFAULT_POD_CIDR, "pod addresses"),
            ("service-cidr", n.DEFAULT_SERVICE_CIDR, "ClusterIP addresses"),
            ("cluster-domain", n.DEFAULT_CLUSTER_DOMAIN, "cluster DNS domain"),
            ("cluster-dns", "", "the cluster DNS address in every pod (default: the service "
                                "CIDR's tenth address)"),
            ("resolv-conf", "/etc/resolv.conf", "the node's resolver file: dnsPolicy "
                                                'Default, and where the cluster DNS sends '
                                                'other names ("" for none)')):
        var = "NSRUN_" + flag.upper().replace("-", "_")
        p.add_argument(f"--{flag}", default=env(var, default), metavar=flag.upper(),
                       help=f"{what} (env {var}; default %(default)s)")
    p.add_argument("--seccomp-default", default=env("NSRUN_SECCOMP_DEFAULT", "true"),
                   metavar="BOOL", help="RuntimeDefault seccomp for containers whose pod names "
                   "no seccompProfile (the kubelet's flag; env NSRUN_SECCOMP_DEFAULT; default "
                   "%(default)s)")
    p.add_argument("--seccomp-profile-root",
                   default=env("NSRUN_SECCOMP_PROFILE_ROOT", "/var/lib/nsrun/seccomp"),
                   help="Localhost seccomp profiles: <DIR>/<localhostProfile> "
                        "(env NSRUN_SECCOMP_PROFILE_ROOT; default %(default)s)")


def _seccomp_argv(argv: list[str]) -> list[str]:
    """``--seccomp-default`` alone means true (a Go bool flag); ``=false`` turns it off."""
    return ["--seccomp-default=true" if a == "--seccomp-default" else a for a in argv]


def _seccomp_env(args) -> None:
    """The seccomp options reach the supervisor (and its containers' plans) in the
    environment (``bundle.seccomp_select.Settings.from_env``)."""
    from nsrun.bundle.seccomp_select import parse_bool

    try:
        parse_bool(str(args.seccomp_default), "--seccomp-default")
    except NsrunError as err:
        raise UsageError(str(err)) from None
    os.environ["NSRUN_SECCOMP_DEFAULT"] = str(args.seccomp_default)
    os.environ["NSRUN_SECCOMP_PROFILE_ROOT"] = args.seccomp_profile_root


def world(args):
    """The global options as the lifecycle API's ``World``."""
    from nsrun.runtime.lifecycle import World

    return World(root=args.root, images=args.images, secrets=args.secrets,
                 configmaps=args.configmaps, pod_cidr=args.pod_cidr,
                 service_cidr=args.service_cidr, cluster_domain=args.cluster_domain,
                 cluster_dns=args.cluster_dns, resolv_conf=args.resolv_conf,
                 log_dir=args.log_dir)


def verb_parser(sub, args) -> argparse.ArgumentParser | None:
    """The innermost parser of the command (``nsrun image import``'s, not ``image``'s)."""
    parser = sub.choices.get(getattr(args, "verb", None)) if sub is not None else None
    while parser is not None:
        inner = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, inner[0].dest, None) if inner else None
        if chosen not in (inner[0].choices if inner else {}):
            return parser
        parser = inner[0].choices[chosen]
    return None


def _usage_error(sub, args, err: UsageError) -> int:
    """kubectl's way: the error, then the verb's usage and where its help is."""
    print(f"nsrun: {err}", file=sys.stderr)
    parser = verb_parser(sub, args)
    if parser is not None:
        sys.stderr.write(parser.format_usage())
        print(f"See '{parser.prog} -h' for help and examples.", file=sys.stderr)
    return err.exit_code


def _dispatch(args, sub) -> int:
    try:
        _seccomp_env(args)
        return int(args.func(args) or 0)
    except UsageError as err:
        return _usage_error(sub, args, err)
    except NsrunError as err:
        return tell(err)


def main(argv: list[str] | None = None) -> int:
    argv = _seccomp_argv(sys.argv[1:] if argv is None else argv)
    p, sub = parser(argv)
    args, extra = p.parse_known_args(argv)
    if extra:  # the verb's own usage, as kubectl prints it
        (verb_parser(sub, args) or p).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.version or args.verb is None:
        if args.version:
            from nsrun.imagecli import print_version

            return print_version("")
        p.print_usage(sys.stderr)
        return exitcodes.USAGE
    args.world, args.argv = world(args), argv
    try:
        return _dispatch(args, sub)
    except KeyboardInterrupt:
        return exitcodes.SIGNALLED + 2
    except BrokenPipeError:
        return exitcodes.OK
    except Exception as err:  # a bug in nsrun: one line, the traceback only on request
        return tell(err)


if __name__ == "__main__":
    sys.exit(main())
