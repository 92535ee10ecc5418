"""Each start path imports only what it needs: a set of modules, checked in a fresh
interpreter, never a time (``bench/imports.py`` measures the time).

The supervisor starts from ``nsrun.runtime.supervise`` and reads an already-validated pod:
no PyYAML, argparse or validation code may come with it, nor with what it imports while it
runs a pod (the modules listed in ``SUPERVISOR_RUNTIME``). The pod CLI imports only the
verb that runs; ``nsrun-oci`` no argparse, YAML or pod validation at all.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# what a supervisor imports inside functions while it runs a pod (cgroups of both drivers,
# sandbox, network, spawn, probes, hooks, the foreground's report, systemd's notifier)
SUPERVISOR_RUNTIME = (
    "nsrun.runtime.supervise", "nsrun.runtime.podrun", "nsrun.runtime.supervisor",
    "nsrun.runtime.executor", "nsrun.runtime.launcher", "nsrun.runtime.networking",
    "nsrun.runtime.podnetwork", "nsrun.runtime.dns", "nsrun.runtime.probes",
    "nsrun.runtime.health", "nsrun.runtime.sdnotify", "nsrun.report.runreport",
    "nsrun.report.warnlog", "nsrun.host.spawn", "nsrun.host.execin", "nsrun.host.sandbox",
    "nsrun.host.cgroupdriver", "nsrun.host.podcgroup", "nsrun.host.podcgroupv1",
    "nsrun.host.network", "nsrun.host.nft", "nsrun.bundle.images", "nsrun.bundle.oci",
    "nsrun.bundle.security", "nsrun.bundle.seccomp_select", "nsrun.core.printer",
    "nsrun.core.update",
)
NO_PARSING = {"yaml", "argparse", "nsrun.core.validate", "nsrun.cli", "nsrun.core.objects"}

# nsrun-oci: every verb's module (nsrun.oci.main.VERBS)
OCI_VERBS = ("create", "lifecycle", "info", "execverb")


def imported(*modules: str) -> set[str]:
    """``sys.modules`` of a fresh interpreter after importing ``modules``."""
    code = ("import importlib, json, sys\nbase = set(sys.modules)\n"
            f"for m in {list(modules)!r}:\n    importlib.import_module(m)\n"
            "print(json.dumps(sorted(set(sys.modules) - base)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return set(json.loads(out.stdout))


def test_the_supervisor_imports_no_parser_nor_validation():
    mods = imported(*SUPERVISOR_RUNTIME)
    assert "nsrun.runtime.supervisor" in mods  # the check looks at the real set
    assert mods & NO_PARSING == set()


def test_the_supervisor_entry_point_alone_is_small():
    """Before it reads the pod, the entry point has only the state paths and the options
    (the supervisor's own modules come once it runs)."""
    mods = imported("nsrun.runtime.supervise")
    assert mods & (NO_PARSING | {"nsrun.runtime.supervisor", "nsrun.bundle.oci",
                                 "pyseccomp", "cgroupspy"}) == set()


@pytest.mark.parametrize("verb,module", [
    ("get", "nsrun.objcli"), ("describe", "nsrun.objcli"), ("delete", "nsrun.objcli"),
    ("logs", "nsrun.podcli"), ("wait", "nsrun.watchcli"), ("events", "nsrun.watchcli"),
])
def test_reading_verbs_import_no_yaml_nor_validation_nor_supervisor(verb, module):
    """``nsrun get`` and its kind read state files: argparse, but no YAML, no validation,
    no supervisor (a verb's module imports the rest when the verb runs)."""
    mods = imported("nsrun.cli", module, "nsrun.report.output", "nsrun.runtime.lifecycle")
    forbidden = {"yaml", "nsrun.core.validate", "nsrun.runtime.supervisor", "pyseccomp",
                 "nsrun.bundle.oci"}
    assert "argparse" in mods and mods & forbidden == set()


def test_run_hands_over_without_importing_the_supervisor():
    """``nsrun run`` parses and validates, then execs the supervisor's entry point: the
    CLI process never imports the supervisor's modules."""
    mods = imported("nsrun.cli", "nsrun.podcli", "nsrun.runtime.lifecycle",
                    "nsrun.runtime.options", "nsrun.runtime.supervise",
                    "nsrun.core.resources", "nsrun.netstate")
    assert mods & {"nsrun.runtime.supervisor", "nsrun.runtime.executor", "nsrun.host.spawn",
                   "nsrun.bundle.oci", "pyseccomp", "cgroupspy"} == set()


@pytest.mark.parametrize("verb", OCI_VERBS)
def test_oci_verbs_import_no_argparse_yaml_or_pod_validation(verb):
    mods = imported("nsrun.oci.main", f"nsrun.oci.{verb}")
    assert mods & NO_PARSING == set()


def test_the_check_sees_a_forbidden_import():
    assert "yaml" in imported("nsrun.runtime.supervise", "yaml")


@pytest.mark.parametrize("verb", ("lifecycle", "info"))
def test_oci_verbs_on_state_need_no_msgspec(verb):
    """``start``, ``state``, ``kill``, ``delete``: a state file and a signal; msgspec (and
    the typing, datetime, decimal and uuid it imports) would cost more than the verb."""
    mods = imported("nsrun.oci.main", f"nsrun.oci.{verb}")
    assert "nsrun.oci.state" in mods and "msgspec" not in mods


# what ``delete`` (and ``kill --all``, ``pause``) import inside their functions: the
# container's cgroup group of either driver, the state's removal
OCI_DELETE = ("nsrun.oci.main", "nsrun.oci.lifecycle", "nsrun.oci.cgroup", "nsrun.files",
              "nsrun.host.cgroupfs", "nsrun.host.cgroupv1fs", "nsrun.host.podcgroupv1")
# what ``create`` and ``run`` import inside their functions
OCI_CREATE = ("nsrun.oci.main", "nsrun.oci.create", "nsrun.bundle.oci", "nsrun.host.spawn",
              "nsrun.oci.cgroup", "nsrun.oci.namespaces", "nsrun.host.cgroupdriver",
              "nsrun.core.ociresources", "nsrun.core.ocistate")


def test_oci_delete_with_its_cgroups_needs_no_msgspec():
    """Removing a container (its cgroups found through the v1 or v2 driver) parses no JSON
    into structs: the cgroup layout and mountinfo are plain named tuples."""
    mods = imported(*OCI_DELETE)
    assert "nsrun.host.podcgroupv1" in mods and "msgspec" not in mods


def test_oci_create_imports_no_pod_spec():
    """A bundle is not a pod: ``create`` confines from config.json alone, without the pod
    spec's types (the pod's securityContext is only a type there)."""
    mods = imported(*OCI_CREATE)
    assert "nsrun.bundle.security" in mods
    assert mods & (NO_PARSING | {"nsrun.core.spec", "nsrun.core.podnet",
                                 "nsrun.core.fielderrors"}) == set()
