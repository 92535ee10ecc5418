"""The kubelet's crash-loop back-off, as a pure function of a container's attempts.

First restart immediate, then ``initial`` doubling per consecutive failure up to ``maximum``
(10 s → 300 s by default). The count resets once an attempt ran for 2 × ``maximum`` (the
kubelet forgets an entry not updated for 2 × max: ten minutes of clean running), and when the
container's definition changed (``nsrun apply`` of a new image): the kubelet's back-off key
holds the container's hash, so a new image starts with a clean slate.
"""

from __future__ import annotations

import msgspec

from nsrun.core.observed import Attempt


class BackoffPolicy(msgspec.Struct, frozen=True):
    initial: float = 10.0
    maximum: float = 300.0


KUBELET = BackoffPolicy()  # 10 s doubling to 300 s


def consecutive_failures(attempts: tuple[Attempt, ...], policy: BackoffPolicy) -> int:
    """Finished attempts counted back from the latest, stopping after one that ran long
    enough to reset the back-off."""
    count = 0
    for attempt in reversed(attempts):
        if attempt.restart_requested:
            break  # the last attempt of the former definition: a new back-off key
        if attempt.running:
            continue
        count += 1
        if (attempt.finished_at or 0) - attempt.started_at >= 2 * policy.maximum:
            break
    return count


def delay(failures: int, policy: BackoffPolicy) -> float:
    """Seconds to wait before the restart that follows ``failures`` consecutive failures."""
    if failures <= 1:
        return 0.0
    return min(policy.initial * 2 ** (failures - 2), policy.maximum)


def restart_at(attempts: tuple[Attempt, ...], policy: BackoffPolicy) -> float:
    """When the next attempt may start (epoch seconds); the last attempt must be finished."""
    last = attempts[-1]
    return (last.finished_at or last.started_at) + delay(
        consecutive_failures(attempts, policy), policy)


def start_retry_at(failed_starts: int, last_failed: float, policy: BackoffPolicy) -> float:
    """When to retry a start that failed before any process ran (missing image)."""
    return last_failed + min(policy.initial * 2 ** max(0, failed_starts - 1), policy.maximum)
