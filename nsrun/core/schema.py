"""How a manifest's fields are checked against the model, and how schema problems read (pure).

Owns the policy for fields Kubernetes has but nsrun does not model: scheduling fields are
accepted with one warning each, inert ones (``status``, ``metadata.resourceVersion``…) are
dropped silently, and fields that would change behaviour are rejected with "not supported by
nsrun" (unless set to their neutral value); anything else is ``unknown field "<path>"``
(``walk``). Also the problem and warning types of decoding, and msgspec's type errors
rewritten with Kubernetes field paths (``problem_from_msgspec``). The Service decoder
(``core.service``) reuses the walk with its own table.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any

import msgspec

from nsrun.core.spec import (
    Container,
    EnvVarSource,
    Lifecycle,
    LifecycleHandler,
    ObjectMeta,
    Pod,
    PodSecurityContext,
    PodSpec,
    Probe,
    ResourceRequirements,
    SecurityContext,
    Volume,
    VolumeMount,
)
from nsrun.errors import Problem


class UnknownField(Problem, frozen=True):
    """A field nsrun (and Kubernetes) does not know; reads like kubectl's strict decoding."""

    def __str__(self) -> str:
        return self.message


class DocumentProblem(Problem, frozen=True):
    """A problem with the document as a whole (not YAML, not a Pod…): just the message."""

    def __str__(self) -> str:
        return self.message


def unknown_field(path: str) -> UnknownField:
    return UnknownField(path, "Unknown field", f'unknown field "{path}"')


def document_problem(message: str) -> DocumentProblem:
    return DocumentProblem("", "Invalid value", message)


