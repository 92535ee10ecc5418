"""``validate`` ⇔ ``run`` (issue 9 item 7): run refuses exactly the manifests validate
refuses, with the same words, and never fails on one validate accepted.

Generated pods (hypothesis, a few hundred) mix good values with what once got through
validate and broke run: lone surrogates and NUL bytes in any string or path, unknown
capability names. ``validate``'s verdict is the one its verb computes (``modelcli``); run's
is its admission (``lifecycle.load_one_pod``) and then every step run takes with the pod's
values before a process starts: the resource math, each container's bundle and security
context (``launcher.check_pod``), pod.json, the first status, and the hostPath lookups. A
host that cannot give what a valid pod asks (a capability nsrun lacks) is not a refusal of
the manifest: it is a ``PreflightError`` (exit 3), allowed on both sides.
"""

from __future__ import annotations

import json
import os
import time

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nsrun import modelcli
from nsrun.bundle.images import ImageStore
from nsrun.core import resources
from nsrun.core.observed import Observed
from nsrun.core.status import derive_status
from nsrun.errors import NsrunError, PreflightError, SpecError
from nsrun.runtime import launcher, lifecycle

GOOD_CAPS = ["NET_ADMIN", "CAP_KILL", "chown", "ALL", "all", "SYS_RESOURCE"]
words = st.one_of(st.sampled_from(["a", "web", "x-1", "", "é", "$(A)"]), st.text(max_size=4))


@st.composite
def containers(draw, i: int) -> dict:
    c = {"name": f"c{i}", "image": "busybox", "command": draw(st.lists(words, max_size=2))}
    c.update(draw(st.fixed_dictionaries({}, optional={
        "env": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["A", "B"]),
                                               "value": words}), max_size=2, unique_by=str),
        "workingDir": st.sampled_from(["/", "/tmp"]),
        "securityContext": st.fixed_dictionaries({"capabilities": st.fixed_dictionaries(
            {}, optional={"add": st.lists(st.sampled_from(GOOD_CAPS), max_size=2),
                          "drop": st.lists(st.sampled_from(GOOD_CAPS), max_size=2)})}),
        "volumeMounts": st.just([{"name": "host", "mountPath": "/host"}])})))
    return c


# What once got through validate and broke run, and a plainly invalid value for contrast.
FAULTS = ["\ud800", "x\udfffy", "\x00", "a\x00b"]
BAD_CAPS = ["FLY", "CAP_", "", "NET_ADMIN\x00", "\ud800", "CAP_CAP_KILL"]


def strings(node, where=()):
    """(path, value) of every string value of plain data."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, (*where, k))
    elif isinstance(node, list):
        for k, v in enumerate(node):
            yield from strings(v, (*where, k))
    elif isinstance(node, str):
        yield where, node


def put(doc, where, value) -> None:
    for key in where[:-1]:
        doc = doc[key]
    doc[where[-1]] = value


@st.composite
def pods(draw) -> dict:
    cs = [draw(containers(i)) for i in range(draw(st.integers(1, 3)))]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "labels": draw(st.dictionaries(
               st.sampled_from(["a", "b"]), st.sampled_from(["1", "x"]), max_size=2))},
           "spec": {"restartPolicy": "Never", "containers": cs,
                    "volumes": [{"name": "host", "hostPath": {"path": "/tmp"}}]}}
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        kind = draw(st.sampled_from(["string", "string", "capability", "name"]))
        if kind == "string":
            where, value = draw(st.sampled_from(list(strings(pod))))
            fault = draw(st.sampled_from(FAULTS))
            put(pod, where, draw(st.sampled_from([fault, value + fault, fault + value])))
        elif kind == "capability":
            c = draw(st.sampled_from(cs))
            caps = c.setdefault("securityContext", {}).setdefault("capabilities", {})
            caps.setdefault(draw(st.sampled_from(["add", "drop"])), []).append(
                draw(st.sampled_from(BAD_CAPS)))
        else:
            draw(st.sampled_from(cs))["name"] = "C!"
    return pod


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ImageStore:
    root = tmp_path_factory.mktemp("images")
    bundle = root / "busybox" / "latest"
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps({"process": {"args": ["sh"]}}))
    return ImageStore(root)


def validate_verdict(path: str) -> str:
    """What ``nsrun validate FILE`` says: "ok", or the problem text (exit 2)."""
    try:
        modelcli.load_valid(path, False)
    except SpecError as err:
        return str(err)
    return "ok"


def run_verdict(path: str, store: ImageStore) -> str:
    """What ``nsrun run FILE`` says before its first process: "ok", or the problem text.
    Any other exception (an internal error, exit 125) fails the test."""
    try:
        pod = lifecycle.load_one_pod(path, False)
    except SpecError as err:
        return str(err)
    resources.compute(pod, node_memory=2**33, node_pids_limit=100).cgroup_files()
    try:
        launcher.check_pod(pod, store)
    except PreflightError:
        pass  # the host cannot give it: not the manifest's fault (exit 3)
    msgspec.json.encode(pod)  # pod.json
    msgspec.json.encode(derive_status(pod, Observed(time.time()), time.time()))  # status.json
    for volume in pod.spec.volumes:
        os.path.lexists(volume.host_path.path)  # the sandbox looks it up
    return "ok"


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(pods())
def test_validate_accepts_exactly_what_run_accepts(tmp_path_factory, store, pod):
    path = tmp_path_factory.mktemp("m") / "pod.json"
    path.write_text(json.dumps(pod))  # ASCII: surrogates and NULs as JSON escapes
    try:
        verdicts = validate_verdict(str(path)), run_verdict(str(path), store)
    except NsrunError as err:  # any other refusal is a disagreement, not a clean exit
        raise AssertionError(f"{type(err).__name__}: {err}") from None
    event("accepted" if verdicts[0] == "ok" else "refused")
    assert verdicts[0] == verdicts[1]
