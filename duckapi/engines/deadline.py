"""Statements that run past their request's deadline are interrupted.

The caller (the HTTP layer) runs a request's work on an executor thread inside
`deadline(at)`; the engine arms every statement it runs there (`armed(cursor)`). At
the deadline one watchdog thread calls `interrupt()` on that statement's cursor:
DuckDB stops the statement (InterruptException) and the engine raises
StatementTimeout. Only that cursor is interrupted, and it is closed as usual, so the
thread's database (its "lane") answers the next request normally. Work whose deadline
has passed before it starts is not started. One watchdog thread for every statement
rather than a Timer thread each: arming is a heap push under a lock, cheap next to
the smallest request. No deadline (the default, start-up, `duckapi run`): nothing armed.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from duckapi.engines import StatementTimeout

_local = threading.local()


@contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Statements run by this thread meanwhile stop at `at` (time.monotonic())."""
    previous = getattr(_local, "at", None)
    _local.at = at
    try:
        yield
    finally:
        _local.at = previous


def current() -> float | None:
    return getattr(_local, "at", None)


def check() -> None:
    """StatementTimeout if this thread's deadline has passed: do not start the work."""
    at = current()
    if at is not None and time.monotonic() >= at:
        raise StatementTimeout("the request's time ran out before its statement started")


def run_with_deadline(at: float | None, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) on this thread with `at` as its deadline (for an executor)."""
    with deadline(at):
        return fn(*args)


class Watchdog:
    """One thread that calls each armed callback at its time unless disarmed first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[list[Any]] = []  # [at, seq, callback or None when disarmed]
        self._seq = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def arm(self, at: float, callback: Callable[[], None]) -> list[Any]:
        entry = [at, next(self._seq), callback]
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="duckapi-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._cond.notify()
        return entry

    def disarm(self, entry: list[Any]) -> None:
        """After this returns the callback has run or never will (it runs under the lock)."""
        with self._cond:
            entry[2] = None

    def _loop(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                callback = heapq.heappop(self._heap)[2]
                try:
                    callback()
                except Exception:  # e.g. the connection closed meanwhile: nothing to stop
                    pass


WATCHDOG = Watchdog()


@contextmanager
def armed(cursor: Any) -> Iterator[None]:
    """Interrupt `cursor` at this thread's deadline, if it has one, while inside."""
    at = current()
    if at is None:
        yield
        return
    check()
    entry = WATCHDOG.arm(at, cursor.interrupt)
    try:
        yield
    finally:
        WATCHDOG.disarm(entry)
