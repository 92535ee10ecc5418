"""Pod updates (``nsrun apply``): what may change on a running pod, and what it restarts (pure).

Kubernetes lets a Pod's ``image`` fields and ``activeDeadlineSeconds`` change (the latter only
added or lowered; Kubernetes' ValidatePodUpdate). As in Kubernetes' init-container
documentation, a changed init container image restarts the whole pod (every init container runs again); a
changed app container image restarts only that container.
"""

from __future__ import annotations

import msgspec

from nsrun.core.spec import Pod
from nsrun.errors import Problem

FORBIDDEN_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)")


class UpdatePlan(msgspec.Struct, frozen=True):
    """What an accepted update does to the running pod."""

    restart_pod: bool = False
    restart_containers: tuple[str, ...] = ()
    changed: tuple[str, ...] = msgspec.field(default=())

    @property
    def noop(self) -> bool:
        return not self.changed


def _without_mutable(pod: Pod) -> dict:
    """The pod as data with every mutable field blanked out."""
    data = msgspec.to_builtins(pod)
    spec = data.get("spec", {})
    for key in ("containers", "initContainers"):
        for c in spec.get(key, []):
            c.pop("image", None)
    spec.pop("activeDeadlineSeconds", None)
    data.get("metadata", {}).pop("uid", None)
    return data


def validate_update(old: Pod, new: Pod) -> list[Problem]:
    """Kubernetes' update rules: every problem, with its field path and message."""
    if old.metadata.name != new.metadata.name:
        return [Problem("metadata.name", "Invalid value",
                        f'"{new.metadata.name}": field is immutable')]
    if [c.name for c in old.spec.containers] != [c.name for c in new.spec.containers] or \
            [c.name for c in old.spec.init_containers] != [
                c.name for c in new.spec.init_containers]:
        return [Problem("spec.containers", "Forbidden", "pod updates may not add or remove "
                        "containers")]
    problems = _deadline_problems(old.spec.active_deadline_seconds,
                                  new.spec.active_deadline_seconds)
    if _without_mutable(old) != _without_mutable(new):
        problems.append(Problem("spec", "Forbidden", FORBIDDEN_MESSAGE))
    return problems


def _deadline_problems(old: int | None, new: int | None) -> list[Problem]:
    path = "spec.activeDeadlineSeconds"
    if old is not None and new is None:
        return [Problem(path, "Invalid value",
                        "null: must not update from a positive integer to nil value")]
    if old is not None and new is not None and new > old:
        return [Problem(path, "Invalid value",
                        f"{new}: must be less than or equal to previous value")]
    return []


def plan_update(old: Pod, new: Pod) -> UpdatePlan:
    """What an update (already validated) changes and restarts."""
    inits = [c.name for o, c in zip(old.spec.init_containers, new.spec.init_containers,
                                    strict=True) if o.image != c.image]
    apps = [c.name for o, c in zip(old.spec.containers, new.spec.containers, strict=True)
            if o.image != c.image]
    deadline = old.spec.active_deadline_seconds != new.spec.active_deadline_seconds
    changed = tuple(inits + apps + (["activeDeadlineSeconds"] if deadline else []))
    if inits:
        return UpdatePlan(restart_pod=True, changed=changed)
    return UpdatePlan(restart_containers=tuple(apps), changed=changed)
