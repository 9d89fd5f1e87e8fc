"""An ordered map over a list, in this process and in helper processes forked from it (no Dagster).

`OrderedMap(function, items, processes)` yields `function(item)` for each item, in order. With `processes` > 1,
helper processes forked from this one call it too: they inherit `function` and `items` (nothing is pickled on
the way in, only results on the way out, through a queue whose feeder thread sends while the helper goes on).
Each item goes to whoever takes it first; this process takes the next one when the consumer asks for it, and
computes a few later ones while it waits for a helper's. A helper runs at most `HELPER_AHEAD` results ahead of
the consumer and this process `AHEAD`, so memory stays bounded. A helper's exception is raised here (as itself
when it can be pickled); an error here or in the consumer stops the helpers at once. Forking is for work that
touches no client shared with the parent (sockets, a cloud SDK's connection pool).
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import pickle
import queue
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from spotify_jobs.etl.files import peak_rss_bytes

T = TypeVar("T")
R = TypeVar("R")
# Results computed ahead of the consumer, by this process and by each helper: enough to keep them busy, few
# enough to bound memory.
AHEAD = 2
HELPER_AHEAD = 6
# What forked helpers work on, by run: they inherit it.
_FORKED_RUNS: dict[int, tuple[Callable, Sequence]] = {}
_RUN_IDS = itertools.count()


class _Claims:
    """Which items are taken: one shared counter, so that each item is mapped once, by whoever is free."""

    def __init__(self, context: multiprocessing.context.BaseContext, items: int):
        self.next = context.Value("q", 0)
        self.items = items

    def take_next(self) -> int | None:
        with self.next.get_lock():
            index = self.next.value
            if index >= self.items:
                return None
            self.next.value = index + 1
            return index

    def take(self, index: int) -> bool:
        """Take `index` if it is the next item nobody has taken."""
        with self.next.get_lock():
            if self.next.value != index:
                return False
            self.next.value = index + 1
            return True

    def close(self) -> None:
        """Leave nothing to take."""
        with self.next.get_lock():
            self.next.value = self.items


def _helper(run: int, claims: _Claims, slots, results) -> None:
    """A forked helper process: maps the next item nobody has taken while the consumer has fewer than `slots`
    of its results to take; puts (index, result, pid, peak RSS, error) on `results` (a queue, whose feeder
    thread sends while this one goes on)."""
    function, items = _FORKED_RUNS[run]
    while slots.acquire() and (index := claims.take_next()) is not None:
        try:
            result, error = function(items[index]), None
        except Exception as exc:  # the consumer raises it, as itself if it survives pickling
            result, error = None, exc
            try:
                pickle.dumps(exc)
            except Exception:  # whatever stops the pickling, the message still goes
                error = RuntimeError(f"{type(exc).__name__}: {exc}")
        results.put((index, result, os.getpid(), peak_rss_bytes(), error))
        if error is not None:
            return


class OrderedMap(Generic[T, R]):
    """`function(item)` for each of `items`, in order, computed here and, with `processes` > 1, in
    `processes` - 1 helper processes forked from this one. Iterate it once."""

    def __init__(self, function: Callable[[T], R], items: Sequence[T], processes: int):
        self.function, self.items, self.processes = function, items, processes
        self.helper_peaks: dict[int, int] = {}  # helper pid -> its peak RSS in bytes

    def _here(self, index: int) -> R:
        return self.function(self.items[index])

    def __iter__(self) -> Iterator[R]:
        if self.processes <= 1:
            for index in range(len(self.items)):
                yield self._here(index)
            return
        context = multiprocessing.get_context("fork")
        claims = _Claims(context, len(self.items))
        helpers = self.processes - 1
        slots = context.Semaphore(HELPER_AHEAD * helpers)
        results = context.Queue()
        run = next(_RUN_IDS)
        _FORKED_RUNS[run] = (self.function, self.items)
        processes = []
        completed = False
        gc.freeze()  # the garbage collector leaves what exists now alone: the helpers keep sharing those pages
        try:
            for _ in range(helpers):
                process = context.Process(target=_helper, args=(run, claims, slots, results), daemon=True)
                process.start()
                processes.append(process)
            yield from self._in_order(claims, slots, results, processes)
            completed = True
        finally:
            del _FORKED_RUNS[run]
            claims.close()
            for _ in range(helpers):
                slots.release()  # a helper waiting for a slot takes it, finds no item left and ends
            for process in processes:
                if completed:  # every result is in: the helpers are ending
                    process.join(timeout=10)
                if process.is_alive():  # stopped by an error here, or stuck: nothing of theirs is needed
                    process.kill()
                process.join()
            results.close()
            gc.unfreeze()

    def _in_order(self, claims: _Claims, slots, results, processes: list) -> Iterator[R]:
        from_helpers: dict[int, R] = {}
        done_here: dict[int, R] = {}
        for index in range(len(self.items)):
            while True:
                self._receive(results, from_helpers, processes, block=False)
                if index in done_here:
                    yield done_here.pop(index)
                elif index in from_helpers:
                    yield from_helpers.pop(index)
                    slots.release()
                elif claims.take(index):
                    yield self._here(index)
                elif len(done_here) < AHEAD and (later := claims.take_next()) is not None:
                    # A helper has this item: compute a later one meanwhile.
                    done_here[later] = self._here(later)
                    continue
                else:
                    self._receive(results, from_helpers, processes, block=True)
                    continue
                break

    def _receive(self, results, into: dict[int, R], processes: list, block: bool) -> None:
        """Take what the helpers have sent; with `block`, wait for at least one result."""
        while True:
            try:
                index, result, pid, peak, error = results.get(block=block, timeout=1 if block else None)
            except queue.Empty:
                if not block:
                    return
                if not any(process.is_alive() for process in processes):
                    raise RuntimeError("the helper processes ended before sending every result") from None
                continue
            if error is not None:
                raise error
            self.helper_peaks[pid] = max(peak, self.helper_peaks.get(pid, 0))
            into[index] = result
            block = False
