"""The command line's pure parts: the exit-code table, kubectl's formats (HumanDuration,
JSONPath, custom columns, label selectors, durations), ``wait --for``, sdnotify's
messages, the systemd-run command line, the image store's listing, and usage errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from nsrun import cli, exitcodes
from nsrun.core.printer import human_duration
from nsrun.errors import PreflightError, UsageError
from nsrun.report import output
from nsrun.report.selector import selected
from nsrun.runtime import lifecycle, sdnotify, systemd
from nsrun.watchcli import met, parse_for

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_has_the_exit_code_table():
    assert exitcodes.markdown() in README.read_text()


def test_error_classes_take_their_codes_from_the_table():
    from nsrun import errors

    assert errors.UsageError.exit_code == exitcodes.USAGE == 2
    assert errors.NotFound("pods", "x").exit_code == exitcodes.STATE == 4
    assert errors.PreflightError.exit_code == exitcodes.HOST == 3
    assert errors.NotFound("pods", "x").kubectl() == \
        'Error from server (NotFound): pods "x" not found'


@pytest.mark.parametrize("secs,text", [
    (-5, "<invalid>"), (-1, "0s"), (119, "119s"), (600, "10m"), (3 * 3600 - 1, "179m"),
    (5 * 3600 + 30 * 60, "5h30m"), (7 * 3600, "7h"), (10 * 3600 + 59 * 60, "10h"),
    (47 * 3600, "47h"), (3 * 86400 + 5 * 3600, "3d5h"), (8 * 86400, "8d"),
    (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y")])
def test_age_is_kubectls_human_duration(secs, text):
    assert human_duration(secs) == text


POD = {"kind": "Pod", "metadata": {"name": "p", "labels": {"app": "web", "tier": "db"}},
       "status": {"phase": "Running", "conditions": [
           {"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "False"}],
           "containerStatuses": [{"name": "a"}, {"name": "b"}]}}


@pytest.mark.parametrize("template,text", [
    ("{.status.phase}", "Running"),
    ("{.metadata.name}{\"\\n\"}", "p\n"),
    ("{.status.containerStatuses[*].name}", "a b"),
    ("{.status.containerStatuses[-1].name}", "b"),
    ('{.status.conditions[?(@.type=="Ready")].status}', "False"),
    ("{range .status.containerStatuses[*]}[{.name}]{end}", "[a][b]"),
    ("{.missing}", ""),
    ("x={.metadata.labels.app}", "x=web")])
def test_jsonpath_templates(template, text):
    assert output.jsonpath(template, POD) == text


def test_bad_jsonpath_and_output_are_usage_errors():
    with pytest.raises(UsageError):
        output.check_format("jsonpath={.a")
    with pytest.raises(UsageError, match="allowed formats"):
        output.check_format("table")


def test_custom_columns():
    text = output.custom_columns("NAME:.metadata.name,PHASE:.status.phase,X:.nope", [POD])
    assert text.splitlines() == ["NAME   PHASE     X", "p      Running   <none>"]


@pytest.mark.parametrize("selector,hit", [
    ("app=web", True), ("app==web", True), ("app!=web", False), ("app", True), ("!app", False),
    ("app=web,tier=db", True), ("app=web,tier=fe", False), ("tier in (db,fe)", True),
    ("tier notin (db)", False), ("missing!=x", True), ("", True)])
def test_label_selectors(selector, hit):
    assert selected(POD, selector) is hit


def test_durations():
    assert output.parse_duration("2m30s") == 150
    assert output.parse_duration("500ms") == 0.5
    assert output.parse_duration("10") == 10
    assert output.parse_duration("soon") is None


def test_wait_for_forms():
    assert parse_for("delete") == ("delete", "", "")
    assert parse_for("condition=Ready") == ("condition", "Ready", "true")
    assert parse_for("condition=ready=False") == ("condition", "ready", "false")
    assert parse_for("jsonpath={.status.phase}=Running") == (
        "jsonpath", "{.status.phase}", "Running")
    assert met(POD, *parse_for("condition=Initialized"))
    assert not met(POD, *parse_for("condition=Ready"))
    assert met(POD, *parse_for("condition=Ready=false"))
    assert met(POD, *parse_for("jsonpath={.status.phase}=Running"))
    with pytest.raises(UsageError):
        parse_for("ready")


def _pod(init_done: bool, status: str = "Running", deleting: bool = False) -> dict:
    inits = [{"name": "i", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}
              if init_done else {"running": {}}}]
    return {"metadata": {"name": "p", **({"deletionTimestamp": "x"} if deleting else {})},
            "spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending" if not init_done else status,
                       "initContainerStatuses": inits,
                       "conditions": [{"type": "Initialized",
                                       "status": "True" if init_done else "False"}]}}


def test_sdnotify_ready_once_after_init_then_stopping():
    sent: dict[str, str] = {}
    assert sdnotify.messages("initialized", _pod(False), sent) == ["STATUS=Init:0/1"]
    assert sdnotify.messages("initialized", _pod(False), sent) == []
    lines = sdnotify.messages("initialized", _pod(True), sent)
    assert lines[-1] == "READY=1" and lines[0].startswith("STATUS=") and sent["READY"] == "1"
    assert sdnotify.messages("initialized", _pod(True), sent) == []
    assert sdnotify.messages("initialized", _pod(True, deleting=True), sent)[-1] == \
        "STOPPING=1"
    assert sdnotify.messages("ready", _pod(True), {}) == [sdnotify.messages(
        "none", _pod(True), {})[0]]  # Ready is not True: only STATUS
    assert "READY=1" in sdnotify.messages("started", _pod(False), {})


def test_notifier_sends_datagrams_with_mainpid_first(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as rx:
        rx.bind(path)
        rx.settimeout(5)
        note = sdnotify.Notifier("initialized", path, mainpid=True)
        note(_pod(False))
        note(_pod(True))
        first, second = rx.recv(4096).decode(), rx.recv(4096).decode()
    assert first.splitlines() == [f"MAINPID={os.getpid()}", "STATUS=Init:0/1"]
    assert "READY=1" in second.splitlines()


def test_systemd_units_properties_and_command_lines(tmp_path):
    assert systemd.unit_name("/run/nsrun", "web") == "nsrun-web"
    other = systemd.unit_name(str(tmp_path), "web")
    assert other.startswith("nsrun-") and other.endswith("-web") and len(other) == 18
    assert other != systemd.unit_name(str(tmp_path / "x"), "web")
    from nsrun.core.netconfig import world_name  # the same name prefixes the cgroup parent

    assert other == f"{world_name(str(tmp_path))}-web" and world_name("/run/nsrun") == "nsrun"
    cmd = ["/venv/bin/python", "-m", "nsrun", "run", "p.yaml"]
    assert systemd.systemd_run_argv(cmd, "nsrun-web", detach=False) == [
        "systemd-run", "--quiet", "--collect", "--unit=nsrun-web", "--scope",
        "-p", "Delegate=yes", "-p", "KillMode=mixed", "--", *cmd]
    argv = systemd.systemd_run_argv(cmd, "nsrun-web", detach=True, grace=1.5)
    for prop in ("Delegate=yes", "Type=notify", "KillMode=mixed", "NotifyAccess=all",
                 "TimeoutStopSec=32", "Restart=on-failure", "RestartPreventExitStatus=1 2 3 4 5"):
        assert argv[argv.index(prop) - 1] == "-p"
    assert argv[argv.index("--") + 1:] == cmd


def test_the_unit_runs_the_world_spelled_out_and_a_notifying_foreground_run(tmp_path):
    world = lifecycle.World(root="state", images="/i", secrets="/s", configmaps="/c")
    inner = systemd.inner_command(world, ["run", "-d", "--sdnotify", "ready", "p.yaml"],
                                  detach=True, sdnotify="initialized",
                                  pods_parent="/sys/fs/cgroup/nsrun")
    assert inner[3:5] == ["--root", os.path.abspath("state")]
    assert ["--secrets", "/s"] == inner[inner.index("--secrets"):inner.index("--secrets") + 2]
    # the pods' cgroups outside the unit, so that they outlive a restart of the supervisor
    assert inner[-6:] == ["run", "--cgroup-parent", "/sys/fs/cgroup/nsrun",
                          "--sdnotify=initialized", "--quiet", "p.yaml"]
    mine = systemd.inner_command(world, ["run", "-d", "--cgroup-parent", "x", "p.yaml"],
                                 detach=True, sdnotify="initialized", pods_parent="/p")
    assert mine.count("--cgroup-parent") == 1 and "x" in mine


def test_a_detached_units_pods_go_under_the_worlds_own_parent(tmp_path):
    from nsrun.core.netconfig import world_name

    assert systemd.pods_parent("/run/nsrun", "v1") == "/nsrun"
    mine = systemd.pods_parent(str(tmp_path), "v1")
    assert mine == f"/{world_name(str(tmp_path))}" != "/nsrun"
    assert mine != systemd.pods_parent(str(tmp_path / "other"), "v1")
    assert systemd.pods_parent(str(tmp_path), "none") is None


def test_no_systemd_is_a_host_error(tmp_path):
    with pytest.raises(PreflightError, match="systemd is not running") as err:
        systemd.preflight(str(tmp_path / "nope"))
    assert err.value.exit_code == exitcodes.HOST


def test_image_ls_lists_only_name_tag_bundles(tmp_path):
    from nsrun.bundle.images import ImageStore

    for bundle in ("busybox/latest", "library/app/v1"):
        (tmp_path / bundle / "rootfs" / "etc" / "x").mkdir(parents=True)
        (tmp_path / bundle / "config.json").write_text("{}")
        (tmp_path / bundle / "rootfs" / "etc" / "x" / "config.json").write_text("{}")
    (tmp_path / "busybox" / ".latest.importing-1" / "rootfs").mkdir(parents=True)
    (tmp_path / "busybox" / ".latest.importing-1" / "config.json").write_text("{}")
    assert [ref for ref, _ in ImageStore(tmp_path).list()] == ["busybox:latest",
                                                              "library/app:v1"]
    import yaml

    listed = yaml.safe_load(run_cli("--images", str(tmp_path), "image", "ls", "-o", "yaml",
                                    root=tmp_path / "state").stdout)
    assert listed == [{"image": "busybox:latest", "bundle": str(tmp_path / "busybox/latest")},
                      {"image": "library/app:v1", "bundle": str(tmp_path / "library/app/v1")}]


def test_reimport_swaps_the_whole_image_at_once(tmp_path):
    from nsrun.bundle.images import ImageStore

    store, src = ImageStore(tmp_path / "store"), tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "old").write_text("1")
    seen = []
    store.import_rootfs("app", str(src), progress=lambda f, b: seen.append((f, b)))
    (src / "bin" / "old").unlink()
    (src / "bin" / "new").write_text("22")

    def check_old_still_there(files: int, size: int) -> None:
        assert (store.path("app") / "rootfs" / "bin" / "old").exists()
    store.import_rootfs("app", str(src), progress=check_old_still_there)
    assert sorted(os.listdir(store.path("app") / "rootfs" / "bin")) == ["new"]
    assert seen == [(1, 1)]
    assert sorted(os.listdir(store.root / "app")) == ["latest"]


def run_cli(*argv: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nsrun", "--root", str(root), *argv],
                          capture_output=True, text=True, timeout=60)


def test_usage_errors_print_the_verbs_usage(tmp_path):
    proc = run_cli("delete", root=tmp_path)
    assert proc.returncode == exitcodes.USAGE
    assert "usage: nsrun delete" in proc.stderr and "See 'nsrun delete -h'" in proc.stderr
    proc = run_cli("get", "--bogus", root=tmp_path)  # unknown option: the verb's usage too
    assert proc.returncode == exitcodes.USAGE
    assert proc.stderr.startswith("usage: nsrun get ")
    assert proc.stderr.endswith("nsrun get: error: unrecognized arguments: --bogus\n")
    proc = run_cli("image", "import", "x", "--oci-archive", str(tmp_path / "no.tar"),
                   root=tmp_path)  # a nested verb's own usage
    assert proc.returncode == exitcodes.USAGE
    assert "usage: nsrun image import " in proc.stderr
    assert "See 'nsrun image import -h'" in proc.stderr
    proc = run_cli("--images", str(tmp_path), "image", "rm", "nosuch", root=tmp_path)
    assert (proc.returncode, proc.stderr) == (  # not a usage error: no usage
        exitcodes.STATE, f'nsrun: image "nosuch" not found in {tmp_path}\n')


def test_not_found_has_kubectls_shape_and_ignore_not_found(tmp_path):
    proc = run_cli("describe", "pod", "nope", root=tmp_path)
    assert (proc.returncode, proc.stderr) == (
        exitcodes.STATE, 'Error from server (NotFound): pods "nope" not found\n')
    assert run_cli("delete", "pod/nope", "--ignore-not-found", root=tmp_path).returncode == 0
    assert run_cli("wait", "nope", "--for=condition=Ready", root=tmp_path).returncode == 4
    assert run_cli("wait", "nope", "--for=delete", root=tmp_path).returncode == 0


def test_version():
    doc = json.loads(subprocess.run([sys.executable, "-m", "nsrun", "version", "-o", "json"],
                                    capture_output=True, text=True, check=True).stdout)
    assert {"sdnotify", "wait", "events", "watch-json"} <= set(doc["nsrun"]["features"])
    assert doc["nsrun"]["exitCodes"]["state"] == 4
    line = subprocess.run([sys.executable, "-m", "nsrun", "--version"], capture_output=True,
                          text=True, check=True).stdout
    assert line.startswith("nsrun version ")


def test_the_world_is_passed_not_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("NSRUN_SECRETS", "/from/env")
    args = cli.parser(["get"])[0].parse_args(["--secrets", "/s", "get"])
    world = cli.world(args)
    assert (world.secrets, world.configmaps) == ("/s", "/etc/nsrun/configmaps")
    from nsrun.host import sandbox

    assert sandbox.secrets_dir() == "/etc/nsrun/secrets"  # no environment below the CLI


def test_readme_links_stay_inside_the_repository():
    import re

    top = README.parent
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text()):
        if "://" in target:
            continue
        path = (top / target).resolve()
        assert path.is_relative_to(top) and path.exists(), target


class FakeTerminal:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_progress_only_on_a_terminal():
    import time

    from nsrun.report.progress import Progress, ticking

    quiet, term = FakeTerminal(False), FakeTerminal(True)
    for out in (quiet, term):
        p = Progress("importing x", out)
        p(1, 2_000_000)
        p.done()
    assert quiet.text == ""
    assert term.text.endswith("importing x: 1 files, 2.0 MB\x1b[K\n")
    assert ticking("deleting pod \"p\"", lambda: 7, quiet) == 7 and quiet.text == ""
    assert ticking("deleting pod \"p\"", lambda: time.sleep(0.7) or 8, term) == 8
    assert 'deleting pod "p": waiting for termination (' in term.text
    assert term.text.endswith("\r\x1b[K")
