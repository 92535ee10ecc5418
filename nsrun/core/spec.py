"""The Pod v1 subset nsrun runs, as strict msgspec Structs (pure).

Python attribute names are snake_case; the manifest's camelCase names map to them
(``initContainers`` -> ``init_containers``). Only the model lives here, with two helpers every
layer uses (``all_containers``, ``is_sidecar``). Loading manifest text into these types is
``core.manifest``; fields outside the model and schema messages ``core.schema``; the API
server's defaulting ``core.defaults``; validation of values ``core.validate``.
``metadata.uid`` stays ``""`` when absent (the runtime fills it: the core has no randomness).
"""

from __future__ import annotations

import msgspec

from nsrun.core.podnet import HostAlias, PodDNSConfig


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
