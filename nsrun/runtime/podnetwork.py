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
    return paths.network


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
            _sync(self.root, self.cfg)
        self.attach(net_fd)
        return record

    def attach(self, net_fd: int, again: bool = False) -> None:
        """The veth into a (new) network namespace, with the pod's address; a pod restart
        calls it ``again``: the old veth, in the namespace being torn down, goes first."""
        from nsrun.host import network

        assert self.record is not None
        if self.record.host_network:
            return
        if again:
            network.detach(self.record.veth)
        try:
            network.attach(self.cfg, net_fd, self.record.veth, self.record.ip)
        except BaseException:
            self.teardown(detach=True)
            raise

    def _save(self, record: PodNetwork) -> PodNetwork:
        write_atomic(network_file(self.paths), msgspec.json.encode(record), durable=False)
        self.record = record
        return record

    def _allocate(self) -> str:
        """A free address, recorded for this pod (with the lock held); the veth of its
        previous pod, if the kernel has not removed it yet, is removed first."""
        from nsrun.host import network

        name = self.paths.name
        ipam = self.net.ipam()
        pods = {ip: pod for ip, pod in ipam.pods.items() if pod != name}
        candidates = self.cfg.pod_addresses()
        ip = free_address(candidates, set(pods), ipam.last)
        if ip is None:
            pods = _reclaim(self.root, pods)
            ip = free_address(candidates, set(pods), ipam.last)
        if ip is None:
            first, last = self.cfg.pod_range()
            raise NoAddress(f"failed to allocate an IP for pod \"{name}\": no IP addresses "
                            f"available in range set: {first}-{last}")
        stale = ipam.released.pop(ip, "")
        if stale and network.link_exists(stale):
            network.detach(stale)
        pods[ip] = name
        self.net.write_ipam(msgspec.structs.replace(ipam, pods=pods, last=ip))
        return ip

    def teardown(self, detach: bool = False) -> None:
        """Free the address (the veth goes with the pod's network namespace, or at once
        with ``detach``); the world's last pod removes the bridge."""
        if self.record is not None:
            release(self.root, self.cfg, self.paths, self.record, detach)
            self.record = None


def release(root: Path, cfg: NetConfig, paths: PodPaths, record: PodNetwork,
            detach: bool = True) -> None:
    """Undo a pod's network from its record (also after its supervisor was killed). The
    veth is removed at once with ``detach``; else the kernel removes it with the pod's
    network namespace (removing a veth takes ~25 ms, which a pod's end need not wait for)."""
    from nsrun.host import network

    net = NetState(root)
    if record.host_network:  # nothing of the world's: only its Services may have used it
        _forget(paths)
        if net.has_services():
            _sync(root, cfg)
        return
    if record.veth and detach:
        network.detach(record.veth)
    with net.locked():
        if record.ip:
            net.release(record.ip, paths.name, "" if detach else record.veth)
        if not net.allocations() and network.bridge_index(cfg.bridge) is not None:
            network.remove_bridge(cfg)
    _forget(paths)
    if net.has_services() or not net.allocations():
        _sync(root, cfg)


def _sync(root: Path, cfg: NetConfig) -> None:
    from nsrun.runtime import netsync

    netsync.sync(root, cfg)


def _forget(paths: PodPaths) -> None:
    try:
        network_file(paths).unlink()
    except FileNotFoundError:
        pass


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
