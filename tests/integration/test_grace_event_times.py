"""Grace periods and event times with real pods (issue 12: mutations of either went
unnoticed): ``delete --grace-period`` overrides the pod's own, and every event carries the
time it happened."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

import pytest

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]

POD = """apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: {grace}
  containers:
  - {{name: app, image: busybox, command: [sh, -c, {script!r}]}}
"""


@pytest.fixture
def world(net_world):
    return net_world


def test_delete_grace_period_overrides_the_pods(world):
    """``sleep`` as PID 1 ignores SIGTERM: the pod's 30 s would hold the delete; the 1 s
    asked for ends it with SIGKILL, not at once."""
    text = POD.format(grace=30, script="sleep 600")
    world.nsrun(*world.run_args("-d", world.manifest("p", text)), check=True)
    world.wait_column("p", "Running")
    start = time.monotonic()
    world.nsrun("delete", "p", "--grace-period", "1", "--timeout", "25", check=True)
    assert 1.0 <= time.monotonic() - start < 20
    assert not (world.root / "pods" / "p").exists()


def test_events_carry_the_time_they_happened(world):
    before = time.time()
    text = POD.format(grace=2, script="exit 3").replace(
        "  containers:", "  initContainers:\n  - {name: init, image: busybox, command: [sleep, '1']}"
        "\n  containers:")
    assert world.nsrun(*world.run_args(world.manifest("p", text))).returncode == 1
    after = time.time()
    stored = [json.loads(line) for line in
              (world.root / "pods" / "p" / "events.jsonl").read_text().splitlines()]
    times = [e["time"] for e in stored]
    assert times == sorted(times) and before - 1 <= times[0] and times[-1] <= after + 1
    started = {e["fieldPath"]: e["time"] for e in stored if e["reason"] == "Started"}
    # the init container slept 1 s before the app container could start
    assert started["spec.containers{app}"] - started["spec.initContainers{init}"] >= 0.9
    shown = [json.loads(line) for line in
             world.nsrun("events", "p", "-o", "json", check=True).stdout.splitlines()]
    assert [e["lastTimestamp"] for e in shown] == [
        datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in times]
