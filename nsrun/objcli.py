"""kubectl's object verbs over Pods and Services: ``create|apply|delete|get|describe``
with ``-f FILE`` (multi-document, mixed kinds, ``-`` for stdin) or resource names
(``get pods|po``, ``get services|svc``, ``get endpoints|ep``, ``describe svc NAME``…).

Output lines are kubectl's (``pod/myapp-pod created``, ``service "mydb" deleted``, tables with
its columns). ``create -f`` and ``apply -f`` check every object first (validation, names
already taken, ClusterIPs) and create nothing when one fails (exit 2); then they act in
file order.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from nsrun.errors import NsrunError, SpecError, StateError, UsageError

KINDS = {"pods": "pod", "pod": "pod", "po": "pod", "services": "service",
         "service": "service", "svc": "service", "endpoints": "endpoints", "ep": "endpoints"}


def add_get(sub) -> None:
    g = sub.add_parser("get", help="show pods, services or endpoints like kubectl get")
    g.add_argument("names", nargs="*", metavar="[TYPE] NAME",
                   help="pods|po, services|svc or endpoints|ep, then names (default: pods)")
    g.add_argument("-f", "--filename", help="the objects of a manifest (- for stdin)")
    g.add_argument("-o", "--output", choices=("json", "yaml", "wide", "name"))
    g.add_argument("-w", "--watch", action="store_true",
                   help="after the table, print a row each time a pod's status changes")
    g.set_defaults(func=cmd_get)


def add_describe(sub) -> None:
    d = sub.add_parser("describe", help="show a pod or service like kubectl describe")
    d.add_argument("names", nargs="*", metavar="[TYPE] NAME")
    d.add_argument("-f", "--filename", help="the objects of a manifest (- for stdin)")
    d.set_defaults(func=cmd_describe)


def add_delete(sub) -> None:
    d = sub.add_parser("delete", help="stop pods gracefully, delete services; every trace goes")
    d.add_argument("names", nargs="*", metavar="[TYPE] NAME")
    d.add_argument("-f", "--filename", help="the objects of a manifest (- for stdin)")
    d.add_argument("--timeout", type=float, help="seconds to wait for a pod's supervisor")
    d.add_argument("--grace-period", type=float, metavar="SECONDS",
                   help="override terminationGracePeriodSeconds (0 = kill at once)")
    d.set_defaults(func=cmd_delete)


# ---------------------------------------------------------------- what the command names


def _load(args) -> list[Any]:
    from nsrun.cli import read_manifest
    from nsrun.core.objects import load_objects

    objects, warnings = load_objects(read_manifest(args.filename), args.filename,
                                     legacy_annotations=getattr(args, "legacy_annotations",
                                                                False))
    for w in warnings:
        print(f"nsrun: warning: {w}", file=sys.stderr)
    return objects


def targets(args) -> list[tuple[str, str | None]]:
    """(kind, name) pairs the command is about; name None: every object of that kind."""
    if args.filename:
        from nsrun.cli import read_manifest
        from nsrun.core.objects import object_refs

        if args.names:
            raise UsageError("when -f is given, no names may be given")
        refs = object_refs(read_manifest(args.filename), args.filename)
        return [(kind.lower(), name) for kind, name in refs]
    names = list(args.names)
    kind = "pod"
    if names and names[0] in KINDS:
        kind = KINDS[names.pop(0)]
    return [(kind, n) for n in names] or [(kind, None)]


def _root(args) -> Path:
    return Path(args.root)


def split(name: str) -> tuple[str, str]:
    """``[<namespace>/]<name>`` → (namespace, name); ``default`` when none is given."""
    namespace, _, bare = name.rpartition("/")
    return namespace or "default", bare


def _services(args, name: str | None) -> list[dict[str, Any]]:
    from nsrun.netstate import NetState

    net = NetState(_root(args))
    if name is None:
        return [net.service_object(s.metadata.namespace, s.metadata.name)
                for s in net.services()]
    obj = net.service_object(*split(name))
    if obj is None:
        raise StateError(f'services "{split(name)[1]}" not found')
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
    from nsrun.state import StateRoot

    wanted = targets(args)
    kinds = list(dict.fromkeys(k for k, _ in wanted))
    if args.watch and kinds != ["pod"]:
        raise UsageError("-w watches pods only")
    objects = {k: _objects(args, k, [n for kk, n in wanted if kk == k]) for k in kinds}
    if args.output in ("json", "yaml"):
        items = [o for k in kinds for o, _ in objects[k]]
        single = len(wanted) == 1 and wanted[0][1] is not None
        _dump(items[0] if single and items else {"apiVersion": "v1", "kind": "List",
                                                  "items": items}, args.output)
    elif args.output == "name":
        for k in kinds:
            for obj, _ in objects[k]:
                print(f"{k}/{obj['metadata']['name']}")
    else:
        _tables(args, kinds, objects)
    if args.watch:
        from nsrun.report.follow import watch

        names = [n for _, n in wanted if n]
        watch(StateRoot(_root(args)), names[0] if len(names) == 1 else None,
              [o for o, _ in objects["pod"]])
    return 0


def _objects(args, kind: str, names: list[str | None]) -> list[tuple[dict, Any]]:
    """(object, endpoints) of ``kind``: every one when a name is None."""
    from nsrun.report.follow import read_pods
    from nsrun.state import StateRoot

    out: list[tuple[dict, Any]] = []
    for name in names:
        if kind == "pod":
            pod = split(name)[1] if name else None  # pods are one per name in a state root
            out += [(p, None) for p in read_pods(StateRoot(_root(args)), pod)]
        elif kind == "service":
            out += [(s, None) for s in _services(args, name)]
        else:
            for svc in _services(args, name):
                addrs = _endpoints(args, svc)
                if addrs is None and name is not None:
                    raise StateError(f'endpoints "{name}" not found')
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
    prefix = len(kinds) > 1 or bool(args.filename and len(kinds) > 1)
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


def _dump(obj: Any, output: str) -> None:
    if output == "json":
        print(json.dumps(obj, indent=4))
    else:
        import yaml

        print(yaml.safe_dump(obj, sort_keys=False), end="")


# ---------------------------------------------------------------- describe


def cmd_describe(args) -> int:
    from nsrun.core.svcprinter import describe_service
    from nsrun.report import events, statusfile
    from nsrun.report.describe import describe
    from nsrun.state import StateRoot

    texts = []
    state = StateRoot(_root(args))
    for kind, name in targets(args):
        if kind == "service":
            texts += [describe_service(s, _endpoints(args, s)) for s in _services(args, name)]
        elif kind == "pod":
            names = [split(name)[1]] if name else state.pod_names()
            for n in names:
                paths = state.existing(n)
                texts.append(describe(statusfile.read(paths) or {}, events.read(paths),
                                      time.time()))
        else:
            raise UsageError("describe takes pods and services")
    print("\n\n\n".join(texts))
    return 0


# ---------------------------------------------------------------- delete


def cmd_delete(args) -> int:
    wanted = targets(args)
    if any(name is None for _, name in wanted):
        raise UsageError("delete needs names (or -f FILE)")
    return _each(wanted, lambda t: _delete_one(args, *t), lambda t: "")


def _delete_one(args, kind: str, name: str) -> str:
    from nsrun.runtime import podrun, services
    from nsrun.state import StateRoot

    namespace, bare = split(name)
    if kind == "pod":
        podrun.delete(StateRoot(_root(args)), bare, args.timeout, args.grace_period)
    elif kind == "service":
        from nsrun.netstate import NetState

        services.delete(_root(args), NetState(_root(args)).stored_config(), namespace, bare)
    else:
        raise UsageError("delete takes pods and services")
    return f'{kind} "{bare}" deleted'


def _each(items: list[Any], act, label) -> int:
    """``act`` on every item, printing the line it returns; a failure is printed (with
    ``label(item)``) and the next item goes on, as kubectl does. The first failure's code."""
    code = 0
    for item in items:
        try:
            line = act(item)
        except NsrunError as err:
            print(f"nsrun: {label(item)}{err}", file=sys.stderr)
            code = code or err.exit_code
        else:
            print(line, flush=True)
    return code


