"""How a pod is supervised (``Options``), and how they cross from the CLI to the supervisor.

The CLI computes them (resources, cgroup values, the world's directories and network) and
writes them, with the pod, into the pod's state directory as ``supervisor.json``; the
supervisor's lean entry point (``nsrun.runtime.supervise``) reads them back. This module is
on both sides' start path: it imports msgspec and pure data types only.
"""

from __future__ import annotations

from typing import Any

import msgspec

from nsrun.core.backoff import BackoffPolicy
from nsrun.core.cgroupvalues import CgroupFiles
from nsrun.core.netconfig import NetConfig


class Options(msgspec.Struct, omit_defaults=True):
    """How to run a pod (from the CLI)."""

    images: Any  # an ``ImageStore``; in supervisor.json, its directory
    backoff: BackoffPolicy
    cgroup_parent: str | None = None
    cgroup_default: str = "nsrun"  # the parent's name without --cgroup-parent (per root)
    cgroup_mode: str = "auto"
    cgroup_files: dict[str, CgroupFiles] | None = None  # driver name -> files
    qos_class: str = "BestEffort"
    oom_score_adj: dict[str, int] | None = None
    log_max_attempts: int = 20
    log_max_bytes: int = 10 * 1024 * 1024
    log_max_size: int = 10 * 1024 * 1024  # rotation within an attempt (--log-max-size)
    log_max_files: int = 5
    log_dir: str = "/var/log/nsrun"
    on_change: Any = None  # called with the Pod object on each status change; never stored
    net: NetConfig | None = None  # None: the pod keeps only ``lo`` (no network of its own)
    resolv_conf: str | None = "/etc/resolv.conf"
    secrets: str | None = None  # --secrets DIR (None: /etc/nsrun/secrets)
    configmaps: str | None = None  # --configmaps DIR (None: /etc/nsrun/configmaps)


class Report(msgspec.Struct, omit_defaults=True):
    """What the supervisor tells while the pod runs: foreground ``run``'s stderr lines
    (``tell``: a failed container, the stop, the final phase), its ``get`` rows on stderr
    when that is a terminal (``rows``; off a terminal the final phase only when the pod did
    not succeed), its ``-w`` rows on stdout (``watch``), its ``-o`` object at the end
    (``output``), and systemd's notifications (``sdnotify``)."""

    tell: bool = False
    rows: bool = False
    watch: bool = False
    output: str | None = None
    sdnotify: str = "none"


class Handoff(msgspec.Struct):
    """``supervisor.json``: everything the supervisor needs beside ``pod.json``."""

    options: Options
    detach: bool = False
    keep: bool = True  # foreground: keep the pod's state when it ends (not ``--rm``)
    report: Report = msgspec.field(default_factory=Report)


def encode(handoff: Handoff) -> bytes:
    opts = handoff.options
    images = getattr(opts.images, "root", opts.images)
    return msgspec.json.encode(msgspec.structs.replace(
        handoff, options=msgspec.structs.replace(opts, images=str(images), on_change=None)))


def decode(data: bytes) -> Handoff:
    return msgspec.json.decode(data, type=Handoff)
