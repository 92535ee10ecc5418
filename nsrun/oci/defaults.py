"""``nsrun-oci spec``: the default config.json, runc's ``spec`` with nsrun's own defaults (the
pods' default mounts, masked and read-only paths), ``terminal`` off (``run`` in the
foreground relays no terminal) and no cgroup mount (not applied without a cgroup namespace).
"""

from __future__ import annotations

from nsrun.oci.main import SPEC_VERSION

CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default_spec() -> dict:
    from nsrun.bundle.oci import DEFAULT_MOUNTS
    from nsrun.bundle.security import DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS
    from nsrun.request import DEFAULT_PATH

    return {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
            "env": [f"PATH={DEFAULT_PATH}", "TERM=xterm"], "cwd": "/",
            "capabilities": {name: list(CAPS) for name in ("bounding", "effective",
                                                            "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "nsrun",
        "mounts": [dict(m) for m in DEFAULT_MOUNTS],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": list(DEFAULT_MASKED_PATHS),
            "readonlyPaths": list(DEFAULT_READONLY_PATHS),
        },
    }
