"""A failed child step, as C reports it (``struct nsr_report``: step, errno, index), turned
into :class:`~nsrun.errors.SpawnError` with a note on what the step was working on (which
mount, namespace, device, rlimit, capability, ...). Step names come from the extension
(:func:`nsrun.native.step_name`)."""

from __future__ import annotations

from nsrun import native
from nsrun.errors import SpawnError

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from nsrun.request import ExecRequest, SpawnRequest

# What the child's populate_dev step makes in /dev, in its index order (csrc/mount.c).
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = ("fd", "stdin", "stdout", "stderr", "ptmx")


def spawn_error(req: SpawnRequest | ExecRequest, step_id: int, errno_: int, index: int,
                joined: list[str] | None = None) -> SpawnError:
    """The failure a child reported, with a note on what its step was working on."""
    step = native.step_name(step_id)
    err = SpawnError(step, errno_)
    note = failure_note(req, step, index, joined)
    if note:
        err.add_note(note)
    return err


def _rlimit_name(resource: int) -> str:
    import resource as res

    names = {getattr(res, n): n for n in dir(res) if n.startswith("RLIMIT_") and n != "RLIMIT_OFILE"}
    return names.get(resource, str(resource))


def _joined_note(req: SpawnRequest | ExecRequest, step: str, index: int,
                 joined: list[str] | None) -> str | None:
    """The note of a step about the process or namespaces (exec) or mounts (spawn)."""
    from nsrun.request import ExecRequest

    if isinstance(req, ExecRequest):
        if step == "clone" and index in (0, 1):
            return ("the process that joins the namespaces", "the process in the container")[index]
        if step == "setns":
            return f"namespace {joined[index]}" if joined and index < len(joined) else None
    elif step in ("subpath", "mountpoint", "mount") and index < len(req.mounts):
        m = req.mounts[index]
        sub = f" (subPath {m.sub_path})" if m.sub_path and step == "subpath" else ""
        return f"mount #{index}: {m.source or m.fstype}{sub} on {m.target}"
    elif step == "setns":
        from nsrun.host.childreq import joined_namespaces

        names = [name for name, _ in joined_namespaces(req)]
        return f"namespace {names[index]}" if index < len(names) else None
    return None


def _listed_note(req: SpawnRequest | ExecRequest, step: str, index: int) -> str | None:
    """The note of a step working through one of the request's lists (index = item)."""
    lists: dict[str, tuple[str, ...]] = {
        "populate_dev": DEV_NODES + DEV_LINKS,
        "sysctl": tuple(f"sysctl {k}" for k, _ in getattr(req, "sysctls", ())),
        "devices": tuple(f"device {d.path}" for d in getattr(req, "devices", ())),
        "masked_paths": tuple(f"masked path {p}" for p in getattr(req, "masked_paths", ())),
        "readonly_paths": tuple(f"read-only path {p}"
                                for p in getattr(req, "readonly_paths", ())),
        "rlimits": tuple(_rlimit_name(r) for r, _, _ in req.rlimits),
        "id_map": ("uid_map", "gid_map"),
    }
    items = lists.get(step, ())
    note = items[index] if index < len(items) else None
    return f"/dev/{note}" if note and step == "populate_dev" else note


def failure_note(req: SpawnRequest | ExecRequest, step: str, index: int,
                 joined: list[str] | None = None) -> str | None:
    """What a failed step was working on (``index``), for the error's note. ``joined``: the
    namespaces an exec joined one by one (its setns index)."""
    if index < 0:
        return None
    note = _joined_note(req, step, index, joined)
    if note is None and step in ("bounding", "ambient"):
        note = native.CAP_NAMES.get(index, f"capability {index}")
    if note is None and step == "execve":
        note = f"exec {req.argv[0]}"
    if note is None and step == "stdio":
        note = f"fd {index}"
    return note if note is not None else _listed_note(req, step, index)
