"""nsrun vs crun vs runc, side by side in one run (``make bench``; root).

For N = 1, 2, 10 ``/bin/true`` init containers plus one ``/bin/true`` app container it times
the whole pod through ``nsrun run`` (interpreter start included), once with the pod network
(veth, address, DNS, kubelet files) and once with ``hostNetwork: true`` (none of it), and the
same N+1 containers as sequential ``crun run`` and ``runc run`` of the same bundle (no
network either), and prints medians, the
ratios nsrun/crun and nsrun/runc (total and per extra init container), and (``bench/syscalls.py``)
the ``fsync`` calls and helper programs of one such pod. A pod that sleeps
keeps the world's bridge up meanwhile, as on a node that runs pods. ``bench/podmem.py`` adds
a running pod's memory (RSS and PSS of all of nsrun's processes), the time to the first init
container's ``execve`` and 50 pods at once; ``bench/ocibench.py`` ``nsrun-oci`` against runc
and crun; ``bench/netbench.py`` what a world's first pod pays, the pyroute2 numbers, DNS
latency and 50 pods reaching each other through Services. The summary goes to
``bench/last.json`` (``KEYS``, all medians; ignored by git) so runs can be compared. crun refuses this kind of hybrid cgroup host, so (as
the usual way of timing crun on such hosts) its loop runs in a private mount namespace with the cgroup2
mount hidden; that wrapper is outside the timed loop. Nothing on the host is changed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ocibench
import podmem
import syscalls

# the console script, as a user runs it (``python -m`` would add runpy's imports)
_SCRIPT = Path(sys.executable).with_name("nsrun")
NSRUN = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "nsrun"]
COUNTS = (1, 2, 10)
# the benchmark's own network (link-local, away from nsrun's defaults and the test slots)
NET_ENV = {"NSRUN_POD_CIDR": "169.254.110.0/24", "NSRUN_SERVICE_CIDR": "169.254.210.0/24",
           "NSRUN_RESOLV_CONF": ""}
os.environ.update(NET_ENV)


def state_dir() -> str:
    """Where the benchmark's world lives: a tmpfs, as nsrun's default state root
    ``/run/nsrun`` is on a systemd host (``/dev/shm`` where ``/run`` is not one, as on this
    development machine); ``--state-dir`` to time a state root on a disk instead."""
    return "/run" if syscalls.filesystem("/run") == "tmpfs" else "/dev/shm"


def pod_manifest(n: int, host_network: bool = False) -> str:
    inits = "".join(f"\n  - {{name: init-{i}, image: bench, command: [/bin/true]}}"
                    for i in range(n))
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: bench}}\nspec:\n"
            f"  restartPolicy: Never\n  hostNetwork: {str(host_network).lower()}\n"
            f"  initContainers:{inits}\n"
            "  containers:\n  - {name: app, image: bench, command: [/bin/true]}\n")


def nsrun_pod(world: Path, manifest: Path) -> tuple[float, int]:
    """(seconds, peak RSS KiB) of one whole ``nsrun run --rm``."""
    cmd = NSRUN + ["--root", str(world / "state"), "--images", str(world / "images"),
                   "run", "--rm", str(manifest)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"nsrun run failed: {cmd}")
    return elapsed, usage.ru_maxrss


LOOP = ('i=0; t0=$(date +%s%N); while [ $i -lt "$1" ]; do i=$((i+1)); '
        '"$@" >/dev/null 2>&1 || exit 1; done; t1=$(date +%s%N); echo $((t1-t0))')


def runtime_loop(wrapper: list[str], runtime: list[str], bundle: Path, count: int) -> float:
    """Seconds for ``count`` sequential ``<runtime> run`` of ``bundle``, timed inside."""
    script = LOOP.replace('"$@"', '"$@" "bench-$$-$i"')
    inner = ["sh", "-c", 'shift; ' + script.replace('"$1"', '"$N"'), "sh", "x",
             *runtime, "run", "-b", str(bundle)]
    out = subprocess.run(wrapper + inner, capture_output=True, text=True,
                         env={**os.environ, "N": str(count)})
    if out.returncode != 0:
        raise SystemExit(f"{runtime[0]} loop failed: {out.stderr.strip()}")
    return int(out.stdout.split()[-1]) / 1e9


def hybrid() -> bool:
    return (os.path.ismount("/sys/fs/cgroup/unified")
            and os.statvfs("/sys/fs/cgroup").f_type != 0x63677270)


def crun_wrapper() -> list[str]:
    """crun 1.8 refuses hybrid hosts: hide the cgroup2 mount in a private mount ns."""
    if not os.path.ismount("/sys/fs/cgroup/unified"):
        return []
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'umount /sys/fs/cgroup/unified && exec "$@"', "sh"]


def make_bundle(world: Path) -> Path:
    subprocess.run(NSRUN + ["--images", str(world / "images"), "image", "busybox", "bench"],
                   check=True, capture_output=True)
    bundle = world / "images" / "bench" / "latest"
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["/bin/true"]
    config["root"]["path"] = str(bundle / "rootfs")
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


KEYS = ("nsrun", "hostnet", "crun", "runc")
LAST = Path(__file__).with_name("last.json")


def anchor(world: Path, tmp: Path, up: bool) -> None:
    """A sleeping pod that keeps the world's bridge up between the measured pods."""
    base = NSRUN + ["--root", str(world / "state"), "--images", str(world / "images")]
    if not up:
        subprocess.run(base + ["delete", "anchor", "--grace-period", "0"], capture_output=True)
        return
    manifest = tmp / "anchor.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: anchor}\nspec:\n"
                        "  containers:\n  - {name: app, image: bench, command: [sleep, '3600']}\n")
    subprocess.run(base + ["run", "-d", str(manifest)], check=True, capture_output=True)


