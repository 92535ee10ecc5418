"""``nsrun wait`` (kubectl wait) and ``nsrun events`` / ``get events`` (kubectl events).

``wait --for=condition=C[=true|false]``, ``--for=delete``, ``--for=jsonpath={…}=VALUE``:
exit 0 once every named pod meets it, 1 when ``--timeout`` passes first (kubectl's
``timed out waiting for the condition``), 4 when a pod does not exist.

Events are the pods' ``events.jsonl`` lines as kubectl's Event objects (involvedObject,
reason, message, type, source, first/lastTimestamp, count): a table (LAST SEEN, TYPE,
REASON, OBJECT, MESSAGE), ``-o json|yaml`` (with ``-w`` or from ``nsrun events``: one
document per event, a JSON object per line), ``-w`` following every pod's events.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from nsrun import exitcodes
from nsrun.errors import NotFound, UsageError

CONDITIONS = ("PodScheduled", "Initialized", "ContainersReady", "Ready",
              "PodReadyToStartContainers")


def add_wait(sub) -> None:
    w = sub.add_parser("wait", help="wait until pods meet a condition or are deleted")
    w.add_argument("names", nargs="*", metavar="[pod] NAME")
    w.add_argument("--for", dest="for_", required=True, metavar="CONDITION",
                   help="condition=Initialized|Ready|ContainersReady|PodScheduled[=false], "
                        "delete, or jsonpath={.status.phase}=Running")
    w.add_argument("--timeout", default="30s",
                   help="how long to wait (30s, 5m; 0: check once; -1: a week)")
    w.add_argument("-l", "--selector", help="label selector")
    w.add_argument("--all", action="store_true", help="every pod")
    w.set_defaults(func=cmd_wait)


def parse_for(text: str) -> tuple[str, str, str]:
    """``--for`` → (kind, key, wanted): ("delete", "", ""), ("condition", "Ready", "true"),
    ("jsonpath", "{.status.phase}", "Running")."""
    if text == "delete":
        return "delete", "", ""
    kind, _, rest = text.partition("=")
    if kind == "condition" and rest:
        cond, _, value = rest.partition("=")
        return "condition", cond, (value or "true").lower()
    if kind == "jsonpath" and rest:
        from nsrun.report.output import parse_template

        path, sep, value = rest.rpartition("=") if "}=" in rest else (rest, "", "")
        parse_template(path if path.startswith("{") else "{" + path + "}")
        return "jsonpath", path if path.startswith("{") else "{" + path + "}", value
    raise UsageError(f"unrecognized condition: {text!r}")


def met(pod: dict[str, Any], kind: str, key: str, wanted: str) -> bool:
    """Whether the Pod object meets the parsed ``--for`` (not ``delete``)."""
    if kind == "condition":
        return any(c.get("type", "").lower() == key.lower()
                   and str(c.get("status", "")).lower() == wanted
                   for c in pod.get("status", {}).get("conditions", []))
    from nsrun.report.output import jsonpath

    value = jsonpath(key, pod)
    return value == wanted if wanted else bool(value)


def cmd_wait(args) -> int:
    from nsrun.cliobjects import pod_names
    from nsrun.report import statusfile
    from nsrun.report.output import parse_duration
    from nsrun.report.selector import selected

    kind, key, wanted = parse_for(args.for_)
    timeout = parse_duration(args.timeout.lstrip("-")) if args.timeout != "-1" else 7 * 86400.0
    if timeout is None:
        raise UsageError(f'invalid argument "{args.timeout}" for "--timeout" flag')
    state = args.world.state
    names = pod_names(args.names) if args.names else [
        n for n in state.pod_names() if selected(statusfile.read(state.pod(n)) or {},
                                                 args.selector)]
    if not names:
        raise UsageError("no matching resources found" if args.all or args.selector
                         else "resource name may not be empty")
    deadline = time.monotonic() + timeout
    code = exitcodes.OK
    for name in names:
        code = max(code, _wait_one(state, name, kind, key, wanted, deadline))
    return code


def _wait_one(state, name: str, kind: str, key: str, wanted: str, deadline: float) -> int:
    from nsrun.report import statusfile

    while True:
        paths = state.pod(name)
        if kind == "delete":
            if not paths.dir.exists():
                print(f"pod/{name} deleted", flush=True)
                return exitcodes.OK
        elif not paths.dir.exists():
            raise NotFound("pods", name)
        elif met(statusfile.read(paths) or {}, kind, key, wanted):
            print(f"pod/{name} condition met", flush=True)
            return exitcodes.OK
        if time.monotonic() >= deadline:
            print(f"error: timed out waiting for the condition on pods/{name}",
                  file=sys.stderr)
            return exitcodes.FAILED
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


# ---------------------------------------------------------------- events


def add_events(sub) -> None:
    e = sub.add_parser("events", help="the pods' events (kubectl events)")
    e.add_argument("names", nargs="*", metavar="[pod/]NAME",
                   help="only these pods' events (--for pod/NAME works too)")
    e.add_argument("--for", dest="for_", metavar="pod/NAME", help="one pod's events")
    e.add_argument("-w", "--watch", action="store_true", help="then follow new events")
    e.add_argument("-o", "--output", choices=("json", "yaml"),
                   help="one document per event (JSON: one object per line)")
    e.add_argument("--types", help="only these types (Normal,Warning)")
    e.set_defaults(func=cmd_events)


def cmd_events(args) -> int:
    from nsrun.cliobjects import pod_names

    names = pod_names(args.names + ([args.for_] if args.for_ else []))
    return show_events(args, names, lines=True)


def show_events(args, names: list[str], lines: bool = False) -> int:
    """Print the events of ``names`` (none: every pod); ``-w``: follow them."""
    from nsrun.report import eventview

    state = args.world.state
    for name in names:
        state.existing(name)
    types = set(getattr(args, "types", None).split(",")) if getattr(args, "types", None) \
        else None
    feed = eventview.Feed(state, names, types)
    stream = lines or args.watch
    first = feed.poll()
    if args.output and not stream:
        from nsrun.report.output import print_objects

        print_objects(first, args.output)
    elif args.output:
        eventview.print_stream(first, args.output)
    else:
        eventview.print_table(first, header=True)
    while args.watch:
        time.sleep(0.2)
        new = feed.poll()
        if args.output:
            eventview.print_stream(new, args.output)
        else:
            eventview.print_table(new, header=False)
        if names and not any(state.pod(n).dir.exists() for n in names):
            break
    return exitcodes.OK
