"""The pre-1.8 init-container annotations: rejected by default, honoured on request with the
1.6/1.7 precedence (beta > alpha > field), and rewritten by ``nsrun convert``."""

from __future__ import annotations

import json

import pytest
import yaml

from nsrun.core import convert, legacy
from nsrun.core.manifest import load_pods, load_pods_with_warnings
from nsrun.errors import SpecError

BETA, ALPHA = legacy.BETA, legacy.ALPHA


def containers(*names: str) -> str:
    return json.dumps([{"name": n, "image": "busybox", "command": ["true"]} for n in names])


def manifest(annotations: dict, init_field: list[str] | None = None) -> str:
    spec = {"containers": [{"name": "app", "image": "busybox"}]}
    if init_field is not None:
        spec["initContainers"] = [{"name": n, "image": "busybox"} for n in init_field]
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": "myapp-pod", "annotations": annotations},
                           "spec": spec})


def init_names(text: str) -> list[str]:
    return [c.name for c in load_pods(text, legacy_annotations=True)[0].spec.init_containers]


@pytest.mark.parametrize("key", [BETA, ALPHA])
def test_rejected_by_default_naming_convert_and_18(key):
    with pytest.raises(SpecError) as info:
        load_pods(manifest({key: containers("init-a")}), "pod.yaml")
    message = str(info.value)
    assert f"metadata.annotations[{key}]: Forbidden" in message
    assert "nsrun convert" in message and "Kubernetes 1.8" in message
    assert "--legacy-annotations" in message


PRECEDENCE = [
    ("beta alone", {BETA: containers("b")}, None, ["b"]),
    ("alpha alone", {ALPHA: containers("a")}, None, ["a"]),
    ("beta over alpha", {BETA: containers("b"), ALPHA: containers("a")}, None, ["b"]),
    ("beta over the field", {BETA: containers("b")}, ["f"], ["b"]),
    ("alpha over the field", {ALPHA: containers("a")}, ["f"], ["a"]),
    ("beta over alpha over the field", {BETA: containers("b1", "b2"),
                                        ALPHA: containers("a")}, ["f"], ["b1", "b2"]),
    ("an empty annotation empties the field", {BETA: "[]"}, ["f"], []),
    ("no annotation: the field", {"other": "x"}, ["f"], ["f"]),
]


@pytest.mark.parametrize("annotations,field,expected", [p[1:] for p in PRECEDENCE],
                         ids=[p[0] for p in PRECEDENCE])
def test_honoured_with_the_16_17_precedence(annotations, field, expected):
    assert init_names(manifest(annotations, field)) == expected


def test_honouring_warns_and_drops_the_keys():
    text = manifest({BETA: containers("b"), ALPHA: containers("a"),
                     legacy.BETA_STATUSES: "[]", "keep": "me"}, ["f"])
    pods, warnings = load_pods_with_warnings(text, legacy_annotations=True)
    assert pods[0].metadata.annotations == {"keep": "me"}
    assert [w.field for w in warnings] == [f"metadata.annotations[{BETA}]",
                                           f"metadata.annotations[{ALPHA}]"]
    assert "dropped in 1.8" in warnings[0].message
    assert "replace the non-empty spec.initContainers" in warnings[0].message
    assert "takes precedence" in warnings[1].message


def test_honoured_containers_are_checked_like_the_field():
    text = manifest({BETA: json.dumps([{"name": "x", "image": "b", "imagee": "typo"}])})
    with pytest.raises(SpecError, match=r'unknown field "spec.initContainers\[0\].imagee"'):
        load_pods(text, legacy_annotations=True)


@pytest.mark.parametrize("value,message", [
    ("not json", "invalid JSON"), ('{"name": "x"}', "must be a JSON array of containers"),
    ("[1, 2]", "must be a JSON array of containers")])
def test_a_bad_annotation(value, message):
    with pytest.raises(SpecError, match=message):
        load_pods(manifest({BETA: value}), legacy_annotations=True)


def test_status_annotations_alone_are_left_alone():
    pod = load_pods(manifest({legacy.BETA_STATUSES: "[]"}))[0]
    assert legacy.BETA_STATUSES in pod.metadata.annotations


# ---------------------------------------------------------------- nsrun convert


def test_convert_rewrites_the_manifest():
    text = manifest({BETA: containers("init-myservice", "init-mydb"),
                     ALPHA: containers("old"), "team": "a"}, ["f"])
    out, warnings = convert.convert_text(text, "pod.yaml")
    doc = yaml.safe_load(out)
    assert doc["metadata"]["annotations"] == {"team": "a"}
    assert [c["name"] for c in doc["spec"]["initContainers"]] == ["init-myservice",
                                                                   "init-mydb"]
    assert warnings
    pod = load_pods(out)[0]  # loads without --legacy-annotations
    assert [c.name for c in pod.spec.init_containers] == ["init-myservice", "init-mydb"]


def test_convert_removes_an_emptied_annotations_map_and_keeps_the_rest():
    out, _ = convert.convert_text(manifest({ALPHA: containers("a")}), "pod.yaml", "json")
    doc = json.loads(out)
    assert "annotations" not in doc["metadata"]
    assert doc["spec"]["containers"] == [{"name": "app", "image": "busybox"}]


def test_convert_many_documents():
    text = manifest({BETA: containers("a")}) + "---\n" + manifest({})
    out, _ = convert.convert_text(text)
    assert len([d for d in yaml.safe_load_all(out) if d]) == 2
    as_json = json.loads(convert.convert_text(text, output="json")[0])
    assert as_json["kind"] == "List" and len(as_json["items"]) == 2


def test_convert_without_annotations_changes_nothing():
    out, warnings = convert.convert_text(manifest({}, ["f"]))
    assert warnings == []
    assert yaml.safe_load(out) == yaml.safe_load(manifest({}, ["f"]))


def test_convert_refuses_bad_input():
    with pytest.raises(SpecError):
        convert.convert_text("spec: [", "x.yaml")
    with pytest.raises(SpecError, match="invalid JSON"):
        convert.convert_text(manifest({BETA: "nope"}))
