"""The nsrun command line: argparse verbs that call into the runtime; no logic here.

Global options come before the verb (``nsrun --root R --images I run pod.yaml``) and can be
set through ``NSRUN_ROOT`` and ``NSRUN_IMAGES``. Errors are printed as one line
``nsrun: <message>`` and mapped to exit codes by their class (see ``nsrun.errors``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from nsrun.errors import NsrunError, UsageError

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 125


GLOBAL_VALUE_OPTIONS = ("--root", "--images", "--secrets", "--configmaps", "--pod-cidr",
                        "--service-cidr", "--cluster-domain", "--cluster-dns", "--resolv-conf",
                        "--seccomp-profile-root")
MODEL_VERBS = ("validate", "resources", "convert")


def _verb_of(argv: list[str]) -> str | None:
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


def _parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser; only the verb being run gets its arguments built (a full parser with every
    verb costs milliseconds on the start path), unless the verb is unknown (help)."""
    from nsrun.state import DEFAULT_IMAGES, DEFAULT_ROOT

    p = argparse.ArgumentParser(prog="nsrun", description="Run a Kubernetes Pod manifest on "
                                "this host with the kubelet's init-container semantics.")
    p.add_argument("--root", default=os.environ.get("NSRUN_ROOT", DEFAULT_ROOT),
                   help="state directory (env NSRUN_ROOT; default %(default)s)")
    p.add_argument("--images", default=os.environ.get("NSRUN_IMAGES", DEFAULT_IMAGES),
                   help="image store: one OCI bundle per image (env NSRUN_IMAGES; "
                        "default %(default)s)")
    p.add_argument("--secrets", default=os.environ.get("NSRUN_SECRETS", "/etc/nsrun/secrets"),
                   help="Secrets: <DIR>/<secretName>/<key>, one file per key "
                        "(env NSRUN_SECRETS; default %(default)s)")
    p.add_argument("--configmaps",
                   default=os.environ.get("NSRUN_CONFIGMAPS", "/etc/nsrun/configmaps"),
                   help="ConfigMaps: <DIR>/<name>/<key>, one file per key "
                        "(env NSRUN_CONFIGMAPS; default %(default)s)")
    _add_network_options(p)
    _add_seccomp_options(p)
    sub = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    verbs = {"run": _add_run, "create": _add_create, "apply": _add_apply,
             "get": _objcli("add_get"), "describe": _objcli("add_describe"),
             "logs": _add_logs, "restart": _add_restart, "delete": _objcli("add_delete"),
             "exec": _add_exec, "image": _add_image}
    verb = _verb_of(argv)
    if verb in verbs:
        verbs[verb](sub)
    elif verb in MODEL_VERBS:
        _add_model_verbs(sub)
    else:
        for add in verbs.values():
            add(sub)
        _add_model_verbs(sub)
    return p


def _add_network_options(p) -> None:
    from nsrun.core import netconfig as n

    env = os.environ.get
    p.add_argument("--pod-cidr", default=env("NSRUN_POD_CIDR", n.DEFAULT_POD_CIDR),
                   help="pod addresses (env NSRUN_POD_CIDR; default %(default)s)")
    p.add_argument("--service-cidr", default=env("NSRUN_SERVICE_CIDR", n.DEFAULT_SERVICE_CIDR),
                   help="ClusterIP addresses (env NSRUN_SERVICE_CIDR; default %(default)s)")
    p.add_argument("--cluster-domain", default=env("NSRUN_CLUSTER_DOMAIN",
                                                   n.DEFAULT_CLUSTER_DOMAIN),
                   help="cluster DNS domain (env NSRUN_CLUSTER_DOMAIN; default %(default)s)")
    p.add_argument("--cluster-dns", default=env("NSRUN_CLUSTER_DNS", ""),
                   help="the cluster DNS address in every pod (env NSRUN_CLUSTER_DNS; "
                        "default: the service CIDR's tenth address)")
    p.add_argument("--resolv-conf", default=env("NSRUN_RESOLV_CONF", "/etc/resolv.conf"),
                   help="the node's resolver file: dnsPolicy Default, and where the cluster "
                        "DNS sends other names (env NSRUN_RESOLV_CONF; default %(default)s; "
                        '"" for none)')


