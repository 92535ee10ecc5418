"""The Pod v1 subset nsrun runs, as strict msgspec Structs, and the manifest loader (pure).

Python attribute names are snake_case; the manifest's camelCase names map to them
(``initContainers`` -> ``init_containers``). ``load_pods`` turns manifest text (YAML or JSON,
one or many documents, or a ``kind: List``) into defaulted ``Pod`` objects or raises
``SpecError`` naming the field; ``load_pods_with_warnings`` also returns the warnings.

What the loader owns, in order:

* bad input of any kind (binary junk, non-UTF-8, YAML alias bombs, deep nesting, huge
  numbers, wrong types) becomes ``SpecError``, never another exception or a hang;
* legacy init-container annotations (``nsrun.core.legacy``): rejected by default, honoured
  with ``legacy_annotations=True``;
* fields Kubernetes has but nsrun does not model: scheduling fields are accepted with one
  warning each, inert ones (``status``, ``metadata.resourceVersion``…) are dropped silently,
  and fields that would change behaviour are rejected with "not supported by nsrun" (unless
  set to their neutral value); anything else is ``unknown field "<path>"``;
* API-server defaulting nsrun needs because no API server runs before it (probe timings,
  ports, termination message, requests from limits, pod-level requests…).

Validation of values is ``nsrun.core.validate``; ``metadata.uid`` stays ``""`` when absent
(the runtime fills it: the core has no randomness).
"""

from __future__ import annotations

import functools
import json
import types
import typing
from typing import Any

import msgspec

from nsrun.core.podnet import HostAlias, PodDNSConfig
from nsrun.errors import Problem, SpecError


class _S(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True,
         omit_defaults=True):
    """Base for every manifest object."""


class ObjectFieldSelector(_S):
    field_path: str = ""
    api_version: str | None = None


class ResourceFieldSelector(_S):
    resource: str = ""
    container_name: str | None = None
    divisor: str | int | float | None = None


class KeySelector(_S):
    key: str = ""
    name: str | None = None
    optional: bool | None = None


class EnvVarSource(_S):
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    secret_key_ref: KeySelector | None = None
    config_map_key_ref: KeySelector | None = None


class EnvVar(_S):
    name: str = ""
    value: str | None = None
    value_from: EnvVarSource | None = None


class VolumeMount(_S):
    name: str = ""
    mount_path: str = ""
    read_only: bool = False
    sub_path: str | None = None
    sub_path_expr: str | None = None
    mount_propagation: str | None = None


class ResourceRequirements(_S):
    requests: dict[str, str | int | float] | None = None
    limits: dict[str, str | int | float] | None = None


class ContainerPort(_S):
    container_port: int = 0
    name: str | None = None
    protocol: str | None = None
    host_port: int | None = None
    host_ip: str | None = None


class ExecAction(_S):
    command: list[str] | None = None


class HTTPHeader(_S):
    name: str = ""
    value: str = ""


class HTTPGetAction(_S):
    port: int | str = 0
    path: str | None = None
    host: str | None = None
    scheme: str | None = None
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(_S):
    port: int | str = 0
    host: str | None = None


class Probe(_S):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    initial_delay_seconds: int | None = None
    period_seconds: int | None = None
    timeout_seconds: int | None = None
    success_threshold: int | None = None
    failure_threshold: int | None = None
    termination_grace_period_seconds: int | None = None


class LifecycleHandler(_S):
    exec: ExecAction | None = None


class Lifecycle(_S):
    post_start: LifecycleHandler | None = None
    pre_stop: LifecycleHandler | None = None


class Capabilities(_S):
    add: list[str] | None = None
    drop: list[str] | None = None


class SeccompProfile(_S):
    """``RuntimeDefault``, ``Unconfined`` or ``Localhost`` (+ ``localhostProfile``, a path
    below ``--seccomp-profile-root``)."""

    type: str = ""
    localhost_profile: str | None = None


class SecurityContext(_S):
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    read_only_root_filesystem: bool | None = None
    capabilities: Capabilities | None = None
    privileged: bool | None = None
    allow_privilege_escalation: bool | None = None
    seccomp_profile: SeccompProfile | None = None


class Container(_S):
    name: str = ""
    image: str = ""
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[EnvVar] | None = None
    working_dir: str | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: list[VolumeMount] | None = None
    ports: list[ContainerPort] | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    lifecycle: Lifecycle | None = None
    restart_policy: str | None = None
    security_context: SecurityContext | None = None
    termination_message_path: str | None = None
    termination_message_policy: str | None = None
    image_pull_policy: str | None = None


