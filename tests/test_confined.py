"""A stranger's file is read in a forked child under limits (jobsite/confined.py): every way the child can go wrong
is a `Failed` for the caller, and the caller's own memory never holds what the child built."""

from __future__ import annotations

import resource
import time

import pytest

from jobsite import confined


def spin(_content: bytes) -> None:
    while True:
        pass


def hoard(_content: bytes) -> int:
    return len(bytearray(2**31))  # 2 GB


def nap(_content: bytes) -> None:
    time.sleep(30)


def crash(_content: bytes) -> None:
    raise ValueError("broken")


def test_the_answer_comes_back() -> None:
    assert confined.run(lambda content: {"size": len(content)}, b"abc") == {"size": 3}


@pytest.mark.parametrize(
    ("function", "limits"),
    [
        (spin, confined.Limits(cpu_s=1, wall_s=20)),
        (hoard, confined.Limits(memory_mb=64)),
        (nap, confined.Limits(wall_s=0.5)),
        (crash, confined.Limits()),
    ],
    ids=["cpu", "memory", "wall-clock", "crash"],
)
def test_a_child_past_a_limit_is_a_failure_and_the_parent_stays_small(function, limits) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(confined.Failed):
        confined.run(function, b"", limits)
    assert time.monotonic() - started < limits.wall_s + 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 20 * 1024  # KiB
