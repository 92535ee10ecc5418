"""Pod resource math, QoS class and cgroup v2 and v1 values, as the kubelet computes them
(pure).

Owns, per resource (``cpu``, ``memory``, ``ephemeral-storage``…):

* defaulting: a container's missing request defaults to its limit; pod-level requests default
  to the containers' aggregate, else to the pod-level limit (API-server defaulting);
* the effective init request/limit, sidecar-aware (KEP-753): init container *i* uses its own
  value plus every sidecar declared before it; a sidecar uses the running sidecar sum; the
  highest use is the effective init value (component-helpers ``aggregateContainerResourcesByFn``);
* the pod's effective request/limit: the higher of the steady sum (app containers + sidecars)
  and the effective init value, overridden by pod-level ``spec.resources`` for cpu/memory,
  plus ``spec.overhead`` (on limits only where a limit exists);
* the QoS class (``ComputePodQOS``), the pod cgroup (``ResourceConfigForPod``): ``cpu.weight``
  from shares with the kubelet's linear formula, ``cpu.max``, ``memory.max``, ``pids.max`` from
  the node setting; per-container leaf values (the OCI runtime's shares-to-weight formula) and
  ``oom_score_adj`` (``pkg/kubelet/qos/policy.go``);
* the same values as cgroup v1 files (``cpu.shares``, ``cpu.cfs_period_us``/
  ``cpu.cfs_quota_us``, ``memory.limit_in_bytes``, ``pids.max``; containers also get
  ``memory.memsw.limit_in_bytes`` equal to their limit: no swap, as the kubelet asks on v1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from nsrun.core.cgroupvalues import (  # noqa: F401 - part of this module's interface
    CPU_MAX,
    CPU_WEIGHT,
    MEMORY_MAX,
    MIN_SHARES,
    PIDS_MAX,
    CgroupFiles,
    Limits,
    cpu_max,
    cpu_weight_linear,
    cpu_weight_runtime,
    milli_cpu_to_quota,
    milli_cpu_to_shares,
)
from nsrun.core.quantity import Quantity, QuantityError, parse_json_quantity
from nsrun.core.spec import Container, Pod, is_sidecar
from nsrun.errors import Problem, SpecError

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
HUGEPAGES_PREFIX = "hugepages-"
QOS_RESOURCES = (CPU, MEMORY)

GUARANTEED = "Guaranteed"
BURSTABLE = "Burstable"
BEST_EFFORT = "BestEffort"

GUARANTEED_OOM_SCORE_ADJ = -997
BEST_EFFORT_OOM_SCORE_ADJ = 1000

ResourceList = dict[str, Quantity]


# ---------------------------------------------------------------- per container


def parse_list(raw: dict[str, Any] | None, path: str = "") -> ResourceList:
    """A manifest resource map as Quantities; ``SpecError`` names a bad value."""
    out: ResourceList = {}
    for name, value in (raw or {}).items():
        try:
            out[name] = parse_json_quantity(value)
        except QuantityError as err:
            where = f"{path}[{name}]" if path else name
            raise SpecError([Problem(where, "Invalid value", f"{_show(value)}: {err}")]) from None
    return out


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def container_limits(c: Container) -> ResourceList:
    return parse_list(c.resources.limits if c.resources else None)


def container_requests(c: Container) -> ResourceList:
    """Requests after defaulting: a resource with a limit but no request requests the limit."""
    requests = parse_list(c.resources.requests if c.resources else None)
    for name, limit in container_limits(c).items():
        requests.setdefault(name, limit)
    return requests


def pod_level(pod: Pod, which: str) -> ResourceList:
    """``spec.resources.<which>`` restricted to what pod-level resources support."""
    res = pod.spec.resources
    raw = getattr(res, which) if res is not None else None
    return {k: v for k, v in parse_list(raw, f"spec.resources.{which}").items()
            if is_pod_level_resource(k)}


def is_pod_level_resource(name: str) -> bool:
    return name in QOS_RESOURCES or name.startswith(HUGEPAGES_PREFIX)


def pod_level_set(pod: Pod) -> bool:
    """Kubernetes' ``IsPodLevelResourcesSet``."""
    return bool(pod_level(pod, "requests") or pod_level(pod, "limits"))