# ---------------------------------------------------------------- create and apply


def cmd_create(args) -> int:
    return _create_or_apply(args, apply=False)


def cmd_apply(args) -> int:
    return _create_or_apply(args, apply=True)


def _create_or_apply(args, apply: bool) -> int:
    from nsrun.cli import net_config
    from nsrun.core import service as service_model
    from nsrun.core import validate
    from nsrun.core.objects import ref

    objects = _load(args)
    invalid = []
    for obj in objects:
        try:
            (service_model.check if obj.kind == "Service" else validate.check)(
                obj, args.filename)
        except SpecError as err:
            invalid.append(str(err))
    if invalid:
        raise UsageError("\n".join(invalid))
    cfg = net_config(args)
    _precheck(args, cfg, objects, apply)
    return _each(objects, lambda o: f"{ref(o)} {_act(args, cfg, o, apply)}",
                 lambda o: f"{ref(o)}: ")


def _precheck(args, cfg, objects: list[Any], apply: bool) -> None:
    """Every reason one object cannot be made, all at once; nothing is created then."""
    from nsrun.runtime import services
    from nsrun.state import StateRoot

    lines: list[str] = []
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        key = (obj.kind, obj.metadata.name)
        if key in seen:
            lines.append(f'{obj.kind}.{obj.metadata.name}: Duplicate value: '
                         f'"{obj.metadata.name}" (twice in {args.filename})')
        seen.add(key)
        if obj.kind == "Pod" and not apply and StateRoot(_root(args)).pod(
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
    from nsrun.cli import pod_options
    from nsrun.runtime import podrun, services
    from nsrun.state import StateRoot

    if obj.kind == "Service":
        return services.store(_root(args), cfg, obj)
    state = StateRoot(_root(args))
    if apply:
        return podrun.apply(state, obj, pod_options(args, obj))
    podrun.run(podrun.with_uid(obj), state, pod_options(args, obj), detach=True, keep=True,
               quiet=True)
    return "created"
