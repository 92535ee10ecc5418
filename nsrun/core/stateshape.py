"""The shapes of the JSON state files the readers compute with, checked on read (pure).

A pod's ``status.json`` (the whole Pod object) and each line of its ``events.jsonl`` are
written by nsrun, but a crash, a full disk or a hand edit can leave anything there. The
readers (``get``, ``describe``, ``logs``, ``wait``, ``exec``…) index into these objects, so
before they see one it is checked here against the shape nsrun writes: the types of every
field a reader uses (unknown fields are allowed). ``pod_object`` and ``event`` return the
plain data unchanged, or raise ``Corrupt`` with a short reason naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from nsrun.core.spec import PodSpec


class Corrupt(ValueError):
    """The data is not what nsrun writes there (the message says why, in a few words)."""


class _L(msgspec.Struct, rename="camel"):
    """Loose: fields nsrun does not read are allowed."""


class _Terminated(_L):
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class _Running(_L):
    started_at: str | None = None


class _Waiting(_L):
    reason: str | None = None
    message: str | None = None


class _State(_L):
    waiting: _Waiting | None = None
    running: _Running | None = None
    terminated: _Terminated | None = None


class _ContainerStatus(_L):
    name: str
    image: str = ""
    image_id: str = msgspec.field(default="", name="imageID")
    container_id: str = msgspec.field(default="", name="containerID")
    state: _State = msgspec.field(default_factory=_State)
    last_state: _State = msgspec.field(default_factory=_State)
    ready: bool = False
    restart_count: int = 0
    started: bool | None = None


class _Condition(_L):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None


class _IP(_L):
    ip: str


class _Status(_L):
    phase: str = ""
    reason: str | None = None
    message: str | None = None
    start_time: str | None = None
    conditions: list[_Condition] = []
    init_container_statuses: list[_ContainerStatus] = []
    container_statuses: list[_ContainerStatus] = []
    pod_ip: str | None = msgspec.field(default=None, name="podIP")
    pod_ips: list[_IP] = msgspec.field(default_factory=list, name="podIPs")
    host_ip: str | None = msgspec.field(default=None, name="hostIP")
    host_ips: list[_IP] = msgspec.field(default_factory=list, name="hostIPs")


class _Meta(_L):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None


class _PodObject(_L):
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    spec: dict[str, Any] = {}
    status: _Status = msgspec.field(default_factory=_Status)


# Epoch seconds a datetime can show (up to the year 9999).
Seconds = Annotated[float, msgspec.Meta(ge=0, lt=253402300800)]


class _Event(_L):
    type: str
    reason: str
    message: str
    time: Seconds
    source: str = ""
    field_path: str = ""


def decode_object(data: bytes) -> dict[str, Any]:
    """``data`` as one JSON object (``Corrupt`` when it is not valid UTF-8 JSON or not an
    object)."""
    try:
        value = msgspec.json.decode(data)
    except msgspec.DecodeError as err:
        raise Corrupt(_short(err)) from None
    if not isinstance(value, dict):
        raise Corrupt(f"expected a JSON object, found {type(value).__name__}")
    return value


def pod_object(data: bytes) -> dict[str, Any]:
    """status.json's Pod object, checked: metadata and status as nsrun writes them, and a
    spec nsrun's model accepts."""
    value = decode_object(data)
    _convert(value, _PodObject)
    _convert(value.get("spec", {}), PodSpec, "spec")
    return value


def event(line: bytes) -> dict[str, Any]:
    """One events.jsonl line, checked."""
    value = decode_object(line)
    _convert(value, _Event)
    return value


def _convert(value: Any, tp: type, where: str = "") -> None:
    try:
        msgspec.convert(value, tp)
    except msgspec.ValidationError as err:
        text = str(err).replace("$.", f"{where}." if where else "").replace("$", where or "")
        raise Corrupt(_short(text)) from None


def _short(err: Any) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:200]