# ---------------------------------------------------------------- defaulting


def default_requests(pod: Pod) -> None:
    """API-server defaulting, in place: container requests from limits, then pod-level
    requests (``defaultPodRequests``). Values that do not parse are left for validation."""
    for c in pod.spec.init_containers + pod.spec.containers:
        res = c.resources
        if res is not None and res.limits:
            requests = dict(res.requests or {})
            for name, value in res.limits.items():
                requests.setdefault(name, value)
            res.requests = requests
    try:
        _default_pod_requests(pod)
    except SpecError:
        pass


def _default_pod_requests(pod: Pod) -> None:
    res = pod.spec.resources
    if res is None or not res.limits:
        return
    requests = dict(res.requests or {})
    for name, value in aggregate(pod, container_requests).total.items():
        if is_pod_level_resource(name) and not name.startswith(HUGEPAGES_PREFIX):
            requests.setdefault(name, str(value))
    for name, value in res.limits.items():
        if is_pod_level_resource(name):
            requests.setdefault(name, value)
    if requests:
        res.requests = requests


# ---------------------------------------------------------------- aggregation


class Aggregate(msgspec.Struct):
    """One resource kind summed over a pod's containers, KEP-753 style.

    ``steady``: app containers + sidecars; ``init_peak``: the highest init-time use;
    ``total``: the higher of the two per resource; ``uses``: what each container contributes
    (app containers: their own list; init containers: their use, sidecars before included)."""

    steady: ResourceList = msgspec.field(default_factory=dict)
    init_peak: ResourceList = msgspec.field(default_factory=dict)
    total: ResourceList = msgspec.field(default_factory=dict)
    uses: list[ResourceList] = msgspec.field(default_factory=list)


def aggregate(pod: Pod, per_container: Callable[[Container], ResourceList]) -> Aggregate:
    agg = Aggregate()
    for c in pod.spec.containers:
        own = per_container(c)
        agg.uses.append(own)
        add_into(agg.steady, own)
    sidecars: ResourceList = {}
    for c in pod.spec.init_containers:
        own = per_container(c)
        if is_sidecar(c):
            add_into(agg.steady, own)
            add_into(sidecars, own)
            use = dict(sidecars)
        else:
            use = add_into(dict(own), sidecars)
        agg.uses.append(use)
        max_into(agg.init_peak, use)
    agg.total = max_into(dict(agg.steady), agg.init_peak)
    return agg


def add_into(target: ResourceList, other: ResourceList) -> ResourceList:
    for name, q in other.items():
        target[name] = target[name] + q if name in target else q
    return target


def max_into(target: ResourceList, other: ResourceList) -> ResourceList:
    for name, q in other.items():
        if name not in target or q > target[name]:
            target[name] = q
    return target


def pod_requests(pod: Pod) -> ResourceList:
    """Kubernetes' ``PodRequests``: aggregate, pod-level override, plus overhead."""
    reqs = dict(aggregate(pod, container_requests).total)
    reqs.update(pod_level(pod, "requests"))
    return add_into(reqs, overhead(pod))


def pod_limits(pod: Pod) -> ResourceList:
    """Kubernetes' ``PodLimits``: aggregate, pod-level override, overhead on non-zero limits."""
    limits = dict(aggregate(pod, container_limits).total)
    limits.update(pod_level(pod, "limits"))
    for name, q in overhead(pod).items():
        if name in limits and not limits[name].is_zero():
            limits[name] = limits[name] + q
    return limits


def overhead(pod: Pod) -> ResourceList:
    return parse_list(pod.spec.overhead, "spec.overhead")


# ---------------------------------------------------------------- QoS


