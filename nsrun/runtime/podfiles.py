"""The files the kubelet writes for a pod and binds into every container.

In the pod's state dir, bound at the same paths as the kubelet and containerd do:

    etc-hosts                  → /etc/hosts (read-write, like the kubelet's)
    resolv.conf                → /etc/resolv.conf (read-write, like containerd's)
    serviceaccount/namespace   → /var/run/secrets/kubernetes.io/serviceaccount (read-only;
                                 only ``namespace``: no API server, so no token or ca.crt;
                                 not with ``automountServiceAccountToken: false``)

A container that mounts something at one of these paths itself keeps its own. The files are
new and written before any container starts: plain writes, no rename.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nsrun.core import podnet
from nsrun.core.netconfig import NetConfig
from nsrun.core.spec import Pod
from nsrun.state import PodPaths

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def host_resolv(path: str | None) -> podnet.ResolvConf:
    """The node's resolver settings from ``--resolv-conf`` ("" or a missing file: none)."""
    if not path:
        return podnet.parse_resolv_conf(None)
    try:
        return podnet.parse_resolv_conf(Path(path).read_text(errors="replace"))
    except FileNotFoundError:
        return podnet.parse_resolv_conf(None)


def write(pod: Pod, paths: PodPaths, cfg: NetConfig, pod_ips: list[str],
          host: podnet.ResolvConf, dns: str) -> tuple[list[dict[str, Any]], podnet.ResolvConf,
                                                      list[tuple[str, str]]]:
    """Write the files (``dns``: the pod's cluster DNS address); (their OCI bind mounts, the
    pod's resolv.conf, Warning events)."""
    meta, spec = pod.metadata, pod.spec
    hostname, domain = podnet.pod_hostname(spec, meta.name, meta.namespace,
                                           cfg.cluster_domain)
    hosts = paths.hosts
    hosts.write_text(podnet.hosts_file(spec, hostname, domain, pod_ips,
                                       _node_hosts() if spec.host_network else ""))
    resolv, events = podnet.resolv_conf(spec, meta.namespace, dns, cfg.cluster_domain, host)
    resolv_file = paths.resolv_conf
    resolv_file.write_text(resolv.render())
    mounts = [_bind("/etc/hosts", hosts, "rw"), _bind("/etc/resolv.conf", resolv_file, "rw")]
    if spec.automount_service_account_token is not False:
        account = paths.service_account
        account.mkdir(exist_ok=True)
        (account / "namespace").write_text(meta.namespace)
        mounts.append(_bind(SERVICE_ACCOUNT_DIR, account, "ro"))
    return mounts, resolv, events


def _bind(destination: str, source: Path, mode: str) -> dict[str, Any]:
    return {"destination": destination, "type": "bind", "source": str(source),
            "options": ["rbind", mode]}


def _node_hosts() -> str:
    try:
        return Path("/etc/hosts").read_text(errors="replace")
    except OSError:
        return ""
