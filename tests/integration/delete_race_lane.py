"""One lane of ``test_delete_race``: ``python delete_race_lane.py ROOT IMAGES CGROUP_PARENT
NAME TRIES SEED [GLOBAL ARGS…]`` runs ``nsrun run -d`` then ``nsrun delete`` of pod NAME TRIES
times, the delete racing the pod's own completion, and prints one line per problem.

It calls ``nsrun.cli.main`` in this one (single-threaded) process, the same code as the
``nsrun`` command without an interpreter start per verb, so 500 tries fit in a few minutes on
a loaded host.
"""

from __future__ import annotations

import contextlib
import io
import random
import sys
import time
import uuid
from pathlib import Path

from nsrun.cli import main

POD = """apiVersion: v1
kind: Pod
metadata: {{name: {name}, uid: {uid}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'sleep {seconds:.3f}']
    volumeMounts: [{{name: work, mountPath: /work}}]
  volumes:
  - {{name: work, emptyDir: {{medium: Memory}}}}
"""


def nsrun(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    return code, err.getvalue()


def traces(root: Path, cgroup_dirs: list[Path], name: str, uid: str) -> list[str]:
    """What of pod ``name`` (uid ``uid``) is still on the host."""
    pod_dir = root / "pods" / name
    found = [f"state dir {pod_dir}"] if pod_dir.exists() else []
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if f"{pod_dir}/" in line]
    for top in cgroup_dirs:
        found += [f"cgroup {p}" for p in top.rglob(f"*{uid}*")]
    return found


def lane(argv: list[str]) -> list[str]:
    root, parent, name, tries, seed, cgroup_dirs = (
        Path(argv[0]), argv[2], argv[3], int(argv[4]), int(argv[5]), [Path(argv[6])])
    world = ["--root", str(root), "--images", argv[1], *argv[7:]]
    rng, problems = random.Random(seed), []
    manifest = root.parent / f"{name}.yaml"
    for attempt in range(tries):
        uid = str(uuid.uuid4())
        manifest.write_text(POD.format(name=name, uid=uid, seconds=rng.uniform(0, 0.06)))
        code, err = nsrun(*world, "run", "-d", "--cgroup-parent", parent, str(manifest))
        if code != 0:
            return problems + [f"{name}#{attempt}: run -d exited {code}: {err.strip()}"]
        time.sleep(rng.uniform(0, 0.08))  # the delete lands before, during or after the end
        code, err = nsrun(*world, "delete", name)
        left = traces(root, cgroup_dirs, name, uid)
        if code == 0 and left:
            problems.append(f"{name}#{attempt}: delete said deleted, left {left}")
        elif code != 0:
            if "left:" not in err:
                problems.append(f"{name}#{attempt}: delete exited {code} without naming "
                                f"what is left: {err.strip()}")
            nsrun(*world, "delete", name)
            if traces(root, cgroup_dirs, name, uid):
                problems.append(f"{name}#{attempt}: a second delete left "
                                f"{traces(root, cgroup_dirs, name, uid)}")
        if len(problems) > 5:
            break
    return problems


if __name__ == "__main__":
    for line in lane(sys.argv[1:]):
        print(line, flush=True)