def qos_class(pod: Pod) -> str:
    """Kubernetes' ``ComputePodQOS`` over cpu and memory, init containers included."""
    if pod_level_set(pod):
        lists = [(pod_level(pod, "requests"), pod_level(pod, "limits"))]
    else:
        everyone = pod.spec.containers + pod.spec.init_containers
        lists = [(container_requests(c), container_limits(c)) for c in everyone]
    requests: ResourceList = {}
    limits: ResourceList = {}
    guaranteed = True
    for reqs, lims in lists:
        add_into(requests, _positive_qos(reqs))
        found = _positive_qos(lims)
        add_into(limits, found)
        guaranteed = guaranteed and set(QOS_RESOURCES) <= set(found)
    return _qos_from_sums(requests, limits, guaranteed)


def _positive_qos(resources: ResourceList) -> ResourceList:
    return {k: v for k, v in resources.items() if k in QOS_RESOURCES and v.sign() > 0}


def _qos_from_sums(requests: ResourceList, limits: ResourceList, guaranteed: bool) -> str:
    if not requests and not limits:
        return BEST_EFFORT
    if guaranteed and all(limits.get(k) == v for k, v in requests.items()) \
            and len(requests) == len(limits):
        return GUARANTEED
    return BURSTABLE


# ---------------------------------------------------------------- the result


class ContainerResources(msgspec.Struct, frozen=True):
    """One container's defaulted requests/limits, leaf cgroup values and oom_score_adj."""

    name: str
    kind: str
    requests: ResourceList
    limits: ResourceList
    cgroup: dict[str, str]
    oom_score_adj: int | None
    cgroup_v1: dict[str, str] = msgspec.field(default_factory=dict)


class PodResources(msgspec.Struct, frozen=True):
    """Everything ``compute`` found; cgroup maps are file name -> value to write."""

    containers: tuple[ContainerResources, ...]
    effective_init_requests: ResourceList
    effective_init_limits: ResourceList
    app_sum_requests: ResourceList
    app_sum_limits: ResourceList
    pod_level_requests: ResourceList
    pod_level_limits: ResourceList
    overhead: ResourceList
    effective_requests: ResourceList
    effective_limits: ResourceList
    qos_class: str
    pod_cgroup: dict[str, str]
    node_memory: int | None = None
    pod_cgroup_v1: dict[str, str] = msgspec.field(default_factory=dict)

    def cgroup_files(self) -> dict[str, CgroupFiles]:
        """Driver name (``v2``, ``v1``) -> the files it writes for this pod."""
        return {"v2": CgroupFiles(dict(self.pod_cgroup),
                                  {c.name: dict(c.cgroup) for c in self.containers}),
                "v1": CgroupFiles(dict(self.pod_cgroup_v1),
                                  {c.name: dict(c.cgroup_v1) for c in self.containers})}

    def container(self, name: str) -> ContainerResources:
        for c in self.containers:
            if c.name == name:
                return c
        raise KeyError(name)

    def container_cgroup(self, name: str) -> dict[str, str]:
        return dict(self.container(name).cgroup)

    def oom_score_adj(self, name: str) -> int:
        """The container's ``oom_score_adj``; a Burstable pod needs ``node_memory``."""
        value = self.container(name).oom_score_adj
        if value is None:
            raise ValueError("a Burstable pod's oom_score_adj needs the node memory capacity")
        return value

    def to_json(self) -> dict[str, Any]:
        return {
            "qosClass": self.qos_class,
            "effectiveRequests": _strings(self.effective_requests),
            "effectiveLimits": _strings(self.effective_limits),
            "effectiveInitRequests": _strings(self.effective_init_requests),
            "effectiveInitLimits": _strings(self.effective_init_limits),
            "appSumRequests": _strings(self.app_sum_requests),
            "appSumLimits": _strings(self.app_sum_limits),
            "podLevelRequests": _strings(self.pod_level_requests),
            "podLevelLimits": _strings(self.pod_level_limits),
            "overhead": _strings(self.overhead),
            "cgroup": dict(self.pod_cgroup),
            "cgroupV1": dict(self.pod_cgroup_v1),
            "containers": [_container_json(c) for c in self.containers],
        }


