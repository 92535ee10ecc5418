"""The nsrun error tree and the exit code each class maps to.

Every error a user can meet is an ``NsrunError``: it carries the object and the value it
is about (field path, file, container, step, errno) and a lowercase message without a
trailing period. The CLI prints ``nsrun: <message>`` and exits with ``exit_code``; nothing
reaches the user as a traceback. Raise once at the lowest layer that knows, and wrap with
one clause of context per layer (``raise X(...) from err``).

The exit codes are ``nsrun.exitcodes`` (one table, the README's).
"""

from __future__ import annotations

import os as _os

from nsrun import exitcodes


class NsrunError(Exception):
    """Base class: ``str(err)`` is the one line shown to the user."""

    exit_code = exitcodes.RUNTIME


class UsageError(NsrunError):
    """Bad command line or unreadable input file."""

    exit_code = exitcodes.USAGE


class Problem:
    """One invalid field: ``field`` is a Kubernetes field path (``spec.initContainers[1].name``),
    ``type`` a Kubernetes error type (``Required value``, ``Invalid value``, ``Duplicate value``,
    ``Unsupported value``, ``Forbidden``, ``Not supported``), ``message`` the detail. A plain
    value class: this module is on every start path, ``nsrun-oci``'s too, where msgspec's
    import would cost more than the verb."""

    __slots__ = ("field", "type", "message")

    def __init__(self, field: str, type: str, message: str = "") -> None:  # noqa: A002
        self.field, self.type, self.message = field, type, message

    def __init_subclass__(cls, **struct_options: object) -> None:
        """Subclasses may still say ``frozen=True`` (Problem was a msgspec Struct)."""
        super().__init_subclass__()

    def _key(self) -> tuple[str, str, str]:
        return self.field, self.type, self.message

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Problem(field={self.field!r}, type={self.type!r}, message={self.message!r})"

    def __str__(self) -> str:
        return f"{self.field}: {self.type}" + (f": {self.message}" if self.message else "")


class SpecError(NsrunError):
    """An invalid manifest. Holds every problem found, reported at once in kubectl's shape::

        The Pod "myapp-pod" is invalid: spec.initContainers[1].name: Required value

    or, with several problems, one per line after the head::

        The Pod "myapp-pod" is invalid:
        * spec.initContainers[1].name: Required value
        * spec.containers[0].image: Required value
    """

    exit_code = exitcodes.USAGE

    def __init__(self, problems: list[Problem], *, pod: str = "", source: str = "",
                 kind: str = "Pod") -> None:
        self.problems = list(problems)
        self.pod = pod  # the object's name (a Pod's, or a Service's when kind says so)
        self.source = source
        self.kind = kind
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.source}: " if self.source else ""
        if not self.pod and len(self.problems) == 1:
            return where + str(self.problems[0])
        head = f'The {self.kind} "{self.pod}" is invalid:' if self.pod else "invalid manifest:"
        if len(self.problems) == 1:
            return f"{where}{head} {self.problems[0]}"
        return where + head + "".join(f"\n* {p}" for p in self.problems)


class BundleError(NsrunError):
    """An OCI bundle (``config.json`` + ``rootfs``) that cannot be used."""

    exit_code = exitcodes.USAGE


class PreflightError(NsrunError):
    """The host lacks something nsrun needs (root, clone3, a cgroup controller)."""

    exit_code = exitcodes.HOST


class StateError(NsrunError):
    """State-dir conflict: no such pod, pod exists, pod locked."""

    exit_code = exitcodes.STATE


class ServerError(StateError):
    """An error kubectl shows as coming from the API server:
    ``Error from server (<reason>): <message>``."""

    reason = "BadRequest"

    def kubectl(self) -> str:
        """The line kubectl prints for it."""
        return f"Error from server ({self.reason}): {self}"


class NotFound(ServerError):
    """No such object: ``Error from server (NotFound): pods "x" not found``."""

    reason = "NotFound"

    def __init__(self, resource: str, name: str, verb: str = "not found") -> None:
        self.resource, self.name = resource, name
        super().__init__(f'{resource} "{name}" {verb}')


class AlreadyExists(NotFound):
    """An object of that name exists: ``Error from server (AlreadyExists): pods "x" already
    exists``."""

    reason = "AlreadyExists"

    def __init__(self, resource: str, name: str) -> None:
        super().__init__(resource, name, "already exists")


class BadRequest(ServerError):
    """A request about an existing object that cannot be served (``container nosuch is not
    valid for pod myapp-pod``)."""


class HostError(NsrunError):
    """A host operation failed: ``what`` failed on ``obj`` with ``errno``."""

    exit_code = exitcodes.RUNTIME

    def __init__(self, what: str, obj: str = "", err: int = 0, detail: str = "") -> None:
        self.what, self.obj, self.errno = what, obj, err
        text = what + (f" {obj}" if obj else "")
        if err:
            text += f": {_os.strerror(err)}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)


class CgroupError(HostError):
    """A cgroup file operation failed; ``obj`` is the file, ``detail`` the value written."""


class SandboxError(HostError):
    """Creating or joining the pod sandbox (namespaces, volumes) failed."""


class SpawnError(NsrunError):
    """The C spawn path failed at ``step`` with ``errno``; reaches the user as
    ``init container "init-mydb": spawn failed at pivot_root: Invalid argument``."""

    exit_code = exitcodes.RUNTIME

    def __init__(self, step: str, err: int, container: str = "", kind: str = "container") -> None:
        self.step, self.errno, self.container, self.kind = step, err, container, kind
        reason = _os.strerror(err) if err else "unknown error"
        prefix = f'{kind} "{container}": ' if container else ""
        super().__init__(f"{prefix}spawn failed at {step}: {reason}")

    def for_container(self, container: str, kind: str) -> SpawnError:
        """The same failure, named after the container it hit."""
        return SpawnError(self.step, self.errno, container, kind)



class OciError(NsrunError):
    """A failure of an ``nsrun-oci`` verb, reported as runc reports it: one line, exit 1 (what
    shims expect: containerd maps "container not running" and "does not exist" by text)."""

    exit_code = 1


def tell(err: Exception) -> int:
    """Print ``err`` on stderr as nsrun tells errors and return its exit code: kubectl's
    form for a ``ServerError``, ``nsrun: <message>`` for any other ``NsrunError``, one line
    for a bug in nsrun (re-raised with its traceback when ``NSRUN_DEBUG`` is set)."""
    import sys

    if isinstance(err, ServerError):
        print(err.kubectl(), file=sys.stderr)
        return err.exit_code
    if isinstance(err, NsrunError):
        print(f"nsrun: {err}", file=sys.stderr)
        return err.exit_code
    if _os.environ.get("NSRUN_DEBUG"):
        raise err
    print(f"nsrun: internal error: {type(err).__name__}: {err} "
          "(NSRUN_DEBUG=1 shows the traceback)", file=sys.stderr)
    return exitcodes.INTERNAL
