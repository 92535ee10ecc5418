"""What each entry point imports, and what it costs (``.venv/bin/python bench/imports.py``).

For every entry point in ``ENTRIES`` (the supervisor's lean start, ``nsrun get``, the
manifest path of ``nsrun run``, each ``nsrun-oci`` verb) it runs ``python -X importtime``
``--runs`` times in a fresh interpreter and keeps, per module, the smallest self time seen:
the other helpers' load on this machine only ever adds time, so the minimum is the closest
to a quiet machine. It prints the number of modules, the summed minima and the heaviest
modules; ``--json`` prints the same as one object (``bench/bench.py`` stores it in
``bench/last.json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

# name -> code run by ``python -c`` (the module-level work of that path, nothing run)
ENTRIES = {
    "interpreter": "pass",
    "supervise": "import nsrun.runtime.supervise",
    "cli": "import nsrun.cli",
    "get": "import nsrun.cli, nsrun.objcli, nsrun.report.output, nsrun.core.printer",
    "run (manifest)": "import nsrun.cli, nsrun.podcli, nsrun.runtime.lifecycle, "
                      "nsrun.core.spec, nsrun.core.validate",
    "oci": "import nsrun.oci.main",
}


def sample(code: str) -> dict[str, int]:
    """Self time in µs of each module ``code`` imports (one run)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          capture_output=True, text=True, check=True)
    return parse(proc.stderr)


def parse(stderr: str) -> dict[str, int]:
    """``-X importtime`` lines: module -> self time in µs."""
    out = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line[len("import time:"):].split("|", 2)
        out[name.strip()] = int(own)
    return out


def measure(code: str, runs: int) -> dict[str, int]:
    """The per-module minimum over ``runs`` samples."""
    best: dict[str, int] = {}
    for _ in range(runs):
        for name, us in sample(code).items():
            best[name] = min(us, best.get(name, us))
    return best


def summary(runs: int, entries: dict[str, str] = ENTRIES) -> dict[str, dict]:
    out = {}
    for name, code in entries.items():
        best = measure(code, runs)
        top = sorted(best.items(), key=lambda kv: -kv[1])[:12]
        out[name] = {"modules": len(best), "ms": round(sum(best.values()) / 1000, 1),
                     "top": [[m, round(us / 1000, 2)] for m, us in top]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("entry", nargs="*", help="only these entries (default: all)")
    args = parser.parse_args()
    chosen = {k: v for k, v in ENTRIES.items() if not args.entry or k in args.entry}
    result = summary(args.runs, chosen)
    if args.json:
        print(json.dumps(result))
        return 0
    for name, r in result.items():
        heavy = ", ".join(f"{m} {ms}" for m, ms in r["top"][:8])
        print(f"{name:>15}: {r['modules']:4d} modules, {r['ms']:6.1f} ms (sum of per-module "
              f"minima)  heaviest: {heavy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
