"""Resource math: effective init/pod requests and limits (sidecar-aware), defaulting,
overhead, pod-level resources, QoS, pod and container cgroup values, oom_score_adj."""

from __future__ import annotations

import json

import pytest

from nsrun.core import resources as r
from nsrun.core.manifest import load_pods
from nsrun.core.spec import Pod

GI = 1024**3


def c(name: str, req: dict | None = None, lim: dict | None = None, **kw) -> dict:
    res = {}
    if req is not None:
        res["requests"] = req
    if lim is not None:
        res["limits"] = lim
    return {"name": name, "image": "busybox", "resources": res, **kw}


def sidecar(name: str, req: dict | None = None, lim: dict | None = None) -> dict:
    return c(name, req, lim, restartPolicy="Always")


def pod(containers: list[dict], inits: list[dict] | None = None, **spec) -> Pod:
    doc = {"metadata": {"name": "p"},
           "spec": {"containers": containers, "initContainers": inits or [], **spec}}
    return load_pods(json.dumps(doc))[0]


def strings(resources: dict) -> dict:
    return {k: str(v) for k, v in resources.items()}


# ---------------------------------------------------------------- the document's rules

EFFECTIVE = [
    # (id, inits, apps, effective init requests, app sum, pod effective requests)
    ("highest init request is the effective init request",
     [c("i1", {"cpu": "1"}), c("i2", {"cpu": "2"}), c("i3", {"cpu": "500m"})],
     [c("a", {"cpu": "500m"})], {"cpu": "2"}, {"cpu": "500m"}, {"cpu": "2"}),
    ("app sum wins when higher",
     [c("i1", {"cpu": "1"})], [c("a", {"cpu": "800m"}), c("b", {"cpu": "800m"})],
     {"cpu": "1"}, {"cpu": "1600m"}, {"cpu": "1600m"}),
    ("per resource, independently",
     [c("i1", {"cpu": "2", "memory": "64Mi"})], [c("a", {"cpu": "1", "memory": "1Gi"})],
     {"cpu": "2", "memory": "64Mi"}, {"cpu": "1", "memory": "1Gi"},
     {"cpu": "2", "memory": "1Gi"}),
    ("Kubernetes' sidecar worked example",
     [c("init1", {"cpu": "1"}), sidecar("s", {"cpu": "500m"}), c("init2", {"cpu": "1"})],
     [c("app", {"cpu": "1"})], {"cpu": "1500m"}, {"cpu": "1500m"}, {"cpu": "1500m"}),
    ("a sidecar after the init containers only adds to the steady state",
     [c("init1", {"cpu": "1"}), sidecar("s", {"cpu": "500m"})],
     [c("app", {"cpu": "1"})], {"cpu": "1"}, {"cpu": "1500m"}, {"cpu": "1500m"}),
    ("sidecars accumulate",
     [sidecar("s1", {"memory": "100Mi"}), sidecar("s2", {"memory": "100Mi"}),
      c("init", {"memory": "100Mi"})],
     [c("app", {"memory": "50Mi"})], {"memory": "300Mi"}, {"memory": "250Mi"},
     {"memory": "300Mi"}),
    ("no init containers", [], [c("a", {"cpu": "100m"}), c("b", {"cpu": "200m"})],
     {}, {"cpu": "300m"}, {"cpu": "300m"}),
    ("requests default from limits",
     [c("i", None, {"cpu": "3"})], [c("a", None, {"memory": "1Gi"})],
     {"cpu": "3"}, {"memory": "1Gi"}, {"cpu": "3", "memory": "1Gi"}),
]


@pytest.mark.parametrize("inits,apps,init_eff,app_sum,effective",
                         [e[1:] for e in EFFECTIVE], ids=[e[0] for e in EFFECTIVE])
def test_effective_requests(inits, apps, init_eff, app_sum, effective):
    res = r.compute(pod(apps, inits))
    assert strings(res.effective_init_requests) == init_eff
    assert strings(res.app_sum_requests) == app_sum
    assert strings(res.effective_requests) == effective


def test_effective_limits_follow_the_same_rules():
    res = r.compute(pod([c("app", None, {"cpu": "1", "memory": "1Gi"})],
                        [c("i", None, {"cpu": "2", "memory": "128Mi"}),
                         sidecar("s", None, {"cpu": "500m", "memory": "256Mi"})]))
    assert strings(res.effective_init_limits) == {"cpu": "2", "memory": "256Mi"}
    assert strings(res.app_sum_limits) == {"cpu": "1500m", "memory": "1280Mi"}
    assert strings(res.effective_limits) == {"cpu": "2", "memory": "1280Mi"}


