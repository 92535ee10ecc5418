"""The verbs that only report: ``state``, ``list``, ``ps``, ``features`` and ``spec``.

* ``state ID``: the runtime spec's state (runc's fields: ``ociVersion id pid status bundle
  rootfs created annotations owner``), ``status`` derived now; ``pid`` is 0 once stopped.
* ``list [--format table|json] [--quiet]``: every container under ``--root``.
* ``ps ID [--format table|json] [ps options]``: json is the array of the host pids in the
  container's cgroup; table runs ``ps`` (default ``-ef``) and keeps the header and those pids.
* ``features``: what this runtime implements (the runtime spec's features document).
* ``spec [--bundle DIR]``: writes a default ``config.json`` (refuses to overwrite one).
"""

from __future__ import annotations

import os

from nsrun import jsonlite
from nsrun.core import ocistate
from nsrun.errors import OciError
from nsrun.oci import args as flags
from nsrun.oci.state import Container, container_ids, existing

TYPE_CHECKING = False
if TYPE_CHECKING:
    from nsrun.oci.main import Context


def pretty(value, indent: str = "") -> str:
    """JSON indented by two spaces, as runc prints state and spec."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f'{inner}{jsonlite.dumps(str(k))}: {pretty(v, inner)}' for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list | tuple) and value:
        return "[\n" + ",\n".join(inner + pretty(v, inner) for v in value) + f"\n{indent}]"
    return jsonlite.dumps(value)


def _out(text: str) -> None:
    data = text.encode()
    while data:
        data = data[os.write(1, data):]


def document(container: Container, record: dict | None) -> dict:
    if record is None:
        status = container.status(None)
        return {"ociVersion": "", "id": container.id, "pid": 0, "status": status,
                "bundle": "", "rootfs": "", "created": "", "annotations": {}, "owner": ""}
    return ocistate.state_document(record, container.status(record))


def cmd_state(ctx: Context, argv: list[str]) -> int:
    _, rest = flags.parse(argv, {})
    flags.need(rest, 1, "state")
    container, record = existing(ctx.root, rest[0])
    _out(pretty(document(container, record)) + "\n")
    return 0


def cmd_list(ctx: Context, argv: list[str]) -> int:
    opts, _ = flags.parse(argv, {"--format": ("format", flags.STR), "-f": ("format", flags.STR),
                                 "--quiet": ("quiet", flags.BOOL), "-q": ("quiet", flags.BOOL)})
    docs = []
    for cid in container_ids(ctx.root):
        c = Container(ctx.root, cid)
        docs.append(document(c, c.record()))
    if opts["quiet"]:
        _out("".join(d["id"] + "\n" for d in docs))
    elif opts["format"] == "json":
        _out(jsonlite.dumps(docs) + "\n")
    elif opts["format"] in (None, "table"):
        from nsrun.core.printer import table

        rows = [(d["id"], str(d["pid"]), d["status"], d["bundle"], d["created"], d["owner"])
                for d in docs]
        _out(table(rows, ("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")) + "\n")
    else:
        raise OciError(f"invalid format option: {opts['format']}")
    return 0


def cmd_ps(ctx: Context, argv: list[str]) -> int:
    from nsrun.oci import cgroup

    opts, rest = flags.parse(argv, {"--format": ("format", flags.STR),
                                    "-f": ("format", flags.STR)})
    flags.need(rest, 1, "ps", exact=False)
    container, record = existing(ctx.root, rest[0])
    if record is None or container.status(record) == ocistate.STOPPED:
        raise OciError("container not running")
    group = cgroup.open_group(record)
    if group is None:
        pids = [record["pid"]]
    else:
        try:
            pids = sorted(group.pids())
        finally:
            group.close()
    if opts["format"] == "json":
        _out(jsonlite.dumps(pids) + "\n")
        return 0
    if opts["format"] not in (None, "table"):
        raise OciError(f"invalid format option: {opts['format']}")
    import subprocess

    out = subprocess.run(["ps", *(rest[1:] or ["-ef"])], capture_output=True, text=True)
    if out.returncode != 0:
        raise OciError(f"ps: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    column = lines[0].split().index("PID") if lines and "PID" in lines[0].split() else 1
    keep = [lines[0]] + [line for line in lines[1:]
                         if int(line.split()[column]) in set(pids)]
    _out("".join(line + "\n" for line in keep))
    return 0


def features() -> dict:
    from nsrun import __version__, native
    from nsrun.bundle.mounts import mount_flags, propagation_flags

    return {
        "ociVersionMin": "1.0.0", "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": sorted({*mount_flags(), *propagation_flags()}),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": sorted(native.CAPABILITIES, key=native.CAPABILITIES.__getitem__),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True, "actions": [
                "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                              "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32",
                          "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]},
            "apparmor": {"enabled": False}, "selinux": {"enabled": False},
        },
        "annotations": {"org.nsrun.version": __version__},
    }


def cmd_features(ctx: Context, argv: list[str]) -> int:
    flags.parse(argv, {})
    _out(pretty(features()) + "\n")
    return 0


def cmd_spec(ctx: Context, argv: list[str]) -> int:
    from nsrun.oci.defaults import default_spec

    opts, _ = flags.parse(argv, {"--bundle": ("bundle", flags.STR), "-b": ("bundle", flags.STR),
                                 "--rootless": ("rootless", flags.BOOL)})
    path = os.path.join(opts["bundle"] or ".", "config.json")
    if os.path.exists(path):
        raise OciError("File config.json exists. Remove it first")
    with open(path, "x") as f:
        f.write(pretty(default_spec()) + "\n")
    return 0
