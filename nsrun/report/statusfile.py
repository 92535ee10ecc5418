"""status.json: the whole Pod (metadata, spec, status) as kubectl shows it, written atomically
and durably. A write that fails (a full disk) keeps the last good copy and says so."""

from __future__ import annotations

from typing import Any

import msgspec

from nsrun.state import PodPaths, write_atomic


def pod_object(manifest: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """The Pod as ``nsrun get -o json`` prints it: the manifest plus ``status``."""
    return {**manifest, "status": status}


def write(paths: PodPaths, pod: dict[str, Any]) -> OSError | None:
    """Replace status.json; the ``OSError`` (ENOSPC, EIO) when it could not be written, the
    old file then stays as it was."""
    try:
        write_atomic(paths.status, msgspec.json.encode(pod) + b"\n")
    except OSError as err:
        return err
    return None


def read(paths: PodPaths) -> dict[str, Any] | None:
    """The last written Pod, or None when none was written yet; a corrupt file is named
    and the pod read as ``Unknown`` (``stateread.status``); ``Unknown`` too while it has no
    supervisor (see :func:`without_supervisor`)."""
    from nsrun.report import stateread

    pod = stateread.status(paths)
    return None if pod is None else without_supervisor(paths, pod)


UNKNOWN_REASON = "SupervisorLost"
UNKNOWN_MESSAGE = ("the pod's supervisor is not running, so its containers' states are not "
                   "known; nsrun recover {name} re-attaches a new one")


def without_supervisor(paths: PodPaths, pod: Any) -> Any:
    """A pod that has not ended and has no supervisor reads as phase ``Unknown`` with a
    message saying why (never a stale ``Running``), as the API server shows a pod whose
    node stopped reporting."""
    from nsrun.state import supervisor_alive

    status = pod.get("status") if isinstance(pod, dict) else None
    if not isinstance(status, dict) or status.get("phase") in ("Succeeded", "Failed", "Unknown"):
        return pod
    if supervisor_alive(paths):
        return pod
    status = {**status, "phase": "Unknown", "reason": UNKNOWN_REASON,
              "message": UNKNOWN_MESSAGE.format(name=paths.name)}
    return {**pod, "status": status}