def test_a_container_without_a_limit_adds_nothing_to_the_limit_sum():
    res = r.compute(pod([c("a", None, {"memory": "1Gi"}), c("b", {"memory": "2Gi"})]))
    assert strings(res.effective_limits) == {"memory": "1Gi"}
    assert strings(res.effective_requests) == {"memory": "3Gi"}


def test_overhead_is_added_to_requests_and_to_existing_limits():
    res = r.compute(pod([c("a", {"cpu": "1"}, {"memory": "1Gi"})],
                        overhead={"cpu": "250m", "memory": "120Mi"}))
    assert strings(res.effective_requests) == {"cpu": "1250m", "memory": "1144Mi"}
    assert strings(res.effective_limits) == {"memory": "1144Mi"}


def test_pod_level_resources_override_the_aggregate():
    res = r.compute(pod([c("a", {"cpu": "100m"}), c("b", {"cpu": "100m"})],
                        resources={"requests": {"cpu": "1"}, "limits": {"cpu": "2",
                                                                         "memory": "1Gi"}}))
    assert strings(res.effective_requests) == {"cpu": "1", "memory": "1Gi"}
    assert strings(res.effective_limits) == {"cpu": "2", "memory": "1Gi"}
    assert res.qos_class == r.BURSTABLE
    assert res.pod_cgroup == {"cpu.weight": "39", "cpu.max": "200000 100000",
                              "memory.max": str(GI)}
    # containers without their own limit get the pod-level one in their cgroup
    assert res.container_cgroup("a")["memory.max"] == str(GI)
    assert res.container_cgroup("a")["cpu.max"] == "200000 100000"


def test_defaulting_shows_in_the_per_container_values():
    res = r.compute(pod([c("a", {"cpu": "100m"}, {"cpu": "1", "memory": "64Mi"})]))
    a = res.container("a")
    assert strings(a.requests) == {"cpu": "100m", "memory": "64Mi"}
    assert strings(a.limits) == {"cpu": "1", "memory": "64Mi"}


# ---------------------------------------------------------------- QoS

QOS = [
    ("nothing set", [c("a")], [], r.BEST_EFFORT),
    ("zero values are ignored", [c("a", {"cpu": "0"}, {"memory": "0"})], [], r.BEST_EFFORT),
    ("limits only: requests default to them", [c("a", None, {"cpu": "1", "memory": "1Gi"})], [],
     r.GUARANTEED),
    ("equal requests and limits", [c("a", {"cpu": "1", "memory": "1Gi"},
                                     {"cpu": "1", "memory": "1Gi"})], [], r.GUARANTEED),
    ("request below limit", [c("a", {"cpu": "500m", "memory": "1Gi"},
                               {"cpu": "1", "memory": "1Gi"})], [], r.BURSTABLE),
    ("cpu only", [c("a", None, {"cpu": "1"})], [], r.BURSTABLE),
    ("requests only", [c("a", {"memory": "1Gi"})], [], r.BURSTABLE),
    ("guaranteed and best-effort mix", [c("a", None, {"cpu": "1", "memory": "1Gi"}), c("b")],
     [], r.BURSTABLE),
    ("init container without limits breaks Guaranteed",
     [c("a", None, {"cpu": "1", "memory": "1Gi"})], [c("i")], r.BURSTABLE),
    ("init container with equal values keeps Guaranteed",
     [c("a", None, {"cpu": "1", "memory": "1Gi"})],
     [c("i", None, {"cpu": "2", "memory": "2Gi"})], r.GUARANTEED),
    ("sidecar counts too", [c("a", None, {"cpu": "1", "memory": "1Gi"})],
     [sidecar("s", {"cpu": "100m"}, {"cpu": "1", "memory": "1Gi"})], r.BURSTABLE),
    ("only an init container sets something", [c("a")], [c("i", {"cpu": "1"})], r.BURSTABLE),
    ("ephemeral-storage does not count", [c("a", {"ephemeral-storage": "1Gi"})], [],
     r.BEST_EFFORT),
]


@pytest.mark.parametrize("apps,inits,expected", [q[1:] for q in QOS], ids=[q[0] for q in QOS])
def test_qos_class(apps, inits, expected):
    p = pod(apps, inits)
    assert r.qos_class(p) == expected
    assert r.compute(p).qos_class == expected


def test_pod_level_resources_decide_qos():
    p = pod([c("a")], resources={"limits": {"cpu": "1", "memory": "1Gi"}})
    assert r.qos_class(p) == r.GUARANTEED