def net_config(args):
    """The world's network settings (fixed in the state root on first use)."""
    from nsrun.core.netconfig import make_config
    from nsrun.netstate import NetState

    root = os.path.abspath(args.root)
    try:
        wanted = make_config(os.path.normpath(root), args.pod_cidr, args.service_cidr,
                             args.cluster_domain, args.cluster_dns)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return NetState(_path(root)).settle_config(wanted)


def _add_run(sub) -> None:
    r = sub.add_parser("run", help="run a pod until it finishes (or -d: in the background)")
    r.add_argument("file", help="Pod manifest (YAML or JSON; - for stdin)")
    r.add_argument("-d", "--detach", action="store_true",
                   help="supervise the pod in the background and return once it runs")
    r.add_argument("-w", "--watch", action="store_true",
                   help="print a get row each time the pod's status changes")
    r.add_argument("--rm", action="store_true", help="remove the pod's state when it ends")
    r.add_argument("--systemd", action="store_true",
                   help="run in a systemd transient unit with Delegate=yes (a scope; with -d "
                        "a service), the pod cgroup inside it")
    _add_pod_options(r)
    r.set_defaults(func=cmd_run)


def _add_pod_options(r) -> None:
    """Options of ``run`` that ``apply`` shares (it may create the pod)."""
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


def _add_create(sub) -> None:
    c = sub.add_parser("create", help="create the Pods and Services of a manifest (kubectl "
                       "create -f): pods start in the background")
    c.add_argument("-f", "--filename", required=True,
                   help="manifest: Pods and Services, several documents (- for stdin)")
    _add_pod_options(c)
    c.set_defaults(func=_objcli("cmd_create"), watch=False)


def _add_apply(sub) -> None:
    a = sub.add_parser("apply", help="create pods and services, or update them: a changed init "
                       "container image restarts the pod, a changed app image that container")
    a.add_argument("file", nargs="?", help="manifest (YAML or JSON; - for stdin)")
    a.add_argument("-f", "--filename", help="the same, kubectl's way")
    _add_pod_options(a)
    a.set_defaults(func=cmd_apply, watch=False)


def _objcli(name: str):
    """``nsrun.objcli.<name>``, imported when called (only the verb being run pays it)."""
    def call(arg):
        from nsrun import objcli

        return getattr(objcli, name)(arg)
    return call


def _add_restart(sub) -> None:
    r = sub.add_parser("restart", help="restart a running pod: stop every container, new "
                       "sandbox, every init container runs again in order")
    r.add_argument("pod")
    r.set_defaults(func=cmd_restart)


def _add_logs(sub) -> None:
    lg = sub.add_parser("logs", help="print a container's log")
    lg.add_argument("pod")
    lg.add_argument("-c", "--container", help="container name (default: the only one)")
    lg.add_argument("-p", "--previous", action="store_true", help="the previous attempt")
    lg.add_argument("--attempt", type=int, help="attempt number (0 = first run)")
    lg.add_argument("-f", "--follow", action="store_true",
                    help="keep printing as the container writes, until the pod ends")
    lg.set_defaults(func=cmd_logs)


def _add_exec(sub) -> None:
    e = sub.add_parser("exec", help="run a command in a running container (like kubectl exec)")
    e.add_argument("-c", "--container",
                   help="container name (default: the pod's default container)")
    e.add_argument("-t", "--tty", action="store_true",
                   help="run the command on a pseudo-terminal")
    e.add_argument("-i", "--stdin", action="store_true",
                   help="accepted for kubectl compatibility: stdin is always passed")
    e.add_argument("pod")
    e.add_argument("command", nargs="+", metavar="COMMAND",
                   help="after --: the command and its arguments")
    e.set_defaults(func=cmd_exec)


