"""Cluster DNS names → records, as CoreDNS's ``kubernetes`` plugin answers them (pure).

``View`` is what the cluster DNS knows (Services, their ready endpoints, the namespaces in
use); ``lookup(zone, qname, qtype, search)`` answers one question with an ``Answer``: the
records, NXDOMAIN, NODATA, or "forward" for names outside the cluster domain.

Inside ``<domain>`` (CoreDNS's rules): ``<svc>.<ns>.svc`` → the ClusterIP (even with no
endpoints), or for a headless Service one A per ready endpoint (none → NXDOMAIN);
``<host>.<svc>.<ns>.svc`` → that endpoint (``<host>`` = the pod's ``hostname`` when its
``subdomain`` is the Service, else the dashed IP ``10-244-0-5``); ``_<port>._<proto>.<svc>.
<ns>.svc`` → SRV; ``<ns>.svc``, ``svc`` and the apex → NODATA; pod records
(``a-b-c-d.<ns>.pod``) are disabled, like CoreDNS's default → NXDOMAIN; PTR for Service and
endpoint addresses. A name that exists without records of the asked type is NODATA.

**The busybox rule (nsrun's deviation from CoreDNS).** busybox ≥ 1.31 ``nslookup`` sends
a dotless name under *every* search suffix and fails if any answer is NXDOMAIN. So when
``<name>.<suffix>`` is asked for a suffix of the asking pod's search list, and ``<name>``
resolves (has an address) under another of its suffixes in the cluster domain, the answer is
NODATA instead of NXDOMAIN (and such a name is never forwarded).
"""

from __future__ import annotations

import msgspec

A, AAAA, SRV, PTR, ANY = "A", "AAAA", "SRV", "PTR", "ANY"
NOERROR, NXDOMAIN = "NOERROR", "NXDOMAIN"
TTL = 5  # CoreDNS's default


class EndpointRecord(msgspec.Struct, frozen=True):
    ip: str
    hostname: str = ""
    ports: tuple[tuple[str, int], ...] = ()


class ServiceRecord(msgspec.Struct, frozen=True):
    name: str
    namespace: str
    cluster_ip: str  # "None" for a headless Service
    ports: tuple[tuple[str, str, int], ...] = ()  # (name, protocol, port)
    endpoints: tuple[EndpointRecord, ...] = ()  # ready ones only

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"


class View(msgspec.Struct, frozen=True):
    """What the cluster DNS serves (written by the runtime, read by every pod's DNS)."""

    domain: str = "cluster.local"
    services: tuple[ServiceRecord, ...] = ()
    namespaces: tuple[str, ...] = ()


class Record(msgspec.Struct, frozen=True):
    name: str
    type: str
    data: str | tuple[int, int, int, str]  # an address or target; SRV: (prio, weight, port, target)


class Answer(msgspec.Struct, frozen=True):
    rcode: str = NOERROR
    records: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()
    forward: bool = False


FORWARD = Answer(forward=True)
NODATA = Answer()
NX = Answer(NXDOMAIN)


class Zone:
    """A ``View`` indexed for lookups."""

    def __init__(self, view: View) -> None:
        self.domain = view.domain.strip(".").lower()
        self.services = {(s.name, s.namespace): s for s in view.services}
        self.namespaces = set(view.namespaces) | {s.namespace for s in view.services}
        self.ptr: dict[str, str] = {}
        for s in view.services:
            fqdn = f"{s.name}.{s.namespace}.svc.{self.domain}"
            if not s.headless:
                self.ptr[s.cluster_ip] = fqdn
            for e in s.endpoints:
                self.ptr.setdefault(e.ip, f"{_host(e)}.{fqdn}")


def _host(e: EndpointRecord) -> str:
    return e.hostname or e.ip.replace(".", "-")


def lookup(zone: Zone, qname: str, qtype: str, search: tuple[str, ...] = ()) -> Answer:
    """The answer to (``qname``, ``qtype``) for a pod whose search list is ``search``."""
    name = qname.rstrip(".").lower()
    answer = _direct(zone, name, qtype)
    if answer.rcode == NXDOMAIN or answer.forward:
        if _exists_under_other_suffix(zone, name, search):
            return NODATA
    return answer


def _exists_under_other_suffix(zone: Zone, name: str, search: tuple[str, ...]) -> bool:
    for suffix in search:
        suffix = suffix.rstrip(".").lower()
        if not name.endswith("." + suffix):
            continue
        base = name[: -len(suffix) - 1]
        for other in search:
            other = other.rstrip(".").lower()
            if other != suffix and _exists(zone, f"{base}.{other}"):
                return True
    return False


