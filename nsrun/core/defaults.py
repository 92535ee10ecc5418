"""The API server's defaulting that nsrun needs, since no API server runs before it (pure).

Probe timings, ports (protocol, hostPort under hostNetwork), the termination message path
and policy, Downward API versions, volume sources and modes, and requests from limits with
pod-level requests (``core.resources.default_requests``).
"""

from __future__ import annotations

from nsrun.core import resources
from nsrun.core.spec import Container, EmptyDirVolumeSource, Pod, Probe, Volume


def apply_defaults(pod: Pod) -> Pod:
    """The API server's defaulting nsrun needs, applied in place (and returned)."""
    spec = pod.spec
    if spec.termination_grace_period_seconds < 0:  # the API server stores a negative one as 1
        spec.termination_grace_period_seconds = 1
    for c in spec.init_containers + spec.containers:
        _default_container(c, spec.host_network)
    for volume in spec.volumes:
        _default_volume(volume)
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