def _add_image(sub) -> None:
    im = sub.add_parser("image", help="manage the image store (OCI bundles)")
    isub = im.add_subparsers(dest="image_verb", metavar="ACTION", required=True)
    imp = isub.add_parser("import", help="make a bundle from a root filesystem directory")
    imp.add_argument("name")
    imp.add_argument("--rootfs", required=True)
    imp.add_argument("--command", nargs="+", help="the bundle's process.args (default: sh)")
    imp.set_defaults(func=cmd_image_import)
    bb = isub.add_parser("busybox", help="make a bundle from Debian's busybox-static")
    bb.add_argument("name", nargs="?", default="busybox")
    bb.set_defaults(func=cmd_image_busybox)
    ls = isub.add_parser("ls", help="list images")
    ls.set_defaults(func=cmd_image_ls)
    rm = isub.add_parser("rm", help="remove an image")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_image_rm)


def _add_model_verbs(sub) -> None:
    from nsrun import modelcli

    modelcli.register(sub)


# -- verbs ------------------------------------------------------------------------------------

def read_manifest(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise UsageError(f"{path}: {err.strerror}") from None


def load_one_pod(path: str, legacy: bool):
    from nsrun.core import validate
    from nsrun.core.spec import load_pods_with_warnings

    pods, warnings = load_pods_with_warnings(read_manifest(path), path,
                                             legacy_annotations=legacy)
    for w in warnings:
        print(f"nsrun: warning: {w}", file=sys.stderr)
    if len(pods) != 1:
        raise UsageError(f"{path}: run takes one Pod, found {len(pods)}")
    validate.check(pods[0], path)
    return pods[0]


def cmd_run(args) -> int:
    from nsrun.runtime import podrun
    from nsrun.state import StateRoot

    pod = podrun.with_uid(load_one_pod(args.file, args.legacy_annotations))
    if args.systemd:
        from nsrun.runtime.systemd import run_under_systemd

        return run_under_systemd(args.root, args.file, pod, args.detach)
    return podrun.run(pod, StateRoot(_path(args.root)), pod_options(args, pod),
                      detach=args.detach, keep=not args.rm)


def pod_options(args, pod):
    from nsrun.bundle.images import ImageStore
    from nsrun.core import resources
    from nsrun.core.backoff import BackoffPolicy
    from nsrun.modelcli import node_memory
    from nsrun.runtime.supervisor import Options

    computed = resources.compute(pod, node_pids_limit=args.pod_pids_limit,
                                 node_memory=node_memory())
    return Options(images=ImageStore(args.images),
                   backoff=BackoffPolicy(args.backoff_initial, args.backoff_max),
                   cgroup_parent=args.cgroup_parent, cgroup_mode=args.cgroups,
                   cgroup_files=computed.cgroup_files(), qos_class=computed.qos_class,
                   oom_score_adj={c.name: computed.oom_score_adj(c.name)
                                  for c in computed.containers},
                   log_max_attempts=max(1, args.log_max_attempts),
                   log_max_bytes=args.log_max_bytes,
                   on_change=_print_row if args.watch else None,
                   net=net_config(args), resolv_conf=args.resolv_conf)


def cmd_apply(args) -> int:
    from nsrun.objcli import cmd_apply as apply_objects

    if bool(args.file) == bool(args.filename):
        raise UsageError("apply takes one manifest: FILE or -f FILE")
    args.filename = args.filename or args.file
    return apply_objects(args)


def cmd_restart(args) -> int:
    from nsrun.runtime import podrun
    from nsrun.state import StateRoot

    podrun.restart(StateRoot(_path(args.root)), args.pod)
    print(f"pod/{args.pod} restarted")
    return 0


def cmd_exec(args) -> int:
    from nsrun.runtime import execcmd

    return execcmd.exec_in_pod(_path(args.root), args.pod, args.container, args.command,
                               tty=args.tty, images=args.images, secrets=args.secrets,
                               configmaps=args.configmaps)


def _print_row(pod: dict[str, Any]) -> None:
    import time

    from nsrun.core.printer import get_row

    print("   ".join(get_row(pod, time.time())), flush=True)


def cmd_logs(args) -> int:
    from nsrun.report import logs, statusfile
    from nsrun.state import StateRoot

    paths = StateRoot(_path(args.root)).existing(args.pod)
    container = args.container or _only_container(statusfile.read(paths) or {}, args.pod)
    attempt = logs.choose_attempt(paths, container, args.previous, args.attempt)
    with open(paths.log(container, attempt), "rb") as f:
        sys.stdout.buffer.write(f.read())
        sys.stdout.flush()
        if args.follow:
            from nsrun.report.follow import follow

            follow(f, paths, container, attempt)
    return 0


def _only_container(pod: dict, name: str) -> str:
    containers = [c["name"] for c in pod.get("spec", {}).get("containers", [])]
    if len(containers) != 1:
        raise UsageError(f'a container name must be specified for pod {name}, choose one of: '
                         f"[{' '.join(containers)}]")
    return containers[0]


def cmd_image_import(args) -> int:
    from nsrun.bundle.images import ImageStore

    print(ImageStore(args.images).import_rootfs(args.name, args.rootfs, args.command))
    return 0


def cmd_image_busybox(args) -> int:
    from nsrun.bundle.images import ImageStore, build_busybox

    print(build_busybox(ImageStore(args.images), args.name))
    return 0


def cmd_image_ls(args) -> int:
    from nsrun.bundle.images import ImageStore
    from nsrun.core.printer import table

    rows = [(ref, str(path)) for ref, path in ImageStore(args.images).list()]
    print(table(rows, ("IMAGE", "BUNDLE")))
    return 0


def cmd_image_rm(args) -> int:
    from nsrun.bundle.images import ImageStore

    ImageStore(args.images).remove(args.name)
    return 0


def _path(p: str):
    from pathlib import Path

    return Path(p)


def _add_seccomp_options(p: argparse.ArgumentParser) -> None:
    """The kubelet's ``--seccomp-default`` (``=true|false``; here on unless said) and where
    ``Localhost`` profiles live."""
    p.add_argument("--seccomp-default", default=os.environ.get("NSRUN_SECCOMP_DEFAULT", "true"),
                   metavar="BOOL", help="RuntimeDefault seccomp for containers whose pod names "
                   "no seccompProfile (env NSRUN_SECCOMP_DEFAULT; default %(default)s)")
    p.add_argument("--seccomp-profile-root",
                   default=os.environ.get("NSRUN_SECCOMP_PROFILE_ROOT", "/var/lib/nsrun/seccomp"),
                   help="Localhost seccomp profiles: <DIR>/<localhostProfile> "
                        "(env NSRUN_SECCOMP_PROFILE_ROOT; default %(default)s)")


def _seccomp_argv(argv: list[str]) -> list[str]:
    """``--seccomp-default`` alone means true (a Go bool flag); ``=false`` turns it off."""
    return ["--seccomp-default=true" if a == "--seccomp-default" else a for a in argv]


def _seccomp_env(args: argparse.Namespace) -> None:
    from nsrun.bundle.seccomp_select import parse_bool

    word = str(args.seccomp_default)
    try:
        parse_bool(word, "--seccomp-default")
    except NsrunError as err:
        raise UsageError(str(err)) from None
    os.environ["NSRUN_SECCOMP_DEFAULT"] = word
    os.environ["NSRUN_SECCOMP_PROFILE_ROOT"] = args.seccomp_profile_root


def main(argv: list[str] | None = None) -> int:
    argv = _seccomp_argv(sys.argv[1:] if argv is None else argv)
    args = _parser(argv).parse_args(argv)
    os.environ["NSRUN_SECRETS"], os.environ["NSRUN_CONFIGMAPS"] = args.secrets, args.configmaps
    try:
        _seccomp_env(args)
        return int(args.func(args) or 0)
    except NsrunError as err:
        print(f"nsrun: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as err:  # a bug in nsrun: one line, the traceback only on request
        if os.environ.get("NSRUN_DEBUG"):
            raise
        print(f"nsrun: internal error: {type(err).__name__}: {err} "
              "(NSRUN_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
