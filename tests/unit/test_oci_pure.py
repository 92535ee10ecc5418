"""The OCI face's pure parts: status derivation, state document, IDs, signals, the runc flag
syntax, resources → cgroup v2 values, cgroup paths, and the lean JSON codec."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsrun import jsonlite
from nsrun.core import ocistate
from nsrun.core.ociresources import v2_values
from nsrun.errors import OciError
from nsrun.oci import args as flags
from nsrun.oci import cgroup, hooks


@pytest.mark.parametrize("facts, status", [
    (dict(recorded=False, creating=True, alive=False, waiting=False, frozen=False), "creating"),
    (dict(recorded=False, creating=False, alive=False, waiting=False, frozen=False), "stopped"),
    (dict(recorded=True, creating=False, alive=True, waiting=True, frozen=False), "created"),
    (dict(recorded=True, creating=False, alive=True, waiting=False, frozen=False), "running"),
    (dict(recorded=True, creating=False, alive=True, waiting=False, frozen=True), "paused"),
    (dict(recorded=True, creating=False, alive=False, waiting=True, frozen=True), "stopped"),
])
def test_derive_status(facts: dict, status: str) -> None:
    assert ocistate.derive_status(**facts) == status


def test_state_document_has_runcs_fields_and_no_pid_once_stopped() -> None:
    record = {"ociVersion": "1.0.2", "id": "a", "pid": 42, "start_time": 7, "bundle": "/b",
              "rootfs": "/b/r", "created": "t", "annotations": {"k": "v"}, "cgroup": "/x"}
    doc = ocistate.state_document(record, "running")
    assert list(doc) == list(ocistate.STATE_KEYS)
    assert doc["pid"] == 42 and doc["owner"] == "" and doc["annotations"] == {"k": "v"}
    assert ocistate.state_document(record, "stopped")["pid"] == 0


@pytest.mark.parametrize("cid, ok", [("abc", True), ("a-b_c.d+e", True), ("x" * 64, True),
                                     ("", False), (".", False), ("..", False), ("a/b", False),
                                     ("a b", False), ("é", False), ("../x", False)])
def test_container_ids(cid: str, ok: bool) -> None:
    assert (ocistate.id_problem(cid) is None) == ok


@pytest.mark.parametrize("text, number", [("9", 9), ("KILL", 9), ("SIGTERM", 15),
                                          ("sigusr1", 10), ("RTMIN", 34), ("RTMIN+3", 37),
                                          ("SIGRTMAX-2", 62), ("64", 64)])
def test_signals(text: str, number: int) -> None:
    assert ocistate.parse_signal(text) == number


@pytest.mark.parametrize("text", ["0", "65", "FOO", "RTMIN-1", "RTMAX+1", "-9", ""])
def test_bad_signals(text: str) -> None:
    with pytest.raises(ValueError, match="unknown signal"):
        ocistate.parse_signal(text)


def test_start_and_delete_rules() -> None:
    assert ocistate.start_problem("a", "created") is None
    assert ocistate.start_problem("a", "stopped") == "cannot start a container that has stopped"
    assert "already running" in ocistate.start_problem("a", "paused")
    assert ocistate.delete_problem("a", "created", False) is None
    assert ocistate.delete_problem("a", "stopped", False) is None
    assert ocistate.delete_problem("a", "running", False) == \
        "cannot delete container a that is not stopped: running"
    assert ocistate.delete_problem("a", "paused", True) is None


SPEC = {"--bundle": ("bundle", flags.STR), "-b": ("bundle", flags.STR),
        "--detach": ("detach", flags.BOOL), "--env": ("env", flags.LIST),
        "--preserve-fds": ("fds", flags.INT)}


@pytest.mark.parametrize("argv, values, rest", [
    (["id"], {"bundle": None, "detach": False, "env": [], "fds": None}, ["id"]),
    (["--bundle", "b", "--detach", "id", "--x"],
     {"bundle": "b", "detach": True, "env": [], "fds": None}, ["id", "--x"]),
    (["--bundle=b", "--detach=false", "-env", "A=1", "--env=B=2", "--preserve-fds", "2", "i"],
     {"bundle": "b", "detach": False, "env": ["A=1", "B=2"], "fds": 2}, ["i"]),
    (["-b", "x", "--", "--detach"], {"bundle": "x", "detach": False, "env": [], "fds": None},
     ["--detach"]),
])
def test_flag_syntax(argv: list[str], values: dict, rest: list[str]) -> None:
    assert flags.parse(argv, SPEC) == (values, rest)


@pytest.mark.parametrize("argv, message", [(["--nope"], "flag provided but not defined"),
                                           (["--bundle"], "flag needs an argument"),
                                           (["--preserve-fds", "x"], "invalid value"),
                                           (["--detach=maybe"], "invalid boolean")])
def test_flag_errors(argv: list[str], message: str) -> None:
    with pytest.raises(OciError, match=message):
        flags.parse(argv, SPEC)


def test_resources_to_cgroup_v2() -> None:
    res = {"memory": {"limit": 1 << 30, "reservation": 1 << 20, "swap": 2 << 30},
           "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
           "pids": {"limit": 2048}, "blockIO": {"weight": 500},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
           "unified": {"memory.high": "max"}, "devices": [{"allow": False, "access": "rwm"}]}
    assert v2_values(res) == {
        "memory.max": str(1 << 30), "memory.low": str(1 << 20), "memory.swap.max": str(1 << 30),
        "cpu.weight": "39", "cpu.max": "50000 100000", "cpuset.cpus": "0-1",
        "pids.max": "2048", "io.weight": "default 4950", "hugetlb.2MB.max": "0",
        "memory.high": "max"}
    assert v2_values({"memory": {"limit": -1}, "pids": {"limit": 0}}) == {
        "memory.max": "max", "pids.max": "max"}
    assert v2_values({"cpu": {"quota": -1, "period": 20000}}) == {"cpu.max": "max 20000"}
    assert v2_values(None) == {}


@pytest.mark.parametrize("res, message", [({"memory": {"limit": "1G"}}, "memory.limit"),
                                          ({"memory": {"swap": 5}}, "needs memory.limit"),
                                          ({"unified": {"../x": "1"}}, "unified")])
def test_bad_resources(res: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        v2_values(res)


def test_cgroup_paths(monkeypatch) -> None:
    monkeypatch.setattr(cgroup, "own_cgroup", lambda: "/user.slice/me")
    linux = lambda p: {"linux": {"cgroupsPath": p}}  # noqa: E731
    assert cgroup.relative_path(linux("/a/b"), "id", False) == "/a/b"
    assert cgroup.relative_path(linux("a/b"), "id", False) == "/user.slice/me/a/b"
    assert cgroup.relative_path({}, "id", False) == "/user.slice/me/id"
    assert cgroup.relative_path(linux("system.slice:docker:abc"), "id", True) == \
        "/system.slice/docker-abc.scope"
    assert cgroup.relative_path(linux("a-b.slice:crio:x"), "id", True) == \
        "/a.slice/a-b.slice/crio-x.scope"
    for bad in ("/a/../b", "/"):
        with pytest.raises(OciError, match="cgroupsPath"):
            cgroup.relative_path(linux(bad), "id", False)
    with pytest.raises(OciError, match="slice:prefix:name"):
        cgroup.relative_path(linux("nocolons"), "id", True)


def test_hooks_need_absolute_paths() -> None:
    assert hooks.of({"hooks": {"poststop": [{"path": "/bin/x"}]}}, "poststop") == \
        [{"path": "/bin/x"}]
    assert hooks.of({}, "prestart") == []
    with pytest.raises(OciError, match=r"hooks.prestart\[0\].path"):
        hooks.of({"hooks": {"prestart": [{"path": "x"}]}}, "prestart")


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text() |
                    st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=20)


@given(JSON)
def test_jsonlite_is_json(value) -> None:
    text = jsonlite.dumps(value)
    assert text == json.dumps(value, separators=(",", ":"))
    assert jsonlite.loads(text) == json.loads(text)
    assert jsonlite.loads(f" \n{text}\t") == json.loads(text)


@pytest.mark.parametrize("text", ["", "{", "[1,]", "{} x", "NaN", "[Infinity]"])
def test_jsonlite_refuses_what_json_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        jsonlite.loads(text)
