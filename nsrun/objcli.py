"""kubectl's object verbs over Pods and Services: ``create|apply|delete|get|describe``
with ``-f FILE`` (multi-document, mixed kinds, ``-`` for stdin) or resource names
(``get pods|po``, ``get services|svc``, ``get endpoints|ep``, ``describe svc NAME``…).

Output lines are kubectl's (``pod/myapp-pod created``, ``service "mydb" deleted``, tables with
its columns). ``create -f`` and ``apply -f`` check every object first (validation, names
already taken, ClusterIPs) and create nothing when one fails (exit 2); then they act in
file order.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from nsrun.cliobjects import each, split, targets
from nsrun.errors import NotFound, SpecError, UsageError
from nsrun.report.selector import selected

RESOURCE = {"pod": "pods", "service": "services", "endpoints": "endpoints"}


def add_get(sub) -> None:
    g = sub.add_parser("get", help="show pods, services, endpoints or events like kubectl get")
    g.add_argument("names", nargs="*", metavar="[TYPE] NAME",
                   help="pods|po, services|svc, endpoints|ep or events|ev, then names, or "
                        "TYPE/NAME (default: pods)")
    g.add_argument("-f", "--filename", help="the objects of a manifest (- for stdin)")
    g.add_argument("-o", "--output", metavar="FORMAT",
                   help="json, yaml, wide, name, jsonpath=TEMPLATE, custom-columns=SPEC")
    g.add_argument("-l", "--selector", help="label selector (k=v, k!=v, k, !k, "
                   "k in (a,b), k notin (a,b); comma: and)")
    g.add_argument("-A", "--all-namespaces", action="store_true",
                   help="accepted for kubectl compatibility: one host, every pod is listed")
    g.add_argument("-w", "--watch", action="store_true",
                   help="after the list, print each pod again when its status changes (-o "
                        "json: one JSON object per line)")
    g.set_defaults(func=cmd_get)


def add_describe(sub) -> None:
    d = sub.add_parser("describe", help="show a pod or service like kubectl describe")
    d.add_argument("names", nargs="*", metavar="[TYPE] NAME")
    d.add_argument("-f", "--filename", help="the objects of a manifest (- for stdin)")
    d.add_argument("-l", "--selector", help="label selector")
    d.set_defaults(func=cmd_describe)


def add_delete(sub) -> None:
    d = sub.add_parser("delete", help="stop pods gracefully, delete services; every trace goes")
    d.add_argument("names", nargs="*", metavar="[TYPE] NAME")
    d.add_argument("-f", "--filename", help="the objects of a manifest (- for stdin)")
    d.add_argument("-l", "--selector", help="label selector")
    d.add_argument("--all", action="store_true", help="every object of the type")
    d.add_argument("--timeout", type=float, help="seconds to wait for a pod's supervisor")
    d.add_argument("--grace-period", type=float, metavar="SECONDS",
                   help="override terminationGracePeriodSeconds; a shorter one shortens a "
                        "stop under way (0 = kill at once, negative: ignored)")
    d.add_argument("--now", action="store_true", help="the same as --grace-period=1")
    d.add_argument("--force", action="store_true", help="do not wait out a grace period: "
                   "kill at once (--grace-period=0)")
    d.add_argument("--ignore-not-found", action="store_true",
                   help="a missing object is not an error")
    d.add_argument("-o", "--output", choices=("name", "json", "yaml"),
                   help="name: print pod/NAME; json, yaml: each object as it was deleted")
    d.set_defaults(func=cmd_delete)


def add_create(sub) -> None:
    from nsrun.podcli import add_output, add_pod_options

    c = sub.add_parser("create", help="create the Pods and Services of a manifest (kubectl "
                       "create -f): pods start in the background")
    c.add_argument("-f", "--filename", required=True,
                   help="manifest: Pods and Services, several documents (- for stdin)")
    add_output(c)
    add_pod_options(c)
    c.set_defaults(func=cmd_create)


def add_apply(sub) -> None:
    from nsrun.podcli import add_output, add_pod_options

    a = sub.add_parser("apply", help="create pods and services, or update them: a changed init "
                       "container image restarts the pod, a changed app image that container")
    a.add_argument("file", nargs="?", help="manifest (YAML or JSON; - for stdin)")
    a.add_argument("-f", "--filename", help="the same, kubectl's way")
    add_output(a)
    add_pod_options(a)
    a.set_defaults(func=cmd_apply)


def _root(args) -> Path:
    return Path(args.root)


def _services(args, name: str | None) -> list[dict[str, Any]]:
    from nsrun.netstate import NetState

    net = NetState(_root(args))
    if name is None:
        return [net.service_object(s.metadata.namespace, s.metadata.name)
                for s in net.services()]
    obj = net.service_object(*split(name))
    if obj is None:
        raise NotFound("services", split(name)[1])
    return [obj]


def _model(svc_obj: dict[str, Any]):
    """The stored Service as a model (its status and timestamps dropped)."""
    from nsrun.core.service import decode_service

    return decode_service(svc_obj)[0]


def _endpoints(args, svc_obj: dict[str, Any]):
    from nsrun.core import endpoints
    from nsrun.runtime.netsync import live_pods

    return endpoints.addresses(_model(svc_obj), live_pods(_root(args)))


# ---------------------------------------------------------------- get


def cmd_get(args) -> int:
    from nsrun.report import output

    wanted = targets(args)
    kinds = list(dict.fromkeys(k for k, _ in wanted))
    if "event" in kinds:
        from nsrun.watchcli import show_events

        return show_events(args, [n for _, n in wanted if n])
    if args.watch and kinds != ["pod"]:
        raise UsageError("-w watches pods only")
    output.check_format(args.output)
    objects = {k: [o for o in _objects(args, k, [n for kk, n in wanted if kk == k])
                   if selected(o[0], args.selector)] for k in kinds}
    items = [o for k in kinds for o, _ in objects[k]]
    if args.output in (None, "wide"):
        _tables(args, kinds, objects)
    elif args.watch:
        for item in items:
            output.print_stream(item, args.output)
    else:
        single = len(wanted) == 1 and wanted[0][1] is not None
        output.print_objects(items, args.output, single=single and len(items) == 1)
    if args.watch:
        from nsrun.report.follow import watch

        names = [n for _, n in wanted if n]
        watch(args.world.state, names[0] if len(names) == 1 else None, items, args.output)
    return 0


def _objects(args, kind: str, names: list[str | None]) -> list[tuple[dict, Any]]:
    """(object, endpoints) of ``kind``: every one when a name is None."""
    from nsrun.report.follow import read_pods

    out: list[tuple[dict, Any]] = []
    for name in names:
        if kind == "pod":
            pod = split(name)[1] if name else None  # pods are one per name in a state root
            out += [(p, None) for p in read_pods(args.world.state, pod)]
        elif kind == "service":
            out += [(s, None) for s in _services(args, name)]
        else:
            for svc in _services(args, name):
                addrs = _endpoints(args, svc)
                if addrs is None and name is not None:
                    raise NotFound("endpoints", name)
                if addrs is not None:
                    out.append((_endpoints_object(svc, addrs), (svc, addrs)))
    return out


def _endpoints_object(svc: dict[str, Any], addrs) -> dict[str, Any]:
    from nsrun.core.endpoints import endpoints_object

    return endpoints_object(_model(svc), addrs, svc["metadata"].get("creationTimestamp"))


def _tables(args, kinds: list[str], objects: dict[str, list]) -> None:
    from nsrun.core import svcprinter
    from nsrun.core.printer import COLUMNS, get_row, table

    now, wide = time.time(), args.output == "wide"
    prefix = len(kinds) > 1
    blocks = []
    for kind in kinds:
        if kind == "pod":
            head = COLUMNS + (svcprinter.POD_WIDE_COLUMNS if wide else ())
            rows = [get_row(p, now) + (svcprinter.pod_wide(p) if wide else ())
                    for p, _ in objects[kind]]
        elif kind == "service":
            head = svcprinter.service_columns(wide)
            rows = [svcprinter.service_row(s, now, wide) for s, _ in objects[kind]]
        else:
            head = svcprinter.ENDPOINTS_COLUMNS
            rows = [svcprinter.endpoints_row(s, a, now) for _, (s, a) in objects[kind]]
        if prefix:
            rows = [(f"{kind}/{r[0]}",) + tuple(r[1:]) for r in rows]
        if rows:
            blocks.append(table(rows, head))
    if blocks:
        print("\n\n".join(blocks), flush=True)
    else:
        print("No resources found in default namespace.", file=sys.stderr)


# ---------------------------------------------------------------- describe


def cmd_describe(args) -> int:
    from nsrun.core.svcprinter import describe_service
    from nsrun.report import events, statusfile
    from nsrun.report.describe import describe

    texts = []
    state = args.world.state
    for kind, name in targets(args):
        if kind == "service":
            texts += [describe_service(s, _endpoints(args, s)) for s in _services(args, name)
                      if selected(s, args.selector)]
        elif kind == "pod":
            names = [split(name)[1]] if name else state.pod_names()
            for n in names:
                paths = state.existing(n)
                pod = statusfile.read(paths) or {}
                if selected(pod, args.selector):
                    texts.append(describe(pod, events.read(paths), time.time()))
        else:
            raise UsageError("describe takes pods and services")
    if not texts:
        print("No resources found in default namespace.", file=sys.stderr)
    print("\n\n\n".join(texts))
    return 0


# ---------------------------------------------------------------- delete


def cmd_delete(args) -> int:
    wanted = targets(args)
    if not args.names and not args.filename and not args.all and not args.selector:
        raise UsageError("you must specify the names of resources to delete, or --all, "
                         "-l or -f")
    grace = _grace(args)
    items = []
    for kind, name in wanted:
        items += [(kind, n) for n in _names_of(args, kind)] if name is None else [(kind, name)]
    return each(items, lambda t: _delete_one(args, grace, *t), lambda t: "")


def _grace(args) -> float | None:
    """kubectl's rules: a negative ``--grace-period`` is ignored (``--force``: 0)."""
    given = args.grace_period if args.grace_period is None or args.grace_period >= 0 else None
    if args.force:
        print("Warning: Immediate deletion does not wait for confirmation that the running "
              "resource has been terminated. The resource may continue to run on the "
              "cluster indefinitely.", file=sys.stderr)
        return 0.0 if given is None else given
    if args.now:
        if args.grace_period is not None:
            raise UsageError("--now and --grace-period cannot be specified together")
        return 1.0
    return given