class EmptyDirVolumeSource(_S):
    medium: str | None = None
    size_limit: str | int | float | None = None


class HostPathVolumeSource(_S):
    path: str = ""
    type: str | None = None


class KeyToPath(_S):
    key: str = ""
    path: str = ""
    mode: int | None = None


class SecretVolumeSource(_S):
    secret_name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    optional: bool | None = None


class ConfigMapVolumeSource(_S):
    name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    optional: bool | None = None


class Volume(_S):
    name: str = ""
    empty_dir: EmptyDirVolumeSource | None = None
    host_path: HostPathVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None


class PodSecurityContext(_S):
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    supplemental_groups: list[int] | None = None
    fs_group: int | None = None
    seccomp_profile: SeccompProfile | None = None


class PodSpec(_S):
    containers: list[Container] = []
    init_containers: list[Container] = []
    restart_policy: str = "Always"
    active_deadline_seconds: int | None = None
    termination_grace_period_seconds: int = 30
    volumes: list[Volume] = []
    share_process_namespace: bool = False
    host_network: bool = False
    hostname: str | None = None
    subdomain: str | None = None
    overhead: dict[str, str | int | float] | None = None
    resources: ResourceRequirements | None = None
    security_context: PodSecurityContext | None = None
    service_account_name: str | None = None
    node_name: str | None = None
    dns_policy: str | None = None
    dns_config: PodDNSConfig | None = None
    host_aliases: list[HostAlias] | None = None
    enable_service_links: bool | None = None
    automount_service_account_token: bool | None = None


class ObjectMeta(_S):
    name: str = ""
    namespace: str = "default"
    uid: str = ""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class Pod(_S):
    api_version: str = "v1"
    kind: str = "Pod"
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PodSpec = msgspec.field(default_factory=PodSpec)


def all_containers(pod: Pod) -> list[tuple[str, int, Container]]:
    """Every container with its spec list key and index: init containers first, in order."""
    inits = [("initContainers", i, c) for i, c in enumerate(pod.spec.init_containers)]
    apps = [("containers", i, c) for i, c in enumerate(pod.spec.containers)]
    return inits + apps


def is_sidecar(container: Container) -> bool:
    """An init container with ``restartPolicy: Always`` (KEP-753)."""
    return container.restart_policy == "Always"


# ---------------------------------------------------------------- problems and warnings


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


# ---------------------------------------------------------------- loading

MAX_BYTES = 3 * 1024 * 1024
MAX_DEPTH = 100
MAX_NODES = 200_000


def load_pods(text: str | bytes, source: str = "", *,
              legacy_annotations: bool = False) -> list[Pod]:
    """Parse manifest text (YAML or JSON, one or many documents) into defaulted Pods.

    Raises ``SpecError`` naming the field of every structural problem of the first bad
    document. Warnings are dropped; use ``load_pods_with_warnings`` to see them."""
    return load_pods_with_warnings(text, source, legacy_annotations=legacy_annotations)[0]


def load_pods_with_warnings(text: str | bytes, source: str = "", *,
                            legacy_annotations: bool = False
                            ) -> tuple[list[Pod], list[SpecWarning]]:
    """``load_pods`` plus the warnings (ignored scheduling fields, honoured annotations)."""
    pods: list[Pod] = []
    warnings: list[SpecWarning] = []
    for doc in pod_documents(parse_documents(text, source), source):
        pod, found = decode_pod(doc, source, legacy_annotations=legacy_annotations)
        pods.append(pod)
        warnings.extend(found)
    if not pods:
        raise SpecError([document_problem("no Pod document found")], source=source)
    return pods, warnings


def parse_documents(text: str | bytes, source: str = "") -> list[Any]:
    """Every document of a YAML or JSON stream as plain data, refusing hostile input."""
    text = _as_text(text, source)
    stripped = text.lstrip(" \t\r\n")
    if not stripped.startswith(("{", "[")):
        return _parse_yaml(text, source)
    try:
        return _parse_json(stripped, source)
    except SpecError as json_error:
        if "invalid JSON: line" not in str(json_error):
            raise
        try:  # YAML flow style (``{name: p}``) also starts with a brace
            return _parse_yaml(text, source)
        except SpecError as yaml_error:
            raise (json_error if "invalid YAML" in str(yaml_error) else yaml_error) from None