def _strings(resources: ResourceList) -> dict[str, str]:
    return {k: str(v) for k, v in sorted(resources.items())}


def _container_json(c: ContainerResources) -> dict[str, Any]:
    out = {"name": c.name, "type": c.kind, "requests": _strings(c.requests),
           "limits": _strings(c.limits), "cgroup": dict(c.cgroup),
           "cgroupV1": dict(c.cgroup_v1)}
    if c.oom_score_adj is not None:
        out["oomScoreAdj"] = c.oom_score_adj
    return out


def compute(pod: Pod, *, node_pids_limit: int | None = None, node_memory: int | None = None,
            cpu_cfs_quota: bool = True) -> PodResources:
    """Everything about the pod's resources. ``node_pids_limit`` is the kubelet's
    ``podPidsLimit`` (None or <= 0: no ``pids.max``); ``node_memory`` the node's memory
    capacity in bytes (needed for Burstable ``oom_score_adj``); ``cpu_cfs_quota=False`` is the
    kubelet's ``--cpu-cfs-quota=false`` (``cpu.max`` = ``max``)."""
    reqs, lims = aggregate(pod, container_requests), aggregate(pod, container_limits)
    qos = qos_class(pod)
    limits = pod_limits_of(pod, qos, lims, node_pids_limit, cpu_cfs_quota)
    return PodResources(
        containers=tuple(_containers(pod, qos, node_memory, cpu_cfs_quota)),
        effective_init_requests=reqs.init_peak, effective_init_limits=lims.init_peak,
        app_sum_requests=reqs.steady, app_sum_limits=lims.steady,
        pod_level_requests=pod_level(pod, "requests"), pod_level_limits=pod_level(pod, "limits"),
        overhead=overhead(pod), effective_requests=pod_requests(pod),
        effective_limits=pod_limits(pod), qos_class=qos,
        pod_cgroup=limits.v2(cpu_weight_linear), pod_cgroup_v1=limits.v1(),
        node_memory=node_memory)


def pod_cgroup(pod: Pod, qos: str, lims: Aggregate, node_pids_limit: int | None,
               cpu_cfs_quota: bool = True) -> dict[str, str]:
    """Kubernetes' ``ResourceConfigForPod`` as cgroup v2 files."""
    return pod_limits_of(pod, qos, lims, node_pids_limit, cpu_cfs_quota).v2(cpu_weight_linear)


def pod_limits_of(pod: Pod, qos: str, lims: Aggregate, node_pids_limit: int | None,
                  cpu_cfs_quota: bool = True) -> Limits:
    """Kubernetes' ``ResourceConfigForPod``."""
    pids = node_pids_limit if node_pids_limit is not None and node_pids_limit > 0 else None
    if qos == BEST_EFFORT:
        return Limits(MIN_SHARES, pids=pids)
    reqs, limits = pod_requests(pod), pod_limits(pod)
    shares = milli_cpu_to_shares(_milli(reqs.get(CPU)))
    quota = milli_cpu_to_quota(_milli(limits.get(CPU))) if cpu_cfs_quota else -1
    memory = limits[MEMORY].value() if MEMORY in limits else 0
    cpu_declared, mem_declared = _limits_declared(pod, lims)
    return Limits(shares, quota=quota if qos == GUARANTEED or cpu_declared else None,
                  memory=memory if (qos == GUARANTEED or mem_declared) and memory > 0
                  else None, pids=pids)


def _milli(q: Quantity | None) -> int:
    return q.milli_value() if q is not None else 0


def _limits_declared(pod: Pod, lims: Aggregate) -> tuple[bool, bool]:
    """Whether every container (init containers by their cumulative use) sets a non-zero
    cpu / memory limit; a pod-level limit counts as declared."""
    pod_lims = pod_level(pod, "limits")
    cpu = all(_nonzero(u.get(CPU)) for u in lims.uses) or _nonzero(pod_lims.get(CPU))
    mem = all(_nonzero(u.get(MEMORY)) for u in lims.uses) or _nonzero(pod_lims.get(MEMORY))
    return cpu, mem


