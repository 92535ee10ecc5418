"""The verbs about the Pod model: ``validate``, ``resources`` and ``convert``.

``register(subparsers)`` adds them to the CLI's argparse subparsers; each verb's ``func(args)``
returns its exit code (0 valid, 2 on any problem) and prints ``nsrun: <message>`` to stderr for
errors. None of them creates anything on the host: they read the manifest (and, for
``resources``, the node's memory size from ``/proc/meminfo``) and print.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from nsrun.errors import NsrunError

EXIT_OK = 0
EXIT_INVALID = 2


def add_validate(subparsers: Any) -> None:
    v = subparsers.add_parser("validate", help="check Pod manifests like the API server would")
    v.add_argument("files", nargs="+", metavar="FILE", help="manifest (YAML or JSON; - for stdin)")
    v.add_argument("-o", "--output", choices=("json",),
                   help="json: a list of {field, type, message} (empty when valid)")
    v.add_argument("--legacy-annotations", action="store_true",
                   help="honour the pre-1.8 init-container annotations")
    v.set_defaults(func=cmd_validate)


def add_resources(subparsers: Any) -> None:
    r = subparsers.add_parser("resources", help="show effective requests/limits, QoS and the "
                              "cgroup values nsrun writes")
    r.add_argument("file", metavar="FILE")
    r.add_argument("-o", "--output", choices=("json",))
    r.add_argument("--pod-max-pids", type=int, metavar="N",
                   help="the node's per-pod pid limit (pids.max; default: none)")
    r.add_argument("--legacy-annotations", action="store_true",
                   help="honour the pre-1.8 init-container annotations")
    r.set_defaults(func=cmd_resources)


def add_convert(subparsers: Any) -> None:
    c = subparsers.add_parser("convert", help="rewrite legacy init-container annotations as "
                              "spec.initContainers")
    c.add_argument("file", metavar="FILE")
    c.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    c.set_defaults(func=cmd_convert)


def register(subparsers: Any) -> None:
    """Add ``validate``, ``resources`` and ``convert`` to an argparse subparsers object."""
    for add in (add_validate, add_resources, add_convert):
        add(subparsers)


# ---------------------------------------------------------------- helpers


def _error(err: NsrunError) -> int:
    print(f"nsrun: {err}", file=sys.stderr)
    return EXIT_INVALID


def _warn(warnings: list[Any], source: str) -> None:
    for w in warnings:
        print(f"nsrun: warning: {source}: {w}", file=sys.stderr)


def load_valid(path: str, legacy: bool) -> list[Any]:
    """Load and validate every pod of ``path`` (``SpecError`` on the first bad one), with
    ``run``'s validation (``lifecycle.check_pod``)."""
    from nsrun.core.manifest import load_pods_with_warnings
    from nsrun.runtime.lifecycle import check_pod, read_manifest

    pods, warnings = load_pods_with_warnings(read_manifest(path), path, legacy_annotations=legacy)
    _warn(warnings, path)
    for pod in pods:
        check_pod(pod, path)
    return pods


# ---------------------------------------------------------------- validate


def cmd_validate(args: Any) -> int:
    """``nsrun validate FILE...``: 0 when every pod is valid, 2 otherwise."""
    if args.output == "json":
        return _validate_json(args)
    code = EXIT_OK
    for path in args.files:
        try:
            for pod in load_valid(path, args.legacy_annotations):
                print(f'{path}: pod "{pod.metadata.name}" is valid')
        except NsrunError as err:
            code = _error(err)
    return code


def _validate_json(args: Any) -> int:
    problems: list[dict[str, Any]] = []
    for path in args.files:
        problems += _file_problems(path, args.legacy_annotations)
    print(json.dumps(problems, indent=2, ensure_ascii=False))
    return EXIT_INVALID if problems else EXIT_OK


def _file_problems(path: str, legacy: bool) -> list[dict[str, Any]]:
    from nsrun.core.manifest import load_pods_with_warnings
    from nsrun.errors import SpecError
    from nsrun.runtime.lifecycle import pod_problems, read_manifest

    try:
        pods, warnings = load_pods_with_warnings(read_manifest(path), path, legacy_annotations=legacy)
    except SpecError as err:
        return [_problem_json(path, err.pod, p) for p in err.problems]
    except NsrunError as err:
        return [{"file": path, "pod": "", "field": "", "type": "Invalid value",
                 "message": str(err)}]
    _warn(warnings, path)
    return [_problem_json(path, pod.metadata.name, p)
            for pod in pods for p in pod_problems(pod)]


