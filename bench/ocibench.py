"""``nsrun-oci`` against runc and crun, side by side (run by ``bench/bench.py``; root).

The same bundle (``/bin/true``) for all three, each in a shell loop timed inside (as
``bench.py``'s ``runtime_loop``): ``run -b B ID`` (create, start, wait, delete), and
``create -b B ID; start ID; delete -f ID`` (``-f``: the process may not have exited yet when
``delete`` comes). crun runs in a private mount namespace with the hybrid host's cgroup2
mount hidden, outside the timed loop. Medians of ``runs`` loops of ``LOOP`` runs each, in
ms per container; plus what each verb imports when it runs, and what that costs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

LOOP = 5  # containers per timed loop
CSD = ('i=0; t0=$(date +%s%N); while [ $i -lt "$N" ]; do i=$((i+1)); id="bench-$$-$i"; '
       '"$@" create -b "$B" "$id" >/dev/null 2>&1 && "$@" start "$id" >/dev/null 2>&1 && '
       '"$@" delete -f "$id" >/dev/null 2>&1 || exit 1; done; t1=$(date +%s%N); '
       'echo $((t1-t0))')
RUN = ('i=0; t0=$(date +%s%N); while [ $i -lt "$N" ]; do i=$((i+1)); '
       '"$@" run -b "$B" "bench-$$-$i" >/dev/null 2>&1 || exit 1; done; t1=$(date +%s%N); '
       'echo $((t1-t0))')


def nsrun_oci() -> list[str]:
    script = Path(sys.executable).with_name("nsrun-oci")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nsrun.oci.main"]


def loop_ms(script: str, wrapper: list[str], runtime: list[str], bundle: Path) -> float:
    """ms per container of one loop of ``LOOP`` containers."""
    out = subprocess.run(wrapper + ["sh", "-c", script, "sh", *runtime], capture_output=True,
                         text=True, env={**os.environ, "N": str(LOOP), "B": str(bundle)})
    if out.returncode != 0:
        raise SystemExit(f"bench: {runtime[0]} loop failed: {out.stderr.strip()[-300:]}")
    return int(out.stdout.split()[-1]) / 1e6 / LOOP


def measure(runs: int, tmp: Path, bundle: Path, crun_wrapper: list[str]) -> dict:
    runtimes = {"nsrun-oci": ([], nsrun_oci() + ["--root", str(tmp / "oci")]),
                "runc": ([], ["runc", "--root", str(tmp / "runc-oci")]),
                "crun": (crun_wrapper, ["crun", "--root", str(tmp / "crun-oci")])}
    times: dict[str, dict[str, list[float]]] = {"run": {}, "csd": {}}
    for _ in range(runs):  # interleaved, so load changes hit all three alike
        for kind, script in (("run", RUN), ("csd", CSD)):
            for name, (wrapper, cmd) in runtimes.items():
                times[kind].setdefault(name, []).append(loop_ms(script, wrapper, cmd, bundle))
    med = {k: {n: statistics.median(v) for n, v in t.items()} for k, t in times.items()}
    out = {}
    for kind in ("run", "csd"):
        ours = med[kind]["nsrun-oci"]
        out |= {f"oci_{kind}_ms": round(ours, 2),
                f"oci_{kind}_runc_ms": round(med[kind]["runc"], 2),
                f"oci_{kind}_crun_ms": round(med[kind]["crun"], 2),
                f"oci_{kind}_ratio_runc": round(ours / med[kind]["runc"], 2),
                f"oci_{kind}_ratio_crun": round(ours / med[kind]["crun"], 2)}
    return out


def import_ms(tmp: Path, bundle: Path, samples: int = 3) -> dict[str, dict]:
    """Per verb, what a real ``nsrun-oci`` invocation imports (``-X importtime``, lazy
    imports included): module count and the sum of per-module minimum self times, ms."""
    import imports

    root = ["--root", str(tmp / "oci-imports")]
    steps = [("create", ["create", "-b", str(bundle), "imp"]), ("state", ["state", "imp"]),
             ("start", ["start", "imp"]), ("delete", ["delete", "-f", "imp"]),
             ("run", ["run", "-b", str(bundle), "imp"])]
    best: dict[str, dict[str, int]] = {verb: {} for verb, _ in steps}
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    err = tmp / "oci-imports.err"  # a file: the created container keeps its stderr open
    for _ in range(samples):
        for verb, args in steps:
            with open(err, "w+") as f:
                subprocess.run(nsrun_oci() + root + args, stdout=subprocess.DEVNULL,
                               stderr=f, env=env, timeout=60)
                f.seek(0)
                found = imports.parse(f.read())
            for name, us in found.items():
                best[verb][name] = min(us, best[verb].get(name, us))
    return {verb: {"modules": len(m), "ms": round(sum(m.values()) / 1000, 1)}
            for verb, m in best.items()}


def report(res: dict, imports_ms: dict[str, dict]) -> None:
    print("\nnsrun-oci vs runc vs crun, /bin/true from the same bundle (ms per container, "
          "medians):")
    for kind, what in (("run", "run"), ("csd", "create + start + delete -f")):
        print(f"  {what:>26}: nsrun-oci {res[f'oci_{kind}_ms']:7.2f}  runc "
              f"{res[f'oci_{kind}_runc_ms']:7.2f}  crun {res[f'oci_{kind}_crun_ms']:7.2f}  "
              f"nsrun-oci/runc {res[f'oci_{kind}_ratio_runc']:.2f}  "
              f"nsrun-oci/crun {res[f'oci_{kind}_ratio_crun']:.2f}")
    print("  what each verb imports (modules, sum of per-module minimum import times): "
          + ", ".join(f"{k} {v['modules']} / {v['ms']:.1f} ms" for k, v in imports_ms.items()))
