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
    and the pod read as ``Unknown`` (``stateread.status``)."""
    from nsrun.report import stateread

    return stateread.status(paths)
