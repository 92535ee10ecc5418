"""``nsrun describe POD``: kubectl's ``describe pod`` layout from the Pod object and its events.

Pure formatting: the caller passes the Pod (metadata, spec, status as JSON), the events and
the time; the result is the text kubectl users know (Init Containers and Containers with
State/Reason/Exit Code/Started/Finished/Ready/Restart Count, Limits/Requests, probes,
Conditions, Volumes, Events).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nsrun.core.printer import human_duration


def _when(text: str | None) -> str:
    """RFC 3339 → kubectl's ``Wed, 25 Nov 2026 02:01:37 +0000``."""
    if not text:
        return ""
    t = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    return t.strftime("%a, %d %b %Y %H:%M:%S %z")


def _pairs(rows: list[tuple[str, str]], indent: str = "", width: int = 0) -> list[str]:
    width = width or max((len(k) for k, _ in rows), default=0) + 2
    return [f"{indent}{(k + ':').ljust(max(width, len(k) + 2))}{v}".rstrip() for k, v in rows]


def _labels(values: dict[str, str]) -> str:
    return "\n                  ".join(f"{k}={v}" for k, v in sorted(values.items())) or "<none>"


def _state_lines(title: str, state: dict[str, Any]) -> list[str]:
    if not state:
        return []
    kind, detail = next(iter(state.items()))
    lines = [f"    {title + ':':<16}{kind.capitalize()}"]
    rows = []
    if detail.get("reason"):
        rows.append(("Reason", detail["reason"]))
    if detail.get("message"):
        rows.append(("Message", detail["message"]))
    if kind == "terminated":
        rows.append(("Exit Code", str(detail.get("exitCode"))))
        if detail.get("signal"):
            rows.append(("Signal", str(detail["signal"])))
    if detail.get("startedAt"):
        rows.append(("Started", _when(detail["startedAt"])))
    if detail.get("finishedAt"):
        rows.append(("Finished", _when(detail["finishedAt"])))
    return lines + _pairs(rows, "      ", 14)


def _command(c: dict[str, Any]) -> list[str]:
    lines = []
    for key, title in (("command", "Command"), ("args", "Args")):
        if c.get(key):
            lines.append(f"    {title}:")
            lines += [f"      {part}" for part in c[key]]
    return lines


def _env(c: dict[str, Any]) -> list[str]:
    env = c.get("env") or []
    if not env:
        return ["    Environment:    <none>"]
    lines = ["    Environment:"]
    for e in env:
        value = e.get("value", "")
        if "valueFrom" in e:
            ref = e["valueFrom"].get("fieldRef") or e["valueFrom"].get("resourceFieldRef") or {}
            value = f"({ref.get('fieldPath') or ref.get('resource', '')})"
        lines.append(f"      {e['name']}:  {value}")
    return lines


def _mounts(c: dict[str, Any]) -> list[str]:
    mounts = c.get("volumeMounts") or []
    if not mounts:
        return ["    Mounts:         <none>"]
    return ["    Mounts:"] + [f"      {m['mountPath']} from {m['name']} "
                              f"({'ro' if m.get('readOnly') else 'rw'})" for m in mounts]


def _container(c: dict[str, Any], st: dict[str, Any]) -> list[str]:
    lines = [f"  {c['name']}:"]
    lines += _pairs([("Container ID", st.get("containerID", "")), ("Image", c.get("image", "")),
                     ("Image ID", st.get("imageID", "")), *_ports(c)], "    ", 16)
    lines += _command(c)
    lines += _state_lines("State", st.get("state", {}))
    lines += _state_lines("Last State", st.get("lastState", {}))
    lines += _pairs([("Ready", str(st.get("ready", False))),
                     ("Restart Count", str(st.get("restartCount", 0)))], "    ", 16)
    return lines + _resources(c.get("resources") or {}) + _probes(c) + _env(c) + _mounts(c)


def _probes(c: dict[str, Any]) -> list[str]:
    """kubectl's ``Liveness:``/``Readiness:``/``Startup:`` lines."""
    return _pairs([(title, probe_text(c[key])) for key, title in (
        ("livenessProbe", "Liveness"), ("readinessProbe", "Readiness"),
        ("startupProbe", "Startup")) if c.get(key)], "    ", 16)


def probe_text(probe: dict[str, Any]) -> str:
    """kubectl's ``DescribeProbe``: the action, then its timing."""
    attrs = (f"delay={probe.get('initialDelaySeconds', 0)}s "
             f"timeout={probe.get('timeoutSeconds', 1)}s period={probe.get('periodSeconds', 10)}s "
             f"#success={probe.get('successThreshold', 1)} "
             f"#failure={probe.get('failureThreshold', 3)}")
    if "exec" in probe:
        return f"exec [{' '.join(probe['exec'].get('command') or [])}] {attrs}"
    if "httpGet" in probe:
        get = probe["httpGet"]
        scheme = str(get.get("scheme", "HTTP")).lower()
        return f"http-get {scheme}://{get.get('host', '')}:{get.get('port')}" \
               f"{get.get('path', '')} {attrs}"
    if "tcpSocket" in probe:
        sock = probe["tcpSocket"]
        return f"tcp-socket {sock.get('host', '')}:{sock.get('port')} {attrs}"
    if "grpc" in probe:
        grpc = probe["grpc"]
        return f"grpc <pod>:{grpc.get('port')} {grpc.get('service', '')} {attrs}"
    return f"unknown {attrs}"


