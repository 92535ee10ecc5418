"""One pod's place on the world's network: its address, its veth, their clean-up.

``PodNet.setup`` allocates the pod's IP in the state root (under the world's lock, so
concurrent pods never share one), makes the world's bridge and table on first use, records
``network.json`` in the pod's state dir (address, veth, host IP) *before* the veth exists,
then attaches the pod. ``teardown`` undoes it; ``cleanup_after_crash`` does the same from
``network.json`` alone when the supervisor was killed. When the pod CIDR is exhausted,
addresses of pods whose supervisor is gone are reclaimed (their veth removed first); if
none is left, ``NoAddress`` says so and the pod waits (nothing half-made is left).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from nsrun.core.netconfig import NetConfig, free_address
from nsrun.core.spec import Pod
from nsrun.netstate import NetState
from nsrun.state import PodPaths, StateRoot, supervisor_alive, write_atomic


class PodNetwork(msgspec.Struct):
    """What a pod got (``<pod dir>/network.json``)."""

    ip: str = ""
    veth: str = ""
    host_ip: str = ""
    host_network: bool = False


class NoAddress(Exception):
    """The pod CIDR has no free address: the pod waits."""


def network_file(paths: PodPaths) -> Path:
    return paths.dir / "network.json"


def read_record(paths: PodPaths) -> PodNetwork | None:
    try:
        return msgspec.json.decode(network_file(paths).read_bytes(), type=PodNetwork)
    except (FileNotFoundError, msgspec.DecodeError):
        return None


class PodNet:
    """The network of one pod of the world at ``root``."""

    def __init__(self, root: Path, cfg: NetConfig, pod: Pod, paths: PodPaths) -> None:
        self.root, self.cfg, self.pod, self.paths = root, cfg, pod, paths
        self.net = NetState(root)
        self.record: PodNetwork | None = None

    def setup(self, net_fd: int) -> PodNetwork:
        """Address, bridge, veth (``NoAddress`` when the range is full)."""
        from nsrun.host import network

        if self.pod.spec.host_network:
            ip = network.node_ip()
            return self._save(PodNetwork(ip, "", ip, True))
        with self.net.locked():
            ip = self._allocate()
            try:
                made = network.bridge_index(self.cfg.bridge) is None
                network.ensure_bridge(self.cfg)
            except BaseException:
                self.net.release(ip, self.paths.name)
                raise
        record = self._save(PodNetwork(ip, self.cfg.veth_name(self.pod.metadata.uid),
                                       network.node_ip()))
        if made:
            self._sync()
        self.attach(net_fd)
        return record

    def attach(self, net_fd: int) -> None:
        """The veth into a (new) network namespace, with the pod's address; a pod restart
        calls it again: the old veth, if any, goes first."""
        from nsrun.host import network

        assert self.record is not None
        if self.record.host_network:
            return
        network.detach(self.record.veth)
        try:
            network.attach(self.cfg, net_fd, self.record.veth, self.record.ip)
        except BaseException:
            self.teardown()
            raise

    def _save(self, record: PodNetwork) -> PodNetwork:
        write_atomic(network_file(self.paths), msgspec.json.encode(record))
        self.record = record
        return record

    def _allocate(self) -> str:
        """A free address, recorded for this pod (with the lock held)."""
        name = self.paths.name
        table = {ip: pod for ip, pod in self.net.allocations().items() if pod != name}
        candidates = self.cfg.pod_addresses()
        ip = free_address(candidates, set(table))
        if ip is None:
            table = _reclaim(self.root, table)
            ip = free_address(candidates, set(table))
        if ip is None:
            raise NoAddress(f"failed to allocate an IP for pod \"{name}\": no IP addresses "
                            f"available in range set: {candidates[0]}-{candidates[-1]}")
        table[ip] = name
        self.net.write_allocations(table)
        return ip

    def teardown(self) -> None:
        """Remove the veth, free the address; the world's last pod removes the bridge."""
        if self.record is not None:
            release(self.root, self.cfg, self.paths, self.record)
            self.record = None

    def _sync(self) -> None:
        from nsrun.runtime import netsync

        netsync.sync(self.root, self.cfg)


def release(root: Path, cfg: NetConfig, paths: PodPaths, record: PodNetwork) -> None:
    """Undo a pod's network from its record (also after its supervisor was killed)."""
    from nsrun.host import network
    from nsrun.runtime import netsync

    if record.veth:
        network.detach(record.veth)
    net = NetState(root)
    with net.locked():
        if record.ip and not record.host_network:
            net.release(record.ip, paths.name)
        if not net.allocations() and network.bridge_index(cfg.bridge) is not None:
            network.remove_bridge(cfg)
    try:
        network_file(paths).unlink()
    except FileNotFoundError:
        pass
    if net.has_services() or not net.allocations():
        netsync.sync(root, cfg)


def cleanup_after_crash(root: Path, paths: PodPaths) -> None:
    """The supervisor is gone: release what ``network.json`` says the pod had."""
    record = read_record(paths)
    cfg = NetState(root).stored_config()
    if record is not None and cfg is not None:
        release(root, cfg, paths, record)


def _reclaim(root: Path, table: dict[str, str]) -> dict[str, str]:
    """``table`` without the addresses of pods that are gone or whose supervisor died (their
    veth removed first)."""
    from nsrun.host import network

    state = StateRoot(root)
    kept = {}
    for ip, name in table.items():
        paths = state.pod(name)
        if paths.dir.is_dir() and supervisor_alive(paths):
            kept[ip] = name
            continue
        record = read_record(paths)
        if record is not None and record.veth:
            network.detach(record.veth)
    return kept