def _exists(zone: Zone, name: str) -> bool:
    """``name`` resolves to an address in the cluster zone."""
    answer = _direct(zone, name, A)
    return not answer.forward and bool(answer.records)


def _direct(zone: Zone, name: str, qtype: str) -> Answer:
    if name.endswith(".in-addr.arpa"):
        return _reverse(zone, name, qtype)
    if name == zone.domain:
        return NODATA
    if not name.endswith("." + zone.domain):
        return FORWARD
    labels = name[: -len(zone.domain) - 1].split(".")
    if labels[-1] == "svc":
        return _svc(zone, name, labels[:-1], qtype)
    return NX  # pod records are disabled, other shapes do not exist


def _svc(zone: Zone, name: str, labels: list[str], qtype: str) -> Answer:
    if not labels:
        return NODATA
    if len(labels) == 1:
        return NODATA if labels[0] in zone.namespaces else NX
    svc = zone.services.get((labels[-2], labels[-1]))
    if svc is None:
        return NX
    if len(labels) == 2:
        return _service(zone, name, svc, qtype)
    if len(labels) == 3:
        return _endpoint(name, svc, labels[0], qtype)
    if len(labels) == 4 and labels[0].startswith("_") and labels[1].startswith("_"):
        return _srv(zone, name, svc, labels[0][1:], labels[1][1:].upper(), qtype)
    return NX


def _service(zone: Zone, name: str, svc: ServiceRecord, qtype: str) -> Answer:
    if svc.headless:
        if not svc.endpoints:
            return NX
        ips = [e.ip for e in svc.endpoints]
    else:
        ips = [svc.cluster_ip]
    if qtype in (A, ANY):
        return Answer(records=tuple(Record(name, A, ip) for ip in ips))
    if qtype == SRV:
        return _srv_all(zone, name, svc)
    return NODATA


def _endpoint(name: str, svc: ServiceRecord, host: str, qtype: str) -> Answer:
    if not svc.headless:
        return NX
    found = [e for e in svc.endpoints if _host(e) == host]
    if not found:
        return NX
    if qtype in (A, ANY):
        return Answer(records=tuple(Record(name, A, e.ip) for e in found))
    return NODATA


def _srv_records(zone: Zone, svc: ServiceRecord, port_name: str, proto: str | None
                 ) -> tuple[list[Record], list[Record]]:
    fqdn = f"{svc.name}.{svc.namespace}.svc.{zone.domain}"
    answers, extra = [], []
    for pname, pproto, number in svc.ports:
        if not pname or (port_name and pname != port_name) or (proto and pproto != proto):
            continue
        owner = f"_{pname}._{pproto.lower()}.{fqdn}"
        if not svc.headless:
            answers.append(Record(owner, SRV, (0, 100, number, fqdn)))
            extra.append(Record(fqdn, A, svc.cluster_ip))
            continue
        targets = [(e, p) for e in svc.endpoints for n, p in e.ports if n == pname]
        for e, p in targets:
            target = f"{_host(e)}.{fqdn}"
            answers.append(Record(owner, SRV, (0, 100 // len(targets), p, target)))
            extra.append(Record(target, A, e.ip))
    return answers, extra


def _srv(zone: Zone, name: str, svc: ServiceRecord, port: str, proto: str,
         qtype: str) -> Answer:
    answers, extra = _srv_records(zone, svc, port, proto)
    if not answers:
        return NX
    if qtype not in (SRV, ANY):
        return NODATA
    return Answer(records=tuple(Record(name, SRV, r.data) for r in answers),
                  additional=tuple(extra))


def _srv_all(zone: Zone, name: str, svc: ServiceRecord) -> Answer:
    answers, extra = _srv_records(zone, svc, "", None)
    if not answers:
        return NODATA
    return Answer(records=tuple(Record(name, SRV, r.data) for r in answers),
                  additional=tuple(extra))


def _reverse(zone: Zone, name: str, qtype: str) -> Answer:
    parts = name[: -len(".in-addr.arpa")].split(".")
    if len(parts) != 4:
        return FORWARD
    ip = ".".join(reversed(parts))
    target = zone.ptr.get(ip)
    if target is None:
        return FORWARD
    if qtype not in (PTR, ANY):
        return NODATA
    return Answer(records=(Record(name, PTR, target),))
