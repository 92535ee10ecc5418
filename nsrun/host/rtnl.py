"""A minimal rtnetlink client: the bridge, a pod's veth, addresses, a route, link removal.

pyroute2 is the maintained netlink library, but importing it costs 70-250 ms here and keeps
about 20 MiB resident in the process that did (measured: a supervisor that made its world's
bridge with pyroute2 held 37 MiB instead of 17 MiB for its pod's whole life), which neither a
pod's start (the budget for its whole network is 10 ms) nor a long-lived supervisor can
afford. The requests nsrun needs are small fixed structures (``linux/rtnetlink.h``,
``linux/if_link.h``), so they are packed here with ``struct``: each waits for the kernel's
acknowledgement and a failure is an ``OSError`` with the kernel's errno.

``Rtnl(fd)`` wraps a ``NETLINK_ROUTE`` socket: ``Rtnl.open()`` in the caller's network
namespace, ``Rtnl.open_in(net_fd)`` in another one (the socket is made there by the C
extension; it keeps talking to that namespace whoever uses it).
"""

from __future__ import annotations

import errno
import os
import socket
import struct

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 18, 20, 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS, IFLA_NET_NS_FD = 3, 10, 18, 20, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_GATEWAY, RTA_OIF = 5, 4
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
NETLINK_ROUTE = 0

_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")


def attr(kind: int, data: bytes) -> bytes:
    """One ``rtattr``, padded to 4 bytes."""
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * (-length % 4)


def _name(name: str) -> bytes:
    return name.encode() + b"\0"


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    flags = IFF_UP if up else 0
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, flags)


class Rtnl:
    """One NETLINK_ROUTE socket; every method sends one request and waits for its answer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.seq = 0

    @classmethod
    def open(cls) -> Rtnl:
        return cls(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                 NETLINK_ROUTE))

    @classmethod
    def open_in(cls, net_fd: int) -> Rtnl:
        from nsrun.host import nsfds

        fd = nsfds.socket_in_netns(net_fd, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        return cls(socket.socket(fileno=fd))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, kind: int, flags: int, body: bytes) -> bytes:
        """Send one request; the payload of its answer (b"" for a plain acknowledgement)."""
        self.seq += 1
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, NLM_F_REQUEST | flags,
                                 self.seq, 0) + body)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, mtype, _, seq, _ = _HDR.unpack_from(data, offset)
                payload = data[offset + _HDR.size: offset + length]
                offset += (length + 3) & ~3
                if seq != self.seq:
                    continue
                if mtype != NLMSG_ERROR:
                    return payload
                code = struct.unpack_from("=i", payload)[0]
                if code:
                    raise OSError(-code, os.strerror(-code))
                return b""

    # -- the requests --------------------------------------------------------------------

    def add_bridge(self, name: str) -> int:
        """A new bridge, up; its ifindex."""
        info = attr(IFLA_INFO_KIND, b"bridge")
        body = _ifinfo(up=True) + attr(IFLA_IFNAME, _name(name)) + attr(IFLA_LINKINFO, info)
        self.request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)
        return self.link_index(name)

    def add_veth(self, name: str, peer: str, peer_net_fd: int, master: int) -> None:
        """A veth pair: ``name`` here, up and enslaved to the bridge ``master`` (an
        ifindex), ``peer`` created directly in the namespace ``peer_net_fd``, down (the
        kernel cannot bring it up before the pair is joined: ``set_up`` it there)."""
        peer_info = _ifinfo() + attr(IFLA_IFNAME, _name(peer)) + attr(
            IFLA_NET_NS_FD, struct.pack("=I", peer_net_fd))
        info = attr(IFLA_INFO_KIND, b"veth") + attr(IFLA_INFO_DATA,
                                                    attr(VETH_INFO_PEER, peer_info))
        body = (_ifinfo(up=True) + attr(IFLA_IFNAME, _name(name))
                + attr(IFLA_MASTER, struct.pack("=I", master)) + attr(IFLA_LINKINFO, info))
        self.request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)

    def set_alias(self, index: int, alias: str) -> None:
        self.request(RTM_NEWLINK, NLM_F_ACK, _ifinfo(index) + attr(IFLA_IFALIAS,
                                                                   alias.encode()[:255]))

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, NLM_F_ACK, _ifinfo(index, up=True))

    def link_index(self, name: str) -> int:
        """The ifindex of the link ``name`` (``OSError`` ENODEV when there is none)."""
        answer = self.request(RTM_GETLINK, 0, _ifinfo() + attr(IFLA_IFNAME, _name(name)))
        return _IFINFO.unpack_from(answer)[2]

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        packed = socket.inet_aton(address)
        body = _IFADDR.pack(socket.AF_INET, prefixlen, 0, 0, index) + attr(
            IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
        self.request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)

    def add_default_route(self, gateway: str, index: int) -> None:
        body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, 0,
                           RTN_UNICAST, 0) + attr(RTA_GATEWAY, socket.inet_aton(gateway)) \
            + attr(RTA_OIF, struct.pack("=I", index))
        self.request(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)

    def delete_link(self, name: str) -> bool:
        """Remove the link ``name``; False when there is no such link."""
        try:
            self.request(RTM_DELLINK, NLM_F_ACK, _ifinfo() + attr(IFLA_IFNAME, _name(name)))
        except OSError as err:
            if err.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True