def measure(runs: int, tmp: Path) -> dict:
    world = tmp / "world"
    bundle = make_bundle(world)
    results: dict = {k: {} for k in KEYS} | {"rss": []}
    anchor(world, tmp, True)
    try:
        for n in COUNTS:
            _measure_n(n, runs, world, tmp, bundle, results)
        results["syscalls"] = syscalls.measure(  # beside the anchor, as the timed pods
            NSRUN + ["--root", str(world / "state"), "--images", str(world / "images")],
            {"network": tmp / "pod-2.yaml", "hostnet": tmp / "pod-2-hostnet.yaml"})
    finally:
        anchor(world, tmp, False)
    base = NSRUN + ["--root", str(world / "state"), "--images", str(world / "images")]
    results["first_exec"] = statistics.median(podmem.first_exec(base, tmp)
                                              for _ in range(runs))
    results["pod_memory"] = podmem.pod_memory(base, tmp)
    results["fifty"] = podmem.fifty(base, tmp)
    results["oci"] = ocibench.measure(max(3, runs // 2), tmp, bundle, crun_wrapper())
    results["oci_imports"] = ocibench.import_ms(tmp, bundle)
    return results


def _measure_n(n: int, runs: int, world: Path, tmp: Path, bundle: Path, results: dict) -> None:
    manifest, hostnet = tmp / f"pod-{n}.yaml", tmp / f"pod-{n}-hostnet.yaml"
    manifest.write_text(pod_manifest(n))
    hostnet.write_text(pod_manifest(n, host_network=True))
    for key in KEYS:
        results[key][n] = []
    for _ in range(runs):  # interleaved, so load changes hit all four alike
        t, rss = nsrun_pod(world, manifest)
        results["nsrun"][n].append(t)
        results["rss"].append(rss)
        results["hostnet"][n].append(nsrun_pod(world, hostnet)[0])
        results["crun"][n].append(runtime_loop(
            crun_wrapper(), ["crun", "--root", str(tmp / "crun")], bundle, n + 1))
        results["runc"][n].append(runtime_loop(
            [], ["runc", "--root", str(tmp / "runc")], bundle, n + 1))


def summary(results: dict) -> dict:
    """``bench/last.json``: issue 15's keys and the ``nsrun-oci`` figures (issue 13)."""
    med = {k: {n: statistics.median(v) * 1000 for n, v in results[k].items()} for k in KEYS}
    per = {k: (med[k][10] - med[k][2]) / 8 for k in med}
    fifty, (rss, pss) = results["fifty"], results["pod_memory"]
    return {"pod2_ms": round(med["nsrun"][2], 1),
            "pod2_ratio_runc": round(med["nsrun"][2] / med["runc"][2], 2),
            "pod2_ratio_crun": round(med["nsrun"][2] / med["crun"][2], 2),
            "per_init_ms": round(per["nsrun"], 2),
            "per_init_ratio_crun": round(per["nsrun"] / per["crun"], 2),
            "first_exec_ms": round(results["first_exec"] * 1000, 1),
            "pod_rss_mib": round(rss / 1024, 1), "pod_pss_mib": round(pss / 1024, 1),
            "pods50_all_running_s": round(fifty["all_running_s"], 1),
            "pods50_rss_mib": round(fifty["rss_kib"] / 1024, 1),
            "pods50_failed": fifty["failed"],
            "pod2_fsyncs": results["syscalls"]["network"]["fsync"],
            "pod2_hostnet_fsyncs": results["syscalls"]["hostnet"]["fsync"],
            "pod2_helper_execs": results["syscalls"]["network"]["helper_execs"],
            **results["oci"], "oci_import_ms": results["oci_imports"]}


def report(results: dict, runs: int, load: tuple[str, str], where: str) -> dict:
    med = {k: {n: statistics.median(v) * 1000 for n, v in results[k].items()} for k in KEYS}
    print(f"\nnsrun vs crun vs runc: N /bin/true init containers + 1 app, median of {runs} "
          "runs (ms; nsrun includes interpreter start; hostnet = hostNetwork: true, no pod "
          "network; crun and runc set up no network either)")
    print(f"{'N':>3} {'nsrun':>9} {'hostnet':>9} {'network':>9} {'crun':>9} {'runc':>9} "
          f"{'nsrun/crun':>11} {'nsrun/runc':>11}")
    for n in COUNTS:
        a, h, c, r = (med[k][n] for k in KEYS)
        print(f"{n:>3} {a:9.1f} {h:9.1f} {a - h:9.1f} {c:9.1f} {r:9.1f} {a / c:11.2f} "
              f"{a / r:11.2f}")
    per = {k: (med[k][10] - med[k][2]) / 8 for k in med}
    print(f"per extra init container ((N=10 - N=2) / 8): nsrun {per['nsrun']:.2f} ms, "
          f"crun {per['crun']:.2f} ms, runc {per['runc']:.2f} ms; "
          f"nsrun/crun {per['nsrun'] / per['crun']:.2f}, nsrun/runc {per['nsrun'] / per['runc']:.2f}")
    out = summary(results) | {"state_fs": syscalls.filesystem(where)}
    fifty = results["fifty"]
    one = out["pod_rss_mib"]
    per_pod = [x / 1024 for x in fifty["per_pod_rss_kib"]] or [0.0]
    print(f"from `nsrun run` to the first init container's execve: {out['first_exec_ms']} ms")
    print(f"a running pod, all of nsrun's processes (supervisor, pause, any monitor): "
          f"RSS {one} MiB, PSS {out['pod_pss_mib']} MiB")
    print(f"50 pods at once (create -f, pod network): all Running after "
          f"{out['pods50_all_running_s']} s, {out['pods50_failed']} failed; nsrun's processes "
          f"RSS {out['pods50_rss_mib']} MiB (per pod {min(per_pod):.1f}-{max(per_pod):.1f}, "
          f"{out['pods50_rss_mib'] / (50 * one or 1):.2f}x 50 lone pods), PSS "
          f"{fifty['pss_kib'] / 1024:.1f} MiB")
    syscalls.report(results["syscalls"], where)
    ocibench.report(out, results["oci_imports"])
    print(f"load average at start {load[0]}, at end {load[1]} (the other jobs on this host)")
    return out


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--state-dir", default=None,
                        help="the directory the benchmark's world (state root, images) is "
                             "made in (default: /run if a tmpfs, else /dev/shm)")
    parser.add_argument("--no-network", action="store_true",
                        help="skip bench/netbench.py (first pod, pyroute2, DNS, 50 pods)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: run as root", file=sys.stderr)
        return 3
    for tool in ("crun", "runc", "unshare"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} not found (make bench installs it)", file=sys.stderr)
            return 3
    load, where = _loadavg(), args.state_dir or state_dir()
    with tempfile.TemporaryDirectory(prefix="nsrun-bench.", dir=where) as tmp:
        results = measure(args.runs, Path(tmp))
    out = report(results, args.runs, (load, _loadavg()), where)
    LAST.write_text(json.dumps(out, indent=1) + "\n")
    print(f"summary: {LAST}")
    if not args.no_network:
        import netbench

        netbench.main(args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