def _names_of(args, kind: str) -> list[str]:
    """Every object of ``kind`` the selector picks (``--all``, ``-l``)."""
    if kind == "pod":
        from nsrun.report.follow import read_pods

        return [p["metadata"]["name"] for p in read_pods(args.world.state, None)
                if selected(p, args.selector)]
    if kind == "service":
        return [s["metadata"]["name"] for s in _services(args, None)
                if selected(s, args.selector)]
    raise UsageError("delete takes pods and services")


def _delete_one(args, grace: float | None, kind: str, name: str) -> str | None:
    from nsrun.runtime import lifecycle, services

    namespace, bare = split(name)
    try:
        was = _as_stored(args, kind, name) if args.output in ("json", "yaml") else {}
        if kind == "pod":
            from nsrun.report.progress import ticking

            ticking(f'deleting pod "{bare}"',
                    lambda: lifecycle.delete_pod(args.world, bare, args.timeout, grace))
        elif kind == "service":
            from nsrun.netstate import NetState

            services.delete(_root(args), NetState(_root(args)).stored_config(), namespace,
                            bare)
        else:
            raise UsageError("delete takes pods and services")
    except NotFound:
        if args.ignore_not_found:
            return None
        raise
    if args.output in ("json", "yaml"):
        from nsrun.report.output import stream_text

        return stream_text(was, args.output)
    return f"{kind}/{bare}" if args.output == "name" else f'{kind} "{bare}" deleted'


