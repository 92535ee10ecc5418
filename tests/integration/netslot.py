"""Distinct networks for concurrent test worlds (several engineers' test runs share this host).

Every test world gets its own pod CIDR and service CIDR inside 169.254.0.0/16 (the tests
never use other addresses): slot ``n`` (0-127) is pods ``169.254.(32 + n/4).(n%4*64)/26``
and Services ``169.254.(64 + n/4).(n%4*64)/26``, away from nsrun's defaults
(169.254.100.0/24, 169.254.200.0/24). Slots are claimed under a host-wide flock in
``/tmp/nsrun-test-nets``: a slot is free when no live process holds it, or when this
process holds it and no route uses its pod CIDR any more (its last world is gone).
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import struct
from pathlib import Path

SLOTS = Path("/tmp/nsrun-test-nets")
COUNT = 128
_OWN: list[int] = []


def cidrs(slot: int) -> tuple[str, str]:
    third, fourth = slot // 4, slot % 4 * 64
    return f"169.254.{32 + third}.{fourth}/26", f"169.254.{64 + third}.{fourth}/26"


def _routes() -> list[ipaddress.IPv4Network]:
    nets = []
    with open("/proc/net/route") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            dest, mask = (struct.pack("<I", int(x, 16)) for x in (fields[1], fields[7]))
            net = ipaddress.IPv4Network((int.from_bytes(dest, "big"),
                                         bin(int.from_bytes(mask, "big")).count("1")))
            if net.prefixlen >= 26:
                nets.append(net)
    return nets


def _in_use(slot: int) -> bool:
    mine = ipaddress.IPv4Network(cidrs(slot)[0])
    return any(net.overlaps(mine) for net in _routes())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim() -> tuple[str, str]:
    """(pod CIDR, service CIDR) no other live world uses."""
    SLOTS.mkdir(exist_ok=True)
    fd = os.open(SLOTS / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for slot in _OWN:
            if not _in_use(slot):
                return cidrs(slot)
        for slot in range(COUNT):
            path = SLOTS / str(slot)
            try:
                owner = int(path.read_text() or "0")
            except (FileNotFoundError, ValueError):
                owner = 0
            if owner and _alive(owner) or _in_use(slot):
                continue
            path.write_text(f"{os.getpid()}\n")
            _OWN.append(slot)
            return cidrs(slot)
        raise RuntimeError(f"all {COUNT} test network slots are in use ({SLOTS})")
    finally:
        os.close(fd)
