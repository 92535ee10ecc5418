"""A world's network state in the state root: settings, pod IP allocations, Services.

Layout under ``--root``::

    network/config.json        the world's NetConfig (CIDRs, domain, DNS, bridge, table)
    network/lock               flock: allocations, the bridge's and table's lifetime
    network/sync.lock          flock: recomputing endpoints, the DNS view and the rules
    network/ipam.json          the addresses in use (pod IP → pod name), the last one handed
                               out, and released ones whose veth may still be going away
    network/view.json          what the cluster DNS serves (``core.dnsnames.View``)
    services/<ns>/<name>.json  one Service per file, as ``get svc -o json`` shows it

The settings are fixed while the world has a pod or a Service; different options then are
refused, naming both. An address whose pod is gone, or whose supervisor died, is reclaimed
when the range runs out (its veth, if any, is removed first by the caller).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from nsrun.core.netconfig import NetConfig
from nsrun.core.service import Service
from nsrun.errors import StateError, UsageError
from nsrun.state import write_atomic


class Ipam(msgspec.Struct):
    """``network/ipam.json``. Addresses are handed out round-robin (after ``last``), as the
    CNI host-local plugin does: a pod's veth goes away with its network namespace, which
    the kernel frees asynchronously, so an address is not reused at once; ``released``
    remembers the veth of each freed address until it is gone."""

    pods: dict[str, str] = {}
    last: str = ""
    released: dict[str, str] = {}


class NetState:
    """The network part of one state root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "network"
        self.services_dir = root / "services"

    config_file = property(lambda self: self.dir / "config.json")
    ipam_file = property(lambda self: self.dir / "ipam.json")
    view_file = property(lambda self: self.dir / "view.json")

    @contextmanager
    def locked(self, name: str = "lock") -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o711)
        fd = os.open(self.dir / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- settings --------------------------------------------------------------------------

    def stored_config(self) -> NetConfig | None:
        try:
            return msgspec.json.decode(self.config_file.read_bytes(), type=NetConfig)
        except FileNotFoundError:
            return None
        except msgspec.DecodeError:
            raise StateError(f"{self.config_file}: corrupt network settings") from None

    def settle_config(self, wanted: NetConfig) -> NetConfig:
        """The world's settings: ``wanted`` when the world is empty (then stored), else the
        stored ones, which must agree with ``wanted`` (``UsageError`` naming both)."""
        if self.stored_config() == wanted:
            return wanted
        with self.locked():
            stored = self.stored_config()
            if stored == wanted:
                return wanted
            if stored is not None and (self.allocations() or self.has_services()):
                raise UsageError(_mismatch(stored, wanted, self.root))
            write_atomic(self.config_file, msgspec.json.encode(wanted))
        return wanted

    # -- pod addresses ---------------------------------------------------------------------

    def ipam(self) -> Ipam:
        try:
            return msgspec.json.decode(self.ipam_file.read_bytes(), type=Ipam)
        except FileNotFoundError:
            return Ipam()
        except msgspec.DecodeError:
            raise StateError(f"{self.ipam_file}: corrupt address allocations") from None

    def allocations(self) -> dict[str, str]:
        """Pod IP → pod name, every address in use."""
        return self.ipam().pods

    def write_ipam(self, ipam: Ipam) -> None:
        write_atomic(self.ipam_file, msgspec.json.encode(ipam))

    def release(self, ip: str, pod: str, veth: str = "") -> bool:
        """Free ``ip`` if ``pod`` holds it (with the lock held), remembering its ``veth``
        until the kernel has removed it; True when it was freed."""
        from nsrun.host.network import link_exists

        ipam = self.ipam()
        if ipam.pods.get(ip) != pod:
            return False
        del ipam.pods[ip]
        # a pod whose state is gone (removed without `delete`) holds nothing any more
        ipam.pods = {a: p for a, p in ipam.pods.items() if (self.root / "pods" / p).is_dir()}
        ipam.released = {a: v for a, v in ipam.released.items() if link_exists(v)}
        if veth:
            ipam.released[ip] = veth
        self.write_ipam(ipam)
        return True

    # -- Services ----------------------------------------------------------------------------

    def service_path(self, namespace: str, name: str) -> Path:
        return self.services_dir / namespace / f"{name}.json"

    def has_services(self) -> bool:
        try:
            return any(os.scandir(d) for d in os.scandir(self.services_dir) if d.is_dir())
        except FileNotFoundError:
            return False

    def services(self, namespace: str | None = None) -> list[Service]:
        """Every stored Service (of ``namespace``), by namespace then name."""
        out = []
        try:
            spaces = sorted(os.listdir(self.services_dir))
        except FileNotFoundError:
            return []
        for ns in spaces if namespace is None else [namespace]:
            try:
                names = sorted(os.listdir(self.services_dir / ns))
            except (FileNotFoundError, NotADirectoryError):
                continue
            out += [s for s in (self.service(ns, n[:-5]) for n in names
                                if n.endswith(".json")) if s is not None]
        return out

    def service(self, namespace: str, name: str) -> Service | None:
        """The stored Service as a model (its status and timestamps dropped)."""
        from nsrun.core.service import decode_service
        from nsrun.errors import SpecError

        obj = self.service_object(namespace, name)
        try:
            return decode_service(obj)[0] if isinstance(obj, dict) else None
        except SpecError:
            return None

    def service_object(self, namespace: str, name: str) -> dict | None:
        """The stored Service as plain data (what ``get svc -o json`` prints)."""
        try:
            return msgspec.json.decode(self.service_path(namespace, name).read_bytes())
        except (FileNotFoundError, msgspec.DecodeError):
            return None

    def write_service(self, obj: dict) -> None:
        meta = obj["metadata"]
        path = self.service_path(meta["namespace"], meta["name"])
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        write_atomic(path, msgspec.json.encode(obj))

    def remove_service(self, namespace: str, name: str) -> bool:
        path = self.service_path(namespace, name)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        try:
            path.parent.rmdir()
        except OSError:
            pass
        return True


def _mismatch(stored: NetConfig, wanted: NetConfig, root: Path) -> str:
    diffs = [f"{field} {getattr(stored, field)} (asked: {getattr(wanted, field)})"
             for field in ("pod_cidr", "service_cidr", "cluster_domain", "cluster_dns")
             if getattr(stored, field) != getattr(wanted, field)]
    return (f"state root {root} uses {', '.join(diffs)}: delete its pods and Services "
            "before changing the network settings")
