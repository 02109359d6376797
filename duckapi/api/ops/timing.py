"""Server-Timing: where one request's time went (decoding its rows, waiting for a pipeline
thread, the statement), for a client or a proxy to see without the server's logs."""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")


class Timing:
    """One request's durations, in seconds; None for a step it did not take."""

    __slots__ = ("decode", "queue", "run")

    def __init__(self, decode: float) -> None:
        self.decode = decode
        self.queue: float | None = None
        self.run: float | None = None

    def in_thread(self, fn: Callable[..., T]) -> Callable[..., T]:
        """`fn` for a pipeline thread: the wait for the thread is `queue`, the call `run`."""
        submitted = time.perf_counter()

        def timed(*args: Any) -> T:
            started = time.perf_counter()
            self.queue = started - submitted
            try:
                return fn(*args)
            finally:
                self.run = time.perf_counter() - started

        return timed

    async def statement(self, awaitable: Awaitable[T]) -> T:
        """A statement run elsewhere (a batch): its whole wait counts as the statement."""
        started = time.perf_counter()
        try:
            return await awaitable
        finally:
            self.run = time.perf_counter() - started

    def header(self) -> str:
        steps = [("decode", self.decode), ("queue", self.queue), ("statement", self.run)]
        return ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in steps if seconds is not None)
