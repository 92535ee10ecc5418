"""The Pod v1 subset nsrun runs, as strict msgspec Structs (pure: no I/O).

Python attribute names are snake_case; the manifest's camelCase names map to them
(``initContainers`` -> ``init_containers``). Unknown fields are rejected with their path.
``load_pods`` turns manifest text (YAML or JSON, one or many documents) into ``Pod`` objects
or raises ``SpecError`` naming the field.
"""

from __future__ import annotations

from typing import Any

import msgspec

from nsrun.errors import Problem, SpecError


class _S(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True,
         omit_defaults=True):
    """Base for every manifest object."""


class ObjectFieldSelector(_S):
    field_path: str
    api_version: str | None = None


class ResourceFieldSelector(_S):
    resource: str
    container_name: str | None = None
    divisor: str | int | float | None = None


class KeySelector(_S):
    key: str
    name: str | None = None
    optional: bool | None = None


class EnvVarSource(_S):
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    secret_key_ref: KeySelector | None = None
    config_map_key_ref: KeySelector | None = None


class EnvVar(_S):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class VolumeMount(_S):
    name: str
    mount_path: str
    read_only: bool = False
    sub_path: str | None = None
    sub_path_expr: str | None = None
    mount_propagation: str | None = None


class ResourceRequirements(_S):
    requests: dict[str, str | int | float] | None = None
    limits: dict[str, str | int | float] | None = None


class ContainerPort(_S):
    container_port: int
    name: str | None = None
    protocol: str | None = None
    host_port: int | None = None
    host_ip: str | None = None


class ExecAction(_S):
    command: list[str] | None = None


class HTTPHeader(_S):
    name: str
    value: str


class HTTPGetAction(_S):
    port: int | str
    path: str | None = None
    host: str | None = None
    scheme: str | None = None
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(_S):
    port: int | str
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


class SecurityContext(_S):
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    read_only_root_filesystem: bool | None = None
    capabilities: Capabilities | None = None
    privileged: bool | None = None
    allow_privilege_escalation: bool | None = None


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
    size_limit: str | int | None = None


class HostPathVolumeSource(_S):
    path: str
    type: str | None = None


class KeyToPath(_S):
    key: str
    path: str
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
    name: str
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


def load_pods(text: str | bytes, source: str = "") -> list[Pod]:
    """Parse manifest text (YAML or JSON, one or many documents) into Pods.

    Raises ``SpecError`` with the field path of the first structural problem."""
    docs = _parse_documents(text, source)
    pods = [_decode_pod(doc, source) for doc in docs if doc is not None]
    if not pods:
        raise SpecError([Problem("", "Required value", "no Pod document found")], source=source)
    return pods


def _parse_documents(text: str | bytes, source: str) -> list[Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError([Problem("", "Invalid value", f"{where}invalid YAML: {problem}")],
                        source=source) from None


def _decode_pod(doc: Any, source: str) -> Pod:
    if not isinstance(doc, dict) or doc.get("kind", "Pod") != "Pod":
        kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise SpecError([Problem("kind", "Unsupported value", f'"{kind}": supported values: "Pod"')],
                        source=source)
    try:
        return msgspec.convert(doc, Pod)
    except msgspec.ValidationError as err:
        raise SpecError([_problem_from_msgspec(str(err))], source=source) from None


def _problem_from_msgspec(text: str) -> Problem:
    """``Object contains unknown field `imagee` - at `$.spec.containers[0]` `` -> a Problem
    with a Kubernetes field path."""
    message, _, at = text.partition(" - at `")
    path = at.rstrip("`").removeprefix("$").lstrip(".")
    if message.startswith("Object contains unknown field `"):
        name = message.split("`")[1]
        return Problem(f"{path}.{name}" if path else name, "Invalid value",
                       "unknown field")
    return Problem(path, "Invalid value", message.lower().rstrip("."))