class SpecWarning(msgspec.Struct, frozen=True):
    """A field accepted but ignored (or honoured with a caveat): ``field: message``."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message



def json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object"), (type(None), "null")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


_TYPE_WORDS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
               "array": "array", "object": "object", "null": "null"}


def problem_from_msgspec(text: str) -> Problem:
    """``Expected `str`, got `int` - at `$.spec.containers[0].image` `` -> a Problem with a
    Kubernetes field path and a plain message."""
    message, _, at = text.partition(" - at `")
    path = at.rstrip("`").removeprefix("$").lstrip(".").replace("[...]", "")
    if message.startswith("Expected `"):
        return Problem(path, "Invalid value", _expected(message))
    return Problem(path, "Invalid value", message.lower().rstrip("."))


def _expected(message: str) -> str:
    parts = message.split("`")
    want = [_TYPE_WORDS.get(w, w) for w in parts[1].split(" | ") if w != "null"]
    got = _TYPE_WORDS.get(parts[3], parts[3]) if len(parts) > 3 else "something else"
    return f"expected {' or '.join(want)}, got {got}"


# ---------------------------------------------------------------- fields outside the model


class Findings(msgspec.Struct):
    """What the schema walk and the legacy-annotation step found in one document."""

    problems: list[Problem] = msgspec.field(default_factory=list)
    warnings: list[SpecWarning] = msgspec.field(default_factory=list)


class Policy(msgspec.Struct, frozen=True):
    """How to treat a Kubernetes field nsrun does not model (or models with a caveat).

    ``action``: ``drop`` (inert, silently), ``warn`` (accepted, ignored, one warning),
    ``reject`` (would change behaviour: "not supported by nsrun"). Neutral values (by default
    the empty ones) are accepted silently for ``warn`` and ``reject``."""

    action: str
    message: str = ""
    neutral: tuple[Any, ...] | None = None

    def is_neutral(self, value: Any) -> bool:
        """Empty values (unless ``neutral`` says otherwise) and the ``neutral`` ones."""
        accepted = (None, False, "", [], {}) if self.neutral is None else (None, *self.neutral)
        return any(type(value) is type(n) and value == n for n in accepted)


SCHEDULING = Policy("warn", "ignored: scheduling has no meaning on one host")
_DROP = Policy("drop")
_REJECT = Policy("reject")
_NO_TOKEN = Policy("warn", "ignored: no API server, so no service account token is mounted")
_UNCONFINED = Policy("reject", neutral=({}, {"type": "Unconfined"}))

NOT_SUPPORTED = "not supported by nsrun"

_VOLUME_TYPES = (
    "persistentVolumeClaim projected downwardAPI nfs csi ephemeral image gcePersistentDisk "
    "awsElasticBlockStore gitRepo iscsi glusterfs rbd flexVolume cinder cephfs flocker fc "
    "azureFile azureDisk vsphereVolume quobyte photonPersistentDisk portworxVolume scaleIO "
    "storageos").split()

POLICIES: dict[type, dict[str, Policy]] = {
    Pod: {"status": _DROP},
    ObjectMeta: {
        **{k: _DROP for k in ("selfLink", "resourceVersion", "generation", "creationTimestamp",
                              "deletionTimestamp", "deletionGracePeriodSeconds",
                              "ownerReferences", "finalizers", "managedFields")},
        "generateName": _REJECT,
    },
    PodSpec: {
        **{k: SCHEDULING for k in ("nodeSelector", "affinity", "tolerations", "priority",
                                   "priorityClassName", "schedulerName", "preemptionPolicy",
                                   "topologySpreadConstraints", "schedulingGates", "nodeName")},
        "imagePullSecrets": Policy("warn", "ignored: nsrun never pulls images"),
        "serviceAccount": _NO_TOKEN,
        "os": Policy("reject", neutral=({}, {"name": "linux"})),
        "hostUsers": Policy("reject", neutral=(True,)),
        **{k: _REJECT for k in ("ephemeralContainers", "hostPID", "hostIPC",
                                "readinessGates", "setHostnameAsFQDN",
                                "resourceClaims", "runtimeClassName", "hostnameOverride")},
    },
    Container: {
        "resizePolicy": Policy("warn", "ignored: nsrun does not resize containers"),
        **{k: _REJECT for k in ("envFrom", "restartPolicyRules", "volumeDevices", "stdin",
                                "stdinOnce", "tty")},
    },
    ResourceRequirements: {"claims": _REJECT},
    Probe: {"grpc": _REJECT},
    LifecycleHandler: {k: _REJECT for k in ("httpGet", "tcpSocket", "sleep")},
    Lifecycle: {"stopSignal": _REJECT},
    SecurityContext: {
        "seLinuxOptions": _REJECT, "windowsOptions": _REJECT,
        "procMount": Policy("reject", neutral=("", "Default")),
        "appArmorProfile": _UNCONFINED,
    },
    PodSecurityContext: {
        **{k: _REJECT for k in ("seLinuxOptions", "windowsOptions", "fsGroupChangePolicy",
                                "sysctls", "seLinuxChangePolicy")},
        "appArmorProfile": _UNCONFINED,
        "supplementalGroupsPolicy": Policy("reject", neutral=("", "Merge")),
    },
    Volume: {k: _REJECT for k in _VOLUME_TYPES},
    VolumeMount: {"recursiveReadOnly": Policy("reject", neutral=("", "Disabled"))},
    EnvVarSource: {"fileKeyRef": _REJECT},
}



def walk(raw: Any, cls: type, path: str, found: Findings,
         table: dict[type, dict[str, Policy]] | None = None) -> Any:
    """A copy of ``raw`` with ignored fields removed; unknown and unsupported fields are
    recorded in ``found`` (every one, with its path). ``table``: the policies per class
    (default: the Pod's)."""
    if not isinstance(raw, dict):
        return raw
    table = POLICIES if table is None else table
    fields, policies, clean = _field_types(cls), table.get(cls, {}), {}
    for key, value in raw.items():
        where = f"{path}.{key}" if path else str(key)
        policy = policies.get(key) if isinstance(key, str) else None
        if policy is not None:
            _apply_policy(policy, where, value, found)
            if key not in fields:
                continue
        elif not isinstance(key, str) or key not in fields:
            found.problems.append(unknown_field(where))
            continue
        clean[key] = _walk_value(value, fields[key], where, found, table)
    return clean


def _apply_policy(policy: Policy, where: str, value: Any, found: Findings) -> None:
    """Record what ``policy`` says about ``value`` (a problem, a warning or nothing)."""
    if policy.is_neutral(value):
        return
    if policy.action == "reject":
        found.problems.append(Problem(where, "Forbidden", NOT_SUPPORTED))
    elif policy.action == "warn":
        found.warnings.append(SpecWarning(where, policy.message))


def _walk_value(value: Any, tp: Any, where: str, found: Findings,
                table: dict[type, dict[str, Policy]]) -> Any:
    kind, cls = _shape(tp)
    if kind == "struct":
        return walk(value, cls, where, found, table)
    if kind == "list" and isinstance(value, list):
        return [walk(v, cls, f"{where}[{i}]", found, table) for i, v in enumerate(value)]
    return value


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return {f.encode_name: f.type for f in msgspec.structs.fields(cls)}


@functools.cache
def _shape(tp: Any) -> tuple[str, Any]:
    """("struct", S) for S or S | None, ("list", S) for list[S], else ("", None)."""
    args = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
    for arg in args:
        if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
            return "struct", arg
        if typing.get_origin(arg) is list:
            inner = typing.get_args(arg)[0]
            if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
                return "list", inner
    return "", None