# ---------------------------------------------------------------- cgroup numbers

WEIGHTS = [(0, 2, 1), (1, 2, 1), (100, 102, 4), (250, 256, 10), (500, 512, 20),
           (1000, 1024, 39), (2000, 2048, 79), (4000, 4096, 157), (256000, 262144, 10000),
           (10**7, 262144, 10000)]


@pytest.mark.parametrize("milli,shares,weight", WEIGHTS)
def test_cpu_weight_from_shares_like_the_kubelet(milli, shares, weight):
    assert r.milli_cpu_to_shares(milli) == shares
    assert r.cpu_weight_linear(shares) == weight


@pytest.mark.parametrize("shares,weight", [(2, 1), (1024, 100), (512, 59), (256, 35),
                                           (2048, 174), (262144, 10000), (0, 0)])
def test_cpu_weight_like_the_oci_runtimes(shares, weight):
    assert r.cpu_weight_runtime(shares) == weight


@pytest.mark.parametrize("milli,quota", [(0, 0), (1, 1000), (5, 1000), (10, 1000),
                                         (250, 25000), (1000, 100000), (1500, 150000)])
def test_cpu_quota(milli, quota):
    assert r.milli_cpu_to_quota(milli) == quota


POD_CGROUPS = [
    ("best effort: shares 2 only", [c("a")], [], {"cpu.weight": "1"}),
    ("guaranteed: everything",
     [c("a", None, {"cpu": "250m", "memory": "64Mi"})], [],
     {"cpu.weight": "10", "cpu.max": "25000 100000", "memory.max": str(64 * 1024**2)}),
    ("guaranteed with init containers: the init-inclusive values",
     [c("a", None, {"cpu": "250m", "memory": "64Mi"})],
     [c("i", None, {"cpu": "1", "memory": "128Mi"})],
     {"cpu.weight": "39", "cpu.max": "100000 100000", "memory.max": str(128 * 1024**2)}),
    ("burstable, every container limited: cpu.max and memory.max",
     [c("a", {"cpu": "100m", "memory": "32Mi"}, {"cpu": "500m", "memory": "128Mi"})],
     [c("i", None, {"cpu": "200m", "memory": "64Mi"})],
     {"cpu.weight": "8", "cpu.max": "50000 100000", "memory.max": str(128 * 1024**2)}),
    ("burstable, an app container without a cpu limit: no cpu.max",
     [c("a", None, {"cpu": "1", "memory": "1Gi"}), c("b", None, {"memory": "1Gi"})], [],
     {"cpu.weight": "39", "memory.max": str(2 * GI)}),
    ("burstable, an init container without limits: neither",
     [c("a", {"cpu": "500m"}, {"cpu": "1", "memory": "1Gi"})], [c("i")],
     {"cpu.weight": "20"}),
    ("an init container after a limited sidecar counts as limited (cumulative use)",
     [c("a", {"cpu": "100m"}, {"cpu": "1", "memory": "1Gi"})],
     [sidecar("s", None, {"cpu": "500m", "memory": "64Mi"}), c("i")],
     {"cpu.weight": "24", "cpu.max": "150000 100000", "memory.max": str(GI + 64 * 1024**2)}),
    ("burstable with requests only", [c("a", {"cpu": "2"})], [], {"cpu.weight": "79"}),
    ("overhead is included",
     [c("a", None, {"cpu": "1", "memory": "1Gi"})], [],
     {"cpu.weight": "43", "cpu.max": "110000 100000", "memory.max": str(GI + 100 * 1024**2)}),
]


@pytest.mark.parametrize("apps,inits,expected", [p[1:] for p in POD_CGROUPS],
                         ids=[p[0] for p in POD_CGROUPS])
def test_pod_cgroup(apps, inits, expected, request):
    extra = {"overhead": {"cpu": "100m", "memory": "100Mi"}} \
        if "overhead" in request.node.callspec.id else {}
    assert r.compute(pod(apps, inits, **extra)).pod_cgroup == expected


def test_pids_max_comes_from_the_node_setting():
    p = pod([c("a")])
    assert r.compute(p, node_pids_limit=1024).pod_cgroup == {"cpu.weight": "1",
                                                             "pids.max": "1024"}
    assert "pids.max" not in r.compute(p, node_pids_limit=-1).pod_cgroup
    assert "pids.max" not in r.compute(p).pod_cgroup


def test_cfs_quota_disabled():
    p = pod([c("a", None, {"cpu": "1", "memory": "1Gi"})])
    assert r.compute(p, cpu_cfs_quota=False).pod_cgroup["cpu.max"] == "max 100000"