def pod_documents(docs: list[Any], source: str = "") -> list[dict[str, Any]]:
    """The Pod objects among ``docs``: empty documents skipped, ``kind: List`` flattened."""
    out: list[dict[str, Any]] = []
    for doc in docs:
        if doc is None:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "List" and "items" in doc:
            items = doc["items"]
            if not isinstance(items, list):
                raise _doc_error("items: expected a list of Pods", source)
            out.extend(_check_pod_object(item, source) for item in items if item is not None)
        else:
            out.append(_check_pod_object(doc, source))
    return out


def _doc_error(message: str, source: str, pod: str = "") -> SpecError:
    return SpecError([document_problem(message)], pod=pod, source=source)


def _as_text(text: str | bytes, source: str) -> str:
    if isinstance(text, (bytes, bytearray, memoryview)):
        data = bytes(text)
        if len(data) > MAX_BYTES:
            raise _doc_error(_too_big(len(data)), source)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _doc_error(f"manifest is not valid UTF-8 (byte {err.start})", source) from None
    if not isinstance(text, str):
        raise _doc_error("manifest must be text", source)
    if len(text) > MAX_BYTES:
        raise _doc_error(_too_big(len(text)), source)
    return text.removeprefix("\ufeff")


def _too_big(size: int) -> str:
    return f"manifest is {size} bytes; nsrun reads at most {MAX_BYTES} (the API server's limit)"


def _parse_json(text: str, source: str) -> list[Any]:
    decoder, docs, pos = json.JSONDecoder(), [], 0
    try:
        while pos < len(text):
            doc, pos = decoder.raw_decode(text, pos)
            docs.append(doc)
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
    except json.JSONDecodeError as err:
        raise _doc_error(f"invalid JSON: line {err.lineno}, column {err.colno}: {err.msg}",
                         source) from None
    except RecursionError:
        raise _doc_error(f"invalid JSON: nested more than {MAX_DEPTH} levels deep",
                         source) from None
    except ValueError as err:
        raise _doc_error(f"invalid JSON: {_short(err)}", source) from None
    for doc in docs:
        _check_json_shape(doc, source)
    return docs


