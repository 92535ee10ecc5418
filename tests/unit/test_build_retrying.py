"""``podcgroup.build_retrying``: the one retry rule both cgroup drivers share when a
concurrent pod's teardown removes an empty level between their ``mkdir``s."""

from __future__ import annotations

import errno

import pytest

from nsrun.errors import CgroupError
from nsrun.host.podcgroup import build_retrying

GONE = CgroupError("create cgroup", "/x/burstable", errno.ENOENT)
DENIED = CgroupError("create cgroup", "/x", errno.EACCES)
WRITE_GONE = CgroupError("write", "/x/cpu.max", errno.ENOENT)


@pytest.mark.parametrize("failures, attempts, raised", [
    ([], 1, None),                              # built at once
    ([GONE], 2, None),                          # a level vanished once: again
    ([GONE, GONE], 3, None),                    # twice: the third try builds
    ([GONE, GONE, GONE], 3, GONE),              # three times: give up with the error
    ([DENIED], 1, DENIED),                      # any other errno is final
    ([WRITE_GONE], 1, WRITE_GONE),              # ENOENT of a write is not the race
    ([KeyboardInterrupt()], 1, KeyboardInterrupt),  # anything else undoes and goes on up
])
def test_retry_table(failures, attempts, raised):
    made, undone = [], []
    left = list(failures)

    def build(pod):
        if left:
            raise left.pop(0)
        return f"built {pod}"

    def make():
        made.append(len(made))
        return made[-1]

    if raised is None:
        assert build_retrying(make, build, undone.append) == (attempts - 1,
                                                              f"built {attempts - 1}")
        assert undone == list(range(attempts - 1))
    else:
        with pytest.raises(raised if isinstance(raised, type) else CgroupError) as e:
            build_retrying(make, build, undone.append)
        assert isinstance(raised, type) or e.value is raised
        assert undone == list(range(attempts))
    assert made == list(range(attempts))