def test_container_leaf_values():
    res = r.compute(pod([c("a", {"cpu": "1"}, {"cpu": "2", "memory": "1Gi"}), c("b")]))
    assert res.container_cgroup("a") == {"cpu.weight": "100", "cpu.max": "200000 100000",
                                         "memory.max": str(GI)}
    assert res.container_cgroup("b") == {"cpu.weight": "1", "cpu.max": "max 100000"}
    with pytest.raises(KeyError):
        res.container_cgroup("nope")


# ---------------------------------------------------------------- oom_score_adj


def test_oom_score_adj_by_qos():
    guaranteed = r.compute(pod([c("a", None, {"cpu": "1", "memory": "1Gi"})]))
    assert guaranteed.oom_score_adj("a") == -997
    best_effort = r.compute(pod([c("a")]))
    assert best_effort.oom_score_adj("a") == 1000


@pytest.mark.parametrize("request_bytes,expected", [
    (0, 999),             # 1000 would tie with BestEffort
    (GI, 875),            # 1000 - 1000 * 1/8
    (4 * GI, 500),
    (8 * GI, 3),          # never below 1000 + (-997)
    (16 * GI, 3),
])
def test_burstable_oom_score_adj(request_bytes, expected):
    res = r.compute(pod([c("a", {"memory": str(request_bytes), "cpu": "1"}),
                         c("b", {"cpu": "1"})]), node_memory=8 * GI)
    assert res.oom_score_adj("a") == expected


def test_burstable_oom_score_adj_needs_the_node_memory():
    res = r.compute(pod([c("a", {"cpu": "1"})]))
    with pytest.raises(ValueError):
        res.oom_score_adj("a")


def test_a_sidecar_scores_no_higher_than_the_least_requesting_app():
    res = r.compute(pod([c("a", {"memory": "2Gi"}), c("b", {"memory": "4Gi"})],
                        [sidecar("s", {"memory": "64Mi"}), c("i")]), node_memory=8 * GI)
    assert res.oom_score_adj("a") == 750
    assert res.oom_score_adj("b") == 500
    assert res.oom_score_adj("s") == 750
    assert res.oom_score_adj("i") == 999


# ---------------------------------------------------------------- JSON


def test_to_json():
    res = r.compute(pod([c("app", {"cpu": "1"})],
                        [c("init1", {"cpu": "1"}), sidecar("s", {"cpu": "500m"}),
                         c("init2", {"cpu": "1"})]))
    doc = res.to_json()
    assert doc["effectiveRequests"] == {"cpu": "1500m"}
    assert doc["effectiveLimits"] == {}
    assert doc["qosClass"] == "Burstable"
    assert doc["cgroup"] == {"cpu.weight": "59"}
    assert [x["type"] for x in doc["containers"]] == ["init", "sidecar", "init", "container"]
    json.dumps(doc)


def test_the_same_values_as_cgroup_v1_files():
    res = r.compute(pod([c("a", {"cpu": "100m"}, {"cpu": "500m", "memory": "64Mi"}),
                         c("b", {"cpu": "200m"})]), node_pids_limit=64)
    # the kubelet's shares, not a weight turned back into shares: 300m -> 307
    assert res.pod_cgroup_v1 == {"cpu.shares": "307", "pids.max": "64"}
    assert res.container("a").cgroup_v1 == {
        "cpu.shares": "102", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000",
        "memory.limit_in_bytes": str(64 * 1024**2),
        "memory.memsw.limit_in_bytes": str(64 * 1024**2)}  # no swap, as the kubelet asks
    assert res.container("b").cgroup_v1 == {"cpu.shares": "204", "cpu.cfs_period_us": "100000",
                                            "cpu.cfs_quota_us": "-1"}
    files = res.cgroup_files()
    assert files["v1"].pod == res.pod_cgroup_v1 and files["v2"].pod == res.pod_cgroup
    assert files["v1"].leaves["a"] == res.container("a").cgroup_v1
    assert res.to_json()["cgroupV1"] == res.pod_cgroup_v1
    guaranteed = r.compute(pod([c("a", None, {"cpu": "1", "memory": "1Gi"})]))
    assert guaranteed.pod_cgroup_v1 == {"cpu.shares": "1024", "cpu.cfs_period_us": "100000",
                                        "cpu.cfs_quota_us": "100000",
                                        "memory.limit_in_bytes": str(GI)}
    assert r.compute(pod([c("a")])).pod_cgroup_v1 == {"cpu.shares": "2"}  # BestEffort