def _nonzero(q: Quantity | None) -> bool:
    return q is not None and not q.is_zero()


# ---------------------------------------------------------------- per-container leaves


def _containers(pod: Pod, qos: str, node_memory: int | None, cpu_cfs_quota: bool
                ) -> Iterable[ContainerResources]:
    kinds = [("sidecar" if is_sidecar(c) else "init", c) for c in pod.spec.init_containers]
    kinds += [("container", c) for c in pod.spec.containers]
    for kind, c in kinds:
        yield ContainerResources(
            name=c.name, kind=kind, requests=container_requests(c), limits=container_limits(c),
            cgroup=leaf_cgroup(pod, c, cpu_cfs_quota),
            oom_score_adj=oom_score_adj(pod, c, qos, node_memory, sidecar=kind == "sidecar"),
            cgroup_v1=leaf_limits(pod, c, cpu_cfs_quota).v1(no_swap=True))


def leaf_cgroup(pod: Pod, c: Container, cpu_cfs_quota: bool = True) -> dict[str, str]:
    """The values the OCI runtime writes in the container's cgroup, as cgroup v2 files."""
    return leaf_limits(pod, c, cpu_cfs_quota).v2(cpu_weight_runtime)


def leaf_limits(pod: Pod, c: Container, cpu_cfs_quota: bool = True) -> Limits:
    """The values the OCI runtime writes in the container's cgroup (kubelet's
    ``calculateLinuxResources``; containers without a limit get the pod-level one)."""
    requests, limits = container_requests(c), container_limits(c)
    pod_lims = pod_level(pod, "limits")
    cpu_limit = limits.get(CPU) or pod_lims.get(CPU)
    memory_limit = limits.get(MEMORY) or pod_lims.get(MEMORY)
    shares = milli_cpu_to_shares(_milli(requests.get(CPU)))
    quota = milli_cpu_to_quota(_milli(cpu_limit)) if cpu_cfs_quota else -1
    memory = memory_limit.value() if memory_limit is not None else 0
    return Limits(shares, quota=quota, memory=memory if memory > 0 else None)


def oom_score_adj(pod: Pod, c: Container, qos: str, node_memory: int | None, *,
                  sidecar: bool = False) -> int | None:
    """``GetContainerOOMScoreAdjust``; None for a Burstable pod when the node memory is
    unknown. A sidecar scores no higher than the pod's least-requesting app container."""
    if qos == GUARANTEED:
        return GUARANTEED_OOM_SCORE_ADJ
    if qos == BEST_EFFORT:
        return BEST_EFFORT_OOM_SCORE_ADJ
    if not node_memory or node_memory <= 0:
        return None
    spare = _spare_pod_memory_per_container(pod)
    adj = 1000 - 1000 * (_memory_request(c) + spare) // node_memory
    if sidecar and pod.spec.containers:
        least = min(_memory_request(app) for app in pod.spec.containers) + spare
        adj = min(adj, 1000 - 1000 * least // node_memory)
    if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ:
        return 1000 + GUARANTEED_OOM_SCORE_ADJ
    return adj - 1 if adj == BEST_EFFORT_OOM_SCORE_ADJ else adj


def _memory_request(c: Container) -> int:
    q = container_requests(c).get(MEMORY)
    return q.value() if q is not None else 0


def _spare_pod_memory_per_container(pod: Pod) -> int:
    """Pod-level memory request not claimed by containers, shared equally (KEP-2837)."""
    pod_req = pod_level(pod, "requests").get(MEMORY)
    if pod_req is None or pod_req.is_zero():
        return 0
    claimed = aggregate(pod, container_requests).total.get(MEMORY)
    spare = pod_req.value() - (claimed.value() if claimed else 0)
    count = len(pod.spec.containers) + len(pod.spec.init_containers)
    if not count:
        return 0
    share = abs(spare) // count
    return share if spare >= 0 else -share
