"""The actions the planner asks the executor to carry out (pure data)."""

from __future__ import annotations

import msgspec


class StartContainer(msgspec.Struct, frozen=True):
    """Start (or restart) the named container now."""

    name: str


class KillContainer(msgspec.Struct, frozen=True):
    """Stop the named container gracefully: SIGTERM, then SIGKILL after the grace period."""

    name: str
    message: str = ""


class KillPod(msgspec.Struct, frozen=True):
    """Stop every container of the pod and mark the pod with ``reason``/``message``
    (``DeadlineExceeded`` …); empty for a plain delete or a terminal pod's teardown."""

    reason: str = ""
    message: str = ""


class RestartPod(msgspec.Struct, frozen=True):
    """Every container has stopped for a pod restart: make a new sandbox and start over
    from the first init container (a pod restart, as the kubelet does it)."""


class SetupNetwork(msgspec.Struct, frozen=True):
    """The pod has no network yet (no free address): try again now."""


class WakeAt(msgspec.Struct, frozen=True):
    """Nothing to do before ``at`` (epoch seconds) unless a container changes."""

    at: float


Action = StartContainer | KillContainer | KillPod | RestartPod | SetupNetwork | WakeAt
