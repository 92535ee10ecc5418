"""nsrun.files: atomic writes, durable ones ``fsync`` the data and the directory, and a
batch of durable writes ``fsync``s each directory once. The ``fsync`` calls are counted
through a stand-in for ``os.fsync`` that records what each fd is."""

import os

import pytest

from nsrun import files


@pytest.fixture
def synced(monkeypatch):
    """The paths ``fsync``ed, in order (a directory as itself, a file as its name)."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def test_durable_write_syncs_the_data_then_the_directory(tmp_path, synced):
    files.write_atomic(tmp_path / "a.json", b"{}")
    assert (tmp_path / "a.json").read_bytes() == b"{}"
    assert synced == [str(tmp_path / ".a.json.tmp"), str(tmp_path)]


def test_atomic_only_write_syncs_nothing_and_leaves_no_temporary(tmp_path, synced):
    (tmp_path / "pid").write_bytes(b"1\n")
    files.write_atomic(tmp_path / "pid", b"2\n", durable=False)
    assert (tmp_path / "pid").read_bytes() == b"2\n"
    assert synced == []
    assert sorted(os.listdir(tmp_path)) == ["pid"]


def test_a_batch_syncs_each_file_and_its_directory_once(tmp_path, synced):
    other = tmp_path / "sub"
    other.mkdir()
    files.write_atomic_all([(tmp_path / "pod.json", b"1"), (tmp_path / "supervisor.json", b"2"),
                            (other / "x", b"3")])
    assert [p.read_bytes() for p in (tmp_path / "pod.json", tmp_path / "supervisor.json",
                                     other / "x")] == [b"1", b"2", b"3"]
    assert synced == [str(tmp_path / ".pod.json.tmp"), str(tmp_path / ".supervisor.json.tmp"),
                      str(other / ".x.tmp"), str(tmp_path), str(other)]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "status.json"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        files.write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["status.json"]
