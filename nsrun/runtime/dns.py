"""The cluster DNS of one pod, served by its supervisor inside the pod's network namespace.

No daemon: the supervisor binds a UDP socket on the cluster DNS address (on the pod's
``lo``, port 53) and answers from its poll loop. Names in the cluster domain are answered
from the world's DNS view (``network/view.json``, re-read whenever it changes, so a Service
created after the pod started resolves on the next query) with ``nsrun.core.dnsnames``'s
rules, including the busybox rule for the pod's own search list. Other names are relayed to
the first nameserver of ``--resolv-conf`` from the host's namespace (the query id rewritten,
answers relayed back; unanswered relays are dropped after ``RELAY_TIMEOUT`` and the client
retries); with no nameserver the answer is SERVFAIL.

Failure mode: while the supervisor is down (killed, being restarted), its pod has no DNS.
dnslib parses and builds the packets; it is imported on the first query, off the start path.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import msgspec

from nsrun.core import dnsnames

DNS_PORT = 53
RELAY_TIMEOUT = 5.0
MAX_PENDING = 1024


class PodDNS:
    """The DNS socket of one pod and the relay socket for names outside the cluster."""

    def __init__(self, net_fd: int, address: str, view_file: Path,
                 search: tuple[str, ...], upstreams: tuple[str, ...],
                 upstream_port: int = DNS_PORT) -> None:
        from nsrun.host import nsfds

        fd = nsfds.socket_in_netns(net_fd, socket.AF_INET, socket.SOCK_DGRAM)
        self.sock = socket.socket(fileno=fd)
        try:
            self.sock.bind((address, DNS_PORT))
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.view_file, self.search = view_file, search
        self.upstreams, self.upstream_port = upstreams, upstream_port
        self.relay: socket.socket | None = None
        self.pending: dict[int, tuple[Any, int, float]] = {}
        self._stamp: tuple[int, int] | None = None
        self._zone = dnsnames.Zone(dnsnames.View())

    def fds(self) -> list[int]:
        return [s.fileno() for s in (self.sock, self.relay) if s is not None]

    def close(self) -> None:
        for s in (self.sock, self.relay):
            if s is not None:
                s.close()
        self.relay = None

    def handle(self, fd: int) -> None:
        """Serve what is waiting on ``fd`` (the pod's socket or the relay socket)."""
        if self.relay is not None and fd == self.relay.fileno():
            self._relay_answers()
            return
        while True:
            try:
                data, client = self.sock.recvfrom(4096)
            except BlockingIOError:
                return
            reply = self.answer(data, client)
            if reply is not None:
                self._send(reply, client)

    def _send(self, data: bytes, client: Any) -> None:
        try:
            self.sock.sendto(data, client)
        except OSError:
            pass  # the client went away; UDP keeps no promise

    # -- answering -------------------------------------------------------------------------

    def zone(self) -> dnsnames.Zone:
        """The view, re-read when its file changed (it is replaced atomically)."""
        try:
            st = os.stat(self.view_file)
        except FileNotFoundError:
            return self._zone
        stamp = (st.st_ino, st.st_mtime_ns)
        if stamp != self._stamp:
            try:
                view = msgspec.json.decode(self.view_file.read_bytes(), type=dnsnames.View)
            except (OSError, msgspec.DecodeError):
                return self._zone
            self._zone, self._stamp = dnsnames.Zone(view), stamp
        return self._zone

    def answer(self, data: bytes, client: Any) -> bytes | None:
        """The reply to one query (None: relayed, or not a DNS query)."""
        from dnslib import QTYPE, RCODE, DNSError, DNSRecord

        try:
            request = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError):
            return None
        if request.header.qr or not request.questions:
            return None
        q = request.q
        answer = dnsnames.lookup(self.zone(), str(q.qname), QTYPE.get(q.qtype, ""),
                                 self.search)
        if answer.forward:
            return self._forward(data, client, request)
        reply = request.reply()
        if answer.rcode == dnsnames.NXDOMAIN:
            reply.header.rcode = RCODE.NXDOMAIN
        for record in answer.records:
            reply.add_answer(_rr(record))
        for record in answer.additional:
            reply.add_ar(_rr(record))
        if not answer.records:
            reply.add_auth(_soa(self._zone.domain))
        return reply.pack()

    # -- relaying --------------------------------------------------------------------------

    def _forward(self, data: bytes, client: Any, request) -> bytes | None:
        if not self.upstreams:
            return _servfail(request)
        now = time.monotonic()
        self._expire(now)
        if len(self.pending) >= MAX_PENDING:
            return _servfail(request)
        if self.relay is None:
            self.relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.relay.setblocking(False)
        qid = int.from_bytes(os.urandom(2), "big")
        while qid in self.pending:
            qid = (qid + 1) & 0xFFFF
        self.pending[qid] = (client, request.header.id, now + RELAY_TIMEOUT)
        try:
            self.relay.sendto(qid.to_bytes(2, "big") + data[2:],
                              (self.upstreams[0], self.upstream_port))
        except OSError:
            del self.pending[qid]
            return _servfail(request)
        return None

    def _relay_answers(self) -> None:
        assert self.relay is not None
        while True:
            try:
                data, _ = self.relay.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError:
                continue  # an ICMP error from the upstream: the client will retry
            if len(data) < 12:
                continue
            entry = self.pending.pop(int.from_bytes(data[:2], "big"), None)
            if entry is not None:
                client, qid, _ = entry
                self._send(qid.to_bytes(2, "big") + data[2:], client)

    def _expire(self, now: float) -> None:
        for qid in [k for k, (_, _, t) in self.pending.items() if t < now]:
            del self.pending[qid]


def _rr(record: dnsnames.Record):
    from dnslib import PTR, QTYPE, RR, SRV, A

    if record.type == dnsnames.SRV:
        prio, weight, port, target = record.data
        rdata: Any = SRV(prio, weight, port, target)
    elif record.type == dnsnames.PTR:
        rdata = PTR(record.data)
    else:
        rdata = A(record.data)
    return RR(record.name, getattr(QTYPE, record.type), rdata=rdata, ttl=dnsnames.TTL)


def _soa(domain: str):
    from dnslib import QTYPE, RR, SOA

    return RR(domain, QTYPE.SOA, ttl=dnsnames.TTL, rdata=SOA(
        f"ns.dns.{domain}", f"hostmaster.{domain}",
        (int(time.time()), 7200, 1800, 86400, dnsnames.TTL)))


def _servfail(request) -> bytes:
    from dnslib import RCODE

    reply = request.reply()
    reply.header.rcode = RCODE.SERVFAIL
    return reply.pack()