def _problem_json(path: str, pod: str, problem: Any) -> dict[str, Any]:
    return {"file": path, "pod": pod, "field": problem.field, "type": problem.type,
            "message": problem.message}


# ---------------------------------------------------------------- resources


def cmd_resources(args: Any) -> int:
    """``nsrun resources FILE``: the resource math and the cgroup files, as a table or JSON."""
    from nsrun.core import resources

    try:
        pods = load_valid(args.file, args.legacy_annotations)
        from nsrun.runtime.lifecycle import node_memory

        memory = node_memory()
        computed = [(p, resources.compute(p, node_pids_limit=args.pod_max_pids,
                                          node_memory=memory)) for p in pods]
    except NsrunError as err:
        return _error(err)
    if args.output == "json":
        docs = [{"name": p.metadata.name, **r.to_json()} for p, r in computed]
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    else:
        print("\n\n".join(resources_table(p.metadata.name, r) for p, r in computed))
    return EXIT_OK


def _resource_names(r: Any) -> list[str]:
    lists = [r.effective_requests, r.effective_limits, r.effective_init_requests,
             r.app_sum_requests, r.overhead] + [c.requests for c in r.containers] \
        + [c.limits for c in r.containers]
    names = {n for lst in lists for n in lst}
    order = ["cpu", "memory", "ephemeral-storage"]
    return [n for n in order if n in names] + sorted(names - set(order))


def resources_table(name: str, r: Any) -> str:
    """The human-readable ``nsrun resources`` report for one pod."""
    from nsrun.core.printer import table

    names = _resource_names(r) or ["cpu", "memory"]
    head = ["CONTAINER", "TYPE"] + [f"{n.upper()} {k}" for n in names
                                    for k in ("REQUEST", "LIMIT")] + ["OOM_SCORE_ADJ"]
    rows = [[c.name, c.kind] + _cells(names, c.requests, c.limits)
            + ["-" if c.oom_score_adj is None else str(c.oom_score_adj)] for c in r.containers]
    rows.append(["(effective init)", ""] + _cells(names, r.effective_init_requests,
                                                  r.effective_init_limits) + [""])
    rows.append(["(app + sidecars)", ""] + _cells(names, r.app_sum_requests,
                                                  r.app_sum_limits) + [""])
    if r.pod_level_requests or r.pod_level_limits:
        rows.append(["(pod-level)", ""] + _cells(names, r.pod_level_requests,
                                                 r.pod_level_limits) + [""])
    if r.overhead:
        rows.append(["(overhead)", ""] + _cells(names, r.overhead, r.overhead) + [""])
    rows.append(["(pod effective)", ""] + _cells(names, r.effective_requests,
                                                 r.effective_limits) + [""])
    cgroups = [["pod", k, v] for k, v in r.pod_cgroup.items()]
    cgroups += [[c.name, k, v] for c in r.containers for k, v in c.cgroup.items()]
    return "\n".join([f'Pod "{name}"    QoS Class: {r.qos_class}', "",
                      table([tuple(map(str, row)) for row in rows], tuple(head)), "",
                      table([tuple(map(str, c)) for c in cgroups], ("CGROUP", "FILE", "VALUE"))])


def _cells(names: list[str], requests: dict[str, Any], limits: dict[str, Any]) -> list[str]:
    return [str(lst[n]) if n in lst else "-" for n in names for lst in (requests, limits)]


# ---------------------------------------------------------------- convert


def cmd_convert(args: Any) -> int:
    """``nsrun convert FILE``: the manifest with ``spec.initContainers`` instead of the
    legacy annotations, on stdout."""
    from nsrun.core import convert
    from nsrun.runtime.lifecycle import read_manifest

    try:
        text, warnings = convert.convert_text(read_manifest(args.file), args.file, args.output)
    except NsrunError as err:
        return _error(err)
    if not warnings:
        print(f"nsrun: warning: {args.file}: no legacy init-container annotations to convert",
              file=sys.stderr)
    sys.stdout.write(text)
    return EXIT_OK
