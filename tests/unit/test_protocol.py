"""The protocol table (nsrun/runtime/protocol.py) names every pod state file as a PodPaths
property, and docs/protocol.md repeats it; the boot unit that runs ``recover --all``."""

from pathlib import Path

from nsrun.runtime import protocol
from nsrun.state import PodPaths

ROOT = Path(__file__).resolve().parents[2]


def _path_members() -> set[str]:
    paths = PodPaths(Path("/x/pods/p"))
    names = set()
    for name, member in vars(PodPaths).items():
        if isinstance(member, property) and name not in ("name",):
            if isinstance(getattr(paths, name), Path) and name != "dir":
                names.add(name)
    return names | {"log", "record", "termination_file"}


def test_every_state_file_is_in_the_table():
    assert _path_members() - protocol.file_properties() == set()


def test_every_file_in_the_table_is_a_podpaths_member():
    missing = {n for n in protocol.file_properties() if not hasattr(PodPaths, n)}
    assert missing == set()


def test_docs_repeat_the_table():
    doc = (ROOT / "docs" / "protocol.md").read_text()
    body = "\n".join(line for line in doc.splitlines() if line.startswith("|")) + "\n"
    assert body == protocol.tables()
    assert body.count("| --- |") >= 2


def test_table_rows_have_four_cells():
    for line in protocol.tables().splitlines():
        assert line.count("|") == 5, line


def test_the_recover_unit_runs_recover_all_at_boot_and_leaves_the_supervisors_alive():
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((ROOT / "systemd" / "nsrun-recover.service").read_text())
    assert unit["Service"]["ExecStart"].split()[-2:] == ["recover", "--all"]
    assert unit["Service"]["Type"] == "oneshot"
    assert unit["Service"]["KillMode"] == "process"  # the pods' supervisors outlive it
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "NSRUN_ROOT=/var/lib/nsrun" in unit["Service"]["Environment"]  # persistent