def _check_json_shape(doc: Any, source: str) -> None:
    """Depth and size limits for JSON, walked without recursion."""
    stack, count = [(doc, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise _doc_error(f"manifest is nested more than {MAX_DEPTH} levels deep", source)
        if count > MAX_NODES:
            raise _doc_error(f"manifest has more than {MAX_NODES} values", source)
        children = node.values() if isinstance(node, dict) else node if isinstance(
            node, list) else ()
        stack.extend((child, depth + 1) for child in children)


def _short(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0].lower().rstrip(".")


# ---------------------------------------------------------------- YAML


def _yaml_loader() -> type:
    """The C safe loader without YAML 1.1 timestamps (Kubernetes keeps them as strings)."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return _loader_without_timestamps(base)


@functools.cache
def _loader_without_timestamps(base: type) -> type:
    resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
                 for k, v in base.yaml_implicit_resolvers.items()}
    return type("NsrunLoader", (base,), {"yaml_implicit_resolvers": resolvers})


def _parse_yaml(text: str, source: str) -> list[Any]:
    import yaml

    loader = _yaml_loader()
    try:
        if not _plainly_bounded(text):
            _check_yaml_events(yaml.parse(text, Loader=loader), source)
        return list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as err:
        raise _doc_error(_yaml_message(err), source) from None
    except (RecursionError, ValueError, TypeError, OverflowError) as err:
        raise _doc_error(f"invalid YAML: {_short(err)}", source) from None


def _plainly_bounded(text: str) -> bool:
    """True when the text can neither alias nor nest past the limits (no anchors, few
    brackets, shallow indentation), so the event pass that guards against YAML bombs can be
    skipped; the common manifest pays for one parse, not two."""
    if "&" in text or "*" in text or len(text) > 65536:
        return False
    if text.count("[") + text.count("{") >= MAX_DEPTH:
        return False
    return all(len(line) - len(line.lstrip(" -")) < MAX_DEPTH for line in text.splitlines())


def _yaml_message(err: Exception) -> str:
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(err, "problem", None) or str(err)
    return f"{where}invalid YAML: {problem}"


class _Sizes:
    """Expanded node counts per open collection, to catch alias bombs before loading."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.stack: list[list[Any]] = []
        self.anchors: dict[str, int] = {}
        self.open: set[str] = set()

    def add(self, size: int) -> None:
        frame = self.stack[-1] if self.stack else None
        total = frame[0] + size if frame else size
        if total > MAX_NODES:
            raise _doc_error(f"manifest expands to more than {MAX_NODES} values "
                             "(excessive YAML aliasing)", self.source)
        if frame:
            frame[0] = total

    def start(self, anchor: str | None) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise _doc_error(f"manifest is nested more than {MAX_DEPTH} levels deep", self.source)
        self.stack.append([1, anchor])
        if anchor:
            self.open.add(anchor)

    def end(self) -> None:
        size, anchor = self.stack.pop()
        if anchor:
            self.anchors[anchor] = size
            self.open.discard(anchor)
        self.add(size)

    def alias(self, anchor: str) -> None:
        if anchor in self.open:
            raise _doc_error(f"YAML alias *{anchor} refers to itself", self.source)
        self.add(self.anchors.get(anchor, 1))

    def scalar(self, anchor: str | None) -> None:
        if anchor:
            self.anchors[anchor] = 1
        self.add(1)


def _check_yaml_events(events: Any, source: str) -> None:
    import yaml

    sizes = _Sizes(source)
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            sizes.start(event.anchor)
        elif isinstance(event, yaml.CollectionEndEvent):
            sizes.end()
        elif isinstance(event, yaml.AliasEvent):
            sizes.alias(event.anchor)
        elif isinstance(event, yaml.ScalarEvent):
            sizes.scalar(event.anchor)


# ---------------------------------------------------------------- one Pod document


def _check_pod_object(doc: Any, source: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise _doc_error(f"expected a Pod object, found {_json_type(doc)}", source)
    kind = doc.get("kind", "Pod")
    if kind != "Pod":
        shown = json.dumps(kind) if isinstance(kind, str) else _json_type(kind)
        raise SpecError([Problem("kind", "Unsupported value", f'{shown}: supported values: "Pod"')],
                        source=source)
    version = doc.get("apiVersion", "v1")
    if version != "v1":
        shown = version if isinstance(version, str) else _json_type(version)
        raise _doc_error(f'no matches for kind "Pod" in version "{shown}"', source)
    return doc


def decode_pod(doc: dict[str, Any], source: str = "", *,
               legacy_annotations: bool = False) -> tuple[Pod, list[SpecWarning]]:
    """One Pod object (plain data) -> a defaulted ``Pod`` and its warnings."""
    from nsrun.core import legacy

    name = _raw_name(doc)
    found = Findings()
    doc = legacy.apply(doc, honour=legacy_annotations, findings=found)
    clean = walk(doc, Pod, "", found)
    if found.problems:
        raise SpecError(found.problems, pod=name, source=source)
    try:
        pod = msgspec.convert(clean, Pod)
    except msgspec.ValidationError as err:
        raise SpecError([problem_from_msgspec(str(err))], pod=name, source=source) from None
    return apply_defaults(pod), found.warnings


def _raw_name(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def _json_type(value: Any) -> str:
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


class _Policy(msgspec.Struct, frozen=True):
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


SCHEDULING = _Policy("warn", "ignored: scheduling has no meaning on one host")
_DROP = _Policy("drop")
_REJECT = _Policy("reject")
_NO_TOKEN = _Policy("warn", "ignored: no API server, so no service account token is mounted")
_UNCONFINED = _Policy("reject", neutral=({}, {"type": "Unconfined"}))

NOT_SUPPORTED = "not supported by nsrun"

_VOLUME_TYPES = (
    "persistentVolumeClaim projected downwardAPI nfs csi ephemeral image gcePersistentDisk "
    "awsElasticBlockStore gitRepo iscsi glusterfs rbd flexVolume cinder cephfs flocker fc "
    "azureFile azureDisk vsphereVolume quobyte photonPersistentDisk portworxVolume scaleIO "
    "storageos").split()

_POLICIES: dict[type, dict[str, _Policy]] = {
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
        "imagePullSecrets": _Policy("warn", "ignored: nsrun never pulls images"),
        "serviceAccount": _NO_TOKEN,
        "os": _Policy("reject", neutral=({}, {"name": "linux"})),
        "hostUsers": _Policy("reject", neutral=(True,)),
        **{k: _REJECT for k in ("ephemeralContainers", "hostPID", "hostIPC",
                                "readinessGates", "setHostnameAsFQDN",
                                "resourceClaims", "runtimeClassName", "hostnameOverride")},
    },
    Container: {
        "resizePolicy": _Policy("warn", "ignored: nsrun does not resize containers"),
        **{k: _REJECT for k in ("envFrom", "restartPolicyRules", "volumeDevices", "stdin",
                                "stdinOnce", "tty")},
    },
    ResourceRequirements: {"claims": _REJECT},
    Probe: {"grpc": _REJECT},
    LifecycleHandler: {k: _REJECT for k in ("httpGet", "tcpSocket", "sleep")},
    Lifecycle: {"stopSignal": _REJECT},
    SecurityContext: {
        "seLinuxOptions": _REJECT, "windowsOptions": _REJECT,
        "procMount": _Policy("reject", neutral=("", "Default")),
        "appArmorProfile": _UNCONFINED,
    },
    PodSecurityContext: {
        **{k: _REJECT for k in ("seLinuxOptions", "windowsOptions", "fsGroupChangePolicy",
                                "sysctls", "seLinuxChangePolicy")},
        "appArmorProfile": _UNCONFINED,
        "supplementalGroupsPolicy": _Policy("reject", neutral=("", "Merge")),
    },
    Volume: {k: _REJECT for k in _VOLUME_TYPES},
    VolumeMount: {"recursiveReadOnly": _Policy("reject", neutral=("", "Disabled"))},
    EnvVarSource: {"fileKeyRef": _REJECT},
}


Policy, POLICIES = _Policy, _POLICIES  # for the other object kinds (``core.service``)


def walk(raw: Any, cls: type, path: str, found: Findings,
         table: dict[type, dict[str, _Policy]] | None = None) -> Any:
    """A copy of ``raw`` with ignored fields removed; unknown and unsupported fields are
    recorded in ``found`` (every one, with its path). ``table``: the policies per class
    (default: the Pod's)."""
    if not isinstance(raw, dict):
        return raw
    table = _POLICIES if table is None else table
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


def _apply_policy(policy: _Policy, where: str, value: Any, found: Findings) -> None:
    """Record what ``policy`` says about ``value`` (a problem, a warning or nothing)."""
    if policy.is_neutral(value):
        return
    if policy.action == "reject":
        found.problems.append(Problem(where, "Forbidden", NOT_SUPPORTED))
    elif policy.action == "warn":
        found.warnings.append(SpecWarning(where, policy.message))


def _walk_value(value: Any, tp: Any, where: str, found: Findings,
                table: dict[type, dict[str, _Policy]]) -> Any:
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


# ---------------------------------------------------------------- defaulting


def apply_defaults(pod: Pod) -> Pod:
    """The API server's defaulting nsrun needs, applied in place (and returned)."""
    spec = pod.spec
    if spec.termination_grace_period_seconds < 0:  # the API server stores a negative one as 1
        spec.termination_grace_period_seconds = 1
    for c in spec.init_containers + spec.containers:
        _default_container(c, spec.host_network)
    for volume in spec.volumes:
        _default_volume(volume)
    from nsrun.core import resources

    resources.default_requests(pod)
    return pod


def _default_container(c: Container, host_network: bool) -> None:
    c.termination_message_path = c.termination_message_path or "/dev/termination-log"
    c.termination_message_policy = c.termination_message_policy or "File"
    for port in c.ports or ():
        port.protocol = port.protocol or "TCP"
        if host_network and not port.host_port:
            port.host_port = port.container_port
    for probe in (c.liveness_probe, c.readiness_probe, c.startup_probe):
        if probe is not None:
            _default_probe(probe)
    for var in c.env or ():
        ref = var.value_from.field_ref if var.value_from else None
        if ref is not None and not ref.api_version:
            ref.api_version = "v1"


def _default_probe(p: Probe) -> None:
    p.initial_delay_seconds = p.initial_delay_seconds or 0
    p.timeout_seconds = p.timeout_seconds or 1
    p.period_seconds = p.period_seconds or 10
    p.success_threshold = p.success_threshold or 1
    p.failure_threshold = p.failure_threshold or 3
    if p.http_get is not None:
        p.http_get.path = p.http_get.path or "/"
        p.http_get.scheme = p.http_get.scheme or "HTTP"


def _default_volume(v: Volume) -> None:
    if not any((v.empty_dir, v.host_path, v.secret, v.config_map)):
        v.empty_dir = EmptyDirVolumeSource()
    if v.host_path is not None and v.host_path.type is None:
        v.host_path.type = ""
    for source in (v.secret, v.config_map):
        if source is not None and source.default_mode is None:
            source.default_mode = 0o644