def _as_stored(args, kind: str, name: str) -> dict[str, Any]:
    """A pod or Service as stored (``NotFound`` when there is none)."""
    if kind == "service":
        return _services(args, name)[0]
    from nsrun.report import statusfile

    return statusfile.read(args.world.state.existing(split(name)[1])) or {}


# ---------------------------------------------------------------- create and apply


def cmd_create(args) -> int:
    return _create_or_apply(args, apply=False)


def cmd_apply(args) -> int:
    if bool(args.file) == bool(args.filename):
        raise UsageError("apply takes one manifest: FILE or -f FILE")
    args.filename = args.filename or args.file
    return _create_or_apply(args, apply=True)


def _create_or_apply(args, apply: bool) -> int:
    from nsrun.core import service as service_model
    from nsrun.core.objects import ref
    from nsrun.runtime.lifecycle import check_pod, load_objects, net_config

    objects = load_objects(args.filename, getattr(args, "legacy_annotations", False))
    invalid = []
    for obj in objects:
        try:
            (service_model.check if obj.kind == "Service" else check_pod)(
                obj, args.filename)
        except SpecError as err:
            invalid.append(str(err))
    if invalid:
        raise UsageError("\n".join(invalid))
    cfg = net_config(args.world)
    _precheck(args, cfg, objects, apply)
    return each(objects, lambda o: _result(args, o, _act(args, cfg, o, apply)),
                lambda o: f"{ref(o)}: ")


