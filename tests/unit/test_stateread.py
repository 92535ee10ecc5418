"""Readers of corrupt state files (``report.stateread``, ``core.stateshape``): each corrupt
file is named once and read as what can still be read."""

from __future__ import annotations

import fcntl
import json
import os

import msgspec
import pytest

from nsrun.core import stateshape
from nsrun.core.manifest import load_pods
from nsrun.report import stateread
from nsrun.state import PodPaths

POD = load_pods("{metadata: {name: p}, spec: {containers: [{name: app, image: busybox}]}}")[0]
STATUS = {"phase": "Running", "startTime": "2026-12-04T10:00:00Z",
          "conditions": [{"type": "Ready", "status": "True"}],
          "containerStatuses": [{"name": "app", "ready": True, "restartCount": 2,
                                 "state": {"running": {"startedAt": "2026-12-04T10:00:01Z"}}}]}


@pytest.fixture
def paths(tmp_path) -> PodPaths:
    stateread._warned.clear()
    p = PodPaths(tmp_path / "p")
    p.dir.mkdir()
    p.manifest.write_bytes(msgspec.json.encode(POD))
    return p


def status_bytes(**changes) -> bytes:
    pod = {**msgspec.to_builtins(POD), "status": {**STATUS, **changes}}
    return json.dumps(pod).encode()


def test_a_good_status_is_read_as_written(paths):
    paths.status.write_bytes(status_bytes())
    assert stateread.status(paths)["status"] == STATUS


def test_a_missing_status_is_none(paths):
    assert stateread.status(paths) is None


@pytest.mark.parametrize("data, why", [
    (b'{"metadata": {"na', "truncated"),
    (b"\xff\xfe{}", "malformed"),
    (b"[1, 2]", "expected a JSON object, found list"),
    (b'{"metadata": {"name": "\\ud800"}}', "truncated"),  # msgspec refuses lone surrogates
    (status_bytes(containerStatuses=[{"name": "app", "restartCount": "2"}]),
     "Expected `int`, got `str` - at `status.containerStatuses[0].restartCount`"),
    (status_bytes(conditions={"type": "Ready"}), "at `status.conditions`"),
    (json.dumps({"spec": {"containers": 3}}).encode(), "at `spec.containers`"),
])
def test_a_corrupt_status_is_the_pod_unknown_and_named_once(paths, capsys, data, why):
    paths.status.write_bytes(data)
    for _ in range(2):
        pod = stateread.status(paths)
        assert pod["status"]["phase"] == "Unknown"
        assert pod["metadata"]["name"] == "p" and pod["spec"]["containers"][0]["name"] == "app"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{paths.status}: corrupt (" in err and why in err


def test_an_unknown_pod_without_a_manifest_keeps_its_name(paths, capsys):
    paths.status.write_bytes(b"junk")
    paths.manifest.write_bytes(b'{"spec": {"containers": "no"}}')
    pod = stateread.status(paths)
    assert pod["metadata"]["name"] == "p" and pod["status"]["phase"] == "Unknown"
    err = capsys.readouterr().err
    assert str(paths.status) in err and str(paths.manifest) in err


def test_an_unreadable_status_is_named(paths, capsys):
    paths.status.mkdir()
    assert stateread.status(paths)["status"]["phase"] == "Unknown"
    assert "Is a directory" in capsys.readouterr().err


def test_events_keep_their_good_lines(paths, capsys):
    good = {"type": "Normal", "reason": "Started", "message": "m", "time": 1.5}
    paths.events.write_bytes(b"\n".join([
        b"\xff", json.dumps(good).encode(), b'{"type": "Normal"}', b"",
        json.dumps({**good, "time": 1e20}).encode(), json.dumps({**good, "time": -1}).encode(),
        json.dumps({**good, "reason": 5}).encode(), b"[]"]))
    assert stateread.events(paths) == [good]
    assert f"{paths.events}: corrupt (6 unreadable line(s))" in capsys.readouterr().err


@pytest.mark.parametrize("text, want", [
    (b"5\n", 5.0), (b"0", 0.0), (b"junk", None), (b"-3", None), (b"nan", None),
    (b"inf", None), (b"\xff", None), (b"1e300", None)])
def test_grace_override(paths, text, want):
    paths.grace_override.write_bytes(text)
    assert stateread.grace_override(paths) == want


def test_cgroup_record_drops_lines_that_are_not_directories(paths, capsys):
    (paths.dir / "cgroup").write_bytes(b"/sys/fs/cgroup/a\nrelative\n/x/../y\n\xff/z\n/b\n")
    assert stateread.cgroup_record(paths) == ["/sys/fs/cgroup/a", "/b"]
    assert "3 line(s) not a cgroup directory" in capsys.readouterr().err


def test_record_of_the_wrong_type_is_none(paths, capsys):
    (paths.dir / "runtime.json").write_bytes(b'{"images": ["x"]}')
    assert stateread.record(paths.dir / "runtime.json", dict[str, str], "defaults") is None
    assert "runtime.json: corrupt" in capsys.readouterr().err


def test_the_lock_holder_is_found_whatever_the_pid_file_says(paths, capsys):
    fd = os.open(paths.lockfile, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        assert stateread.supervisor_pid(paths) is None  # nobody holds it
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert stateread.holds_lock(os.getpid(), paths.lockfile)
        assert not stateread.holds_lock(os.getppid(), paths.lockfile)
        for text in (f"{os.getpid()}\n", "junk", f"{os.getppid()}"):
            paths.pidfile.write_text(text)
            # held by this very process: supervisor_alive's own attempt cannot take it
            assert stateread.supervisor_pid(paths) == os.getpid()
    finally:
        os.close(fd)
    assert f"{paths.pidfile}: corrupt (not a pid)" in capsys.readouterr().err


def test_stateshape_names_the_field():
    with pytest.raises(stateshape.Corrupt, match=r"got `int` - at `metadata.labels\[...\]`"):
        stateshape.pod_object(b'{"metadata": {"labels": {"a": 1}}}')
    assert stateshape.event(b'{"type": "W", "reason": "r", "message": "m", "time": 3}')[
        "time"] == 3
