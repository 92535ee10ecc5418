"""``nsrun validate``, ``resources`` and ``convert`` through a tiny argparse front."""

from __future__ import annotations

import argparse
import json

import pytest
import yaml

from nsrun import modelcli
from nsrun.core import legacy

GOOD = """\
apiVersion: v1
kind: Pod
metadata:
  name: myapp-pod
spec:
  initContainers:
  - name: init-myservice
    image: busybox
    resources: {limits: {cpu: 200m, memory: 64Mi}}
  containers:
  - name: myapp-container
    image: busybox
    resources: {requests: {cpu: 100m, memory: 32Mi}, limits: {cpu: 500m, memory: 128Mi}}
"""
BAD = """\
metadata: {name: myapp-pod}
spec:
  initContainers:
  - {image: busybox}
  containers:
  - {name: a, image: ""}
"""
LEGACY = yaml.safe_dump({"metadata": {"name": "old", "annotations": {
    legacy.BETA: json.dumps([{"name": "init", "image": "busybox"}])}},
    "spec": {"containers": [{"name": "app", "image": "busybox"}]}})


def run(capsys, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="nsrun")
    modelcli.register(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path):
    def write(name: str, text: str | bytes) -> str:
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)
    return write


def test_validate_a_valid_file(capsys, files):
    code, out, err = run(capsys, "validate", files("good.yaml", GOOD))
    assert code == 0
    assert 'pod "myapp-pod" is valid' in out
    assert err == ""


def test_validate_reports_every_problem(capsys, files):
    path = files("bad.yaml", BAD)
    code, out, err = run(capsys, "validate", path)
    assert code == 2
    assert err == (f'nsrun: {path}: The Pod "myapp-pod" is invalid:\n'
                   "* spec.containers[0].image: Required value\n"
                   "* spec.initContainers[0].name: Required value\n")


def test_validate_many_files_keeps_going(capsys, files):
    code, out, err = run(capsys, "validate", files("bad.yaml", BAD), files("good.yaml", GOOD))
    assert code == 2
    assert "is valid" in out and "is invalid" in err


def test_validate_json(capsys, files):
    path = files("bad.yaml", BAD)
    code, out, _ = run(capsys, "validate", "-o", "json", path)
    assert code == 2
    assert json.loads(out) == [
        {"file": path, "pod": "myapp-pod", "field": "spec.containers[0].image",
         "type": "Required value", "message": ""},
        {"file": path, "pod": "myapp-pod", "field": "spec.initContainers[0].name",
         "type": "Required value", "message": ""}]
    code, out, _ = run(capsys, "validate", "-o", "json", files("good.yaml", GOOD))
    assert (code, json.loads(out)) == (0, [])


def test_validate_json_for_structural_errors(capsys, files):
    path = files("typo.yaml", GOOD.replace("image: busybox", "imagee: busybox", 1))
    code, out, _ = run(capsys, "validate", "-o", "json", path)
    assert code == 2
    assert json.loads(out)[0]["field"] == "spec.initContainers[0].imagee"


def test_validate_legacy_annotations(capsys, files):
    path = files("old.yaml", LEGACY)
    code, _, err = run(capsys, "validate", path)
    assert code == 2 and "nsrun convert" in err
    code, out, err = run(capsys, "validate", "--legacy-annotations", path)
    assert code == 0 and "is valid" in out
    assert f"nsrun: warning: {path}: metadata.annotations[{legacy.BETA}]" in err


def test_scheduling_fields_warn(capsys, files):
    code, _, err = run(capsys, "validate", files("s.yaml", GOOD + "  nodeSelector: {a: b}\n"))
    assert code == 0
    assert "spec.nodeSelector: ignored: scheduling has no meaning on one host" in err


@pytest.mark.parametrize("content", [b"\x00\xff\xfe junk", b"[" * 10000, b"a: &a [*a]\n",
                                     b"spec: {containers: 5}"])
def test_bad_input_exits_2_with_one_clear_message(capsys, files, content):
    code, out, err = run(capsys, "validate", files("junk", content))
    assert code == 2
    assert err.startswith("nsrun: ") and "Traceback" not in err


def test_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert err == f"nsrun: {tmp_path / 'nope.yaml'}: No such file or directory\n"


def test_resources_table(capsys, files):
    code, out, err = run(capsys, "resources", files("good.yaml", GOOD), "--pod-max-pids", "512")
    assert code == 0, err
    assert 'Pod "myapp-pod"    QoS Class: Burstable' in out
    lines = out.splitlines()
    effective = next(line for line in lines if line.startswith("(pod effective)"))
    assert effective.split()[2:] == ["200m", "500m", "64Mi", "128Mi"]
    assert any(line.split() == ["pod", "cpu.max", "50000", "100000"] for line in lines)
    assert any(line.split() == ["pod", "memory.max", "134217728"] for line in lines)
    assert any(line.split() == ["pod", "pids.max", "512"] for line in lines)
    assert any(line.split()[:2] == ["init-myservice", "cpu.weight"] for line in lines)


def test_resources_json(capsys, files):
    code, out, _ = run(capsys, "resources", "-o", "json", files("good.yaml", GOOD))
    doc = json.loads(out)
    assert code == 0
    assert doc["effectiveRequests"] == {"cpu": "200m", "memory": "64Mi"}
    assert doc["effectiveLimits"] == {"cpu": "500m", "memory": "128Mi"}
    assert doc["qosClass"] == "Burstable"
    assert doc["cgroup"] == {"cpu.weight": "8", "cpu.max": "50000 100000",
                             "memory.max": "134217728"}


def test_resources_refuses_an_invalid_pod(capsys, files):
    code, out, err = run(capsys, "resources", files("bad.yaml", BAD))
    assert code == 2 and out == "" and "Required value" in err


def test_convert(capsys, files):
    code, out, err = run(capsys, "convert", files("old.yaml", LEGACY))
    assert code == 0, err
    doc = yaml.safe_load(out)
    assert doc["spec"]["initContainers"][0]["name"] == "init"
    assert "annotations" not in doc["metadata"]
    code, out, _ = run(capsys, "convert", "-o", "json", files("old.yaml", LEGACY))
    assert json.loads(out)["spec"]["initContainers"][0]["name"] == "init"


def test_convert_without_annotations_warns(capsys, files):
    code, out, err = run(capsys, "convert", files("good.yaml", GOOD))
    assert code == 0 and "no legacy init-container annotations" in err
    assert yaml.safe_load(out) == yaml.safe_load(GOOD)


def test_convert_bad_input(capsys, files):
    code, out, err = run(capsys, "convert", files("bad", "spec: ["))
    assert code == 2 and out == "" and "invalid YAML" in err


def test_node_memory(tmp_path):
    from nsrun.runtime import lifecycle

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16384 kB\nMemFree: 1 kB\n")
    assert lifecycle.node_memory(str(meminfo)) == 16384 * 1024
    assert lifecycle.node_memory(str(tmp_path / "none")) is None