def _ports(c: dict[str, Any]) -> list[tuple[str, str]]:
    """kubectl's Port/Host Port (Ports/Host Ports when there are several)."""
    ports = c.get("ports") or []
    if not ports:
        return [("Port", "<none>"), ("Host Port", "<none>")]
    s = "s" if len(ports) > 1 else ""
    return [(f"Port{s}", ", ".join(f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}"
                                   for p in ports)),
            (f"Host Port{s}", ", ".join(f"{p.get('hostPort', 0)}/{p.get('protocol', 'TCP')}"
                                        for p in ports))]


def _resources(res: dict[str, Any]) -> list[str]:
    lines = []
    for key, title in (("limits", "Limits"), ("requests", "Requests")):
        values = res.get(key) or {}
        if values:
            width = max(len(k) for k in values) + 3
            lines.append(f"    {title}:")
            lines += [f"      {(k + ':').ljust(width)}{v}" for k, v in values.items()]
    return lines


def _containers(title: str, specs: list[dict], statuses: list[dict]) -> list[str]:
    if not specs:
        return []
    by_name = {s["name"]: s for s in statuses}
    lines = [f"{title}:"]
    for c in specs:
        lines += _container(c, by_name.get(c["name"], {}))
    return lines


def _conditions(status: dict[str, Any]) -> list[str]:
    conds = status.get("conditions", [])
    width = max([len(c["type"]) for c in conds] + [4]) + 3
    return ["Conditions:", f"  {'Type'.ljust(width)}Status"] + [
        f"  {c['type'].ljust(width)}{c['status']}" for c in conds]


def _volumes(spec: dict[str, Any]) -> list[str]:
    vols = spec.get("volumes") or []
    if not vols:
        return ["Volumes:  <none>"]
    lines = ["Volumes:"]
    for v in vols:
        lines.append(f"  {v['name']}:")
        if "emptyDir" in v:
            ed = v["emptyDir"] or {}
            lines += _pairs([("Type", "EmptyDir (a temporary directory that shares a pod's "
                                      "lifetime)"), ("Medium", ed.get("medium", "")),
                             ("SizeLimit", str(ed.get("sizeLimit", "<unset>")))], "    ", 15)
        elif "hostPath" in v:
            hp = v["hostPath"]
            lines += _pairs([("Type", "HostPath (bare host directory volume)"),
                             ("Path", hp.get("path", "")),
                             ("HostPathType", hp.get("type", ""))], "    ", 15)
        else:
            kind = next((k for k in v if k != "name"), "")
            lines += _pairs([("Type", kind)], "    ", 15)
    return lines


def _events(events: list[dict[str, Any]], now: float) -> list[str]:
    if not events:
        return ["Events:  <none>"]
    rows = [("Type", "Reason", "Age", "From", "Message"),
            ("----", "------", "----", "----", "-------")]
    for e in _aggregate(events):
        age = human_duration(now - e["last"])
        if e["count"] > 1:
            age += f" (x{e['count']} over {human_duration(now - e['time'])})"
        rows.append((e["type"], e["reason"], age, e.get("source", "nsrun"), e["message"]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return ["Events:"] + ["  " + "  ".join([*(r[i].ljust(widths[i]) for i in range(4)), r[4]])
                          for r in rows]


def _aggregate(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Identical events (type, reason, message, object) folded into one with a count, as
    the API server's event series do."""
    out: dict[tuple, dict[str, Any]] = {}
    for e in events:
        key = (e["type"], e["reason"], e["message"], e.get("fieldPath", ""))
        if key in out:
            out[key]["count"] += 1
            out[key]["last"] = e["time"]
        else:
            out[key] = {**e, "count": 1, "last": e["time"]}
    return sorted(out.values(), key=lambda e: e["last"])


def describe(pod: dict[str, Any], events: list[dict[str, Any]], now: float) -> str:
    """The whole ``describe pod`` text."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    node = spec.get("nodeName", "")
    node += f"/{status['hostIP']}" if node and status.get("hostIP") else ""
    head = _pairs([("Name", meta.get("name", "")), ("Namespace", meta.get("namespace", "")),
                   ("Priority", str(spec.get("priority") or 0)),
                   *([("Priority Class Name", spec["priorityClassName"])]
                     if spec.get("priorityClassName") else []),
                   ("Service Account", spec.get("serviceAccountName") or "default"),
                   ("UID", meta.get("uid", "")), ("Node", node or "<none>"),
                   ("Start Time", _when(status.get("startTime"))),
                   ("Labels", _labels(meta.get("labels") or {})),
                   ("Annotations", _labels(meta.get("annotations") or {})),
                   ("Status", status.get("phase", "")),
                   *([("Reason", status["reason"]), ("Message", status.get("message", ""))]
                     if status.get("reason") else []),
                   ("IP", status.get("podIP", ""))], "", 18)
    ips = [i["ip"] for i in status.get("podIPs") or ()]
    lines = head + (["IPs:"] + [f"  IP:  {ip}" for ip in ips] if ips else ["IPs:              <none>"])
    lines += _containers("Init Containers", spec.get("initContainers", []),
                         status.get("initContainerStatuses", []))
    lines += _containers("Containers", spec.get("containers", []),
                         status.get("containerStatuses", []))
    lines += _conditions(status) + _volumes(spec)
    lines += [f"QoS Class:        {status.get('qosClass', '')}"]
    lines += _events(events, now)
    return "\n".join(lines)

