"""The ordered map over forked helper processes: results in order, each item once, errors raised here."""

from __future__ import annotations

import functools
import multiprocessing
import os

import pytest

from spotify_jobs.etl.forked import OrderedMap


def _square_and_pid(item: int) -> tuple[int, int]:
    return item * item, os.getpid()


@pytest.mark.parametrize("processes", [1, 2, 4])
def test_results_come_in_order_each_item_once(processes):
    items = list(range(200))
    mapped = OrderedMap(_square_and_pid, items, processes)
    results = list(mapped)
    assert [square for square, _ in results] == [i * i for i in items]
    pids = {pid for _, pid in results}
    assert pids <= {os.getpid(), *mapped.helper_peaks}
    assert len(mapped.helper_peaks) <= processes - 1 if processes > 1 else mapped.helper_peaks == {}
    assert multiprocessing.active_children() == []


class _Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("not picklable")


PARENT = os.getpid()
HELPER_STARTED = multiprocessing.get_context("fork").Event()


def _fail_in_helpers(item: int, error: type[Exception]) -> int:
    if os.getpid() != PARENT:
        HELPER_STARTED.set()
        raise error(f"item {item} failed")
    if item == 0:  # so that a helper takes item 1 whatever the timing
        assert HELPER_STARTED.wait(timeout=60)
    return item


@pytest.mark.parametrize(("error", "raised"), [(ValueError, ValueError), (_Unpicklable, RuntimeError)])
def test_a_helper_error_is_raised_here_and_the_helpers_stop(error, raised):
    HELPER_STARTED.clear()
    with pytest.raises(raised, match=r"item \d+ failed"):
        list(OrderedMap(functools.partial(_fail_in_helpers, error=error), list(range(50)), 3))
    assert multiprocessing.active_children() == []