def _result(args, obj, word: str) -> str:
    from nsrun.core.objects import ref

    if args.output == "name":
        return ref(obj)
    if args.output in ("json", "yaml"):
        from nsrun.report.output import stream_text

        return stream_text(_stored(args, obj), args.output)
    return f"{ref(obj)} {word}"


def _stored(args, obj) -> dict[str, Any]:
    """The object as stored (a pod with its status, a Service with its ClusterIP)."""
    return _as_stored(args, obj.kind.lower(), f"{obj.metadata.namespace}/{obj.metadata.name}")


def _precheck(args, cfg, objects: list[Any], apply: bool) -> None:
    """Every reason one object cannot be made, all at once; nothing is created then."""
    from nsrun.runtime import services

    lines: list[str] = []
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        key = (obj.kind, obj.metadata.name)
        if key in seen:
            lines.append(f'{obj.kind}.{obj.metadata.name}: Duplicate value: '
                         f'"{obj.metadata.name}" (twice in {args.filename})')
        seen.add(key)
        if obj.kind == "Pod" and not apply and args.world.state.pod(
                obj.metadata.name).dir.exists():
            lines.append(_exists(args, "pods", obj.metadata.name))
    svcs = [o for o in objects if o.kind == "Service"]
    for svc, problem in services.problems(_root(args), cfg, svcs, replace=apply):
        if isinstance(problem, str):
            lines.append(_exists(args, "services", svc.metadata.name))
        else:
            lines.append(str(SpecError([problem], pod=svc.metadata.name, kind="Service")))
    if lines:
        raise UsageError("\n".join(lines))


def _exists(args, resource: str, name: str) -> str:
    return (f'Error from server (AlreadyExists): error when creating "{args.filename}": '
            f'{resource} "{name}" already exists')


def _act(args, cfg, obj, apply: bool) -> str:
    from nsrun.runtime import lifecycle, services

    if obj.kind == "Service":
        return services.store(_root(args), cfg, obj)
    flags = lifecycle.RunFlags.of(args)
    if apply:
        return lifecycle.apply_pod(args.world, flags, obj)
    from nsrun.runtime.supervise import with_uid

    lifecycle.run(args.world, flags, with_uid(obj), detach=True)
    return "created"
