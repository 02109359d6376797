"""Limits that give a clear answer instead of a pile-up.

- `DUCKAPI_MAX_QUEUE`: a POST that arrives while `threads + max_queue` are already in
  progress in this worker is answered 503 with `Retry-After: 1` at once, from its
  headers, before its body is read (`Queue`, an ASGI middleware). Requests beyond the
  pipeline threads are the ones waiting for a thread (or for a batch).
- `DUCKAPI_REQUEST_TIMEOUT`: each POST gets a deadline when it arrives. The HTTP layer
  waits for its work no longer than that (`bounded`), and the work carries the
  deadline to its executor thread (`in_thread`), where the engine interrupts the
  DuckDB statement at that moment (engines/deadline.py): 504, and the thread's lane
  answers the next request as usual. Batched statements stop at their earliest
  request's deadline; their requests are then answered one by one, each by its own.
- `DUCKAPI_MAX_ROWS`: the rows of a request, summed over its inputs, after decoding
  and before executing: 413 naming the limit and the count (`check_rows`).
- `DUCKAPI_DUCKDB_MEMORY_LIMIT`: see `default_memory_limit`; a statement that needs
  more fails alone with 503 (the engine maps OutOfMemoryException to ResourceError).
- `DUCKAPI_EXECUTOR_NICE`: see `lower_priority`; refusals stay fast when every core
  is busy with statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import sys
import threading
import time
from functools import partial
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from duckapi.rows.formats import InputError
from duckapi.api.ops.early_answers import ASGIApp, Receive, Scope, Send
from duckapi.engines.deadline import run_with_deadline

T = TypeVar("T")

#: The deadline (time.monotonic()) of the request being handled, None without a timeout.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("duckapi_deadline", default=None)


class Queue:
    """ASGI middleware: refuse POSTs beyond `capacity` in progress; give each a deadline."""

    def __init__(self, app: ASGIApp, threads: int, max_queue: int, timeout: float) -> None:
        self.app = app
        self.capacity = threads + max_queue if max_queue > 0 else 0  # 0: no limit
        self.max_queue = max_queue
        self.timeout = timeout
        self.active = 0  # POSTs in progress in this worker (one event loop: no lock needed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        if self.capacity and self.active >= self.capacity:
            await _busy(send, self.max_queue)
            return
        self.active += 1
        token = _deadline.set(time.monotonic() + self.timeout if self.timeout > 0 else None)
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            _deadline.reset(token)


async def _busy(send: Send, max_queue: int) -> None:
    body = json.dumps({
        "detail": f"server busy: {max_queue} requests are already waiting for a pipeline thread "
                  "(DUCKAPI_MAX_QUEUE); retry shortly",
    }).encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"retry-after", b"1"),
    ]})
    await send({"type": "http.response.body", "body": body})


def deadline() -> float | None:
    """This request's deadline (time.monotonic()), None without a timeout."""
    return _deadline.get()


def in_thread(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    """fn(*args) for an executor, carrying this request's deadline to the thread."""
    return partial(run_with_deadline, _deadline.get(), fn, *args)


async def bounded(awaitable: Awaitable[T]) -> T:
    """The awaitable's result, or TimeoutError at this request's deadline (then cancelled:
    work not started yet never starts, a running statement is interrupted by the engine)."""
    at = _deadline.get()
    if at is None:
        return await awaitable
    return await asyncio.wait_for(awaitable, max(0.0, at - time.monotonic()))


def timeout_detail(timeout: float) -> str:
    return f"the request was not answered within the limit of {timeout:g} s (DUCKAPI_REQUEST_TIMEOUT); its statement was stopped"


def check_rows(tables: Sequence[Any], limit: int) -> None:
    """413 when the request's rows, over all its inputs, are more than `limit` (0: none)."""
    if limit <= 0:
        return
    count = sum(table.num_rows for table in tables)
    if count > limit:
        raise InputError(413, f"the request has {count} rows, more than the limit of {limit} rows (DUCKAPI_MAX_ROWS)")


def lower_priority(nice: int) -> Callable[[], None]:
    """An executor initializer: the calling pipeline thread runs `nice` steps nicer.

    Under overload every core runs statements, and the event loop, which answers the
    503s and moves every request's bytes, waited its turn behind them: an independent
    client's 503s took 10.6-14.4 ms at p99 in a 4x overload, 7.8-8.1 ms with the pipeline
    threads at nice 10 (docs/benchmarks.md). Linux sets priority per thread (and the
    threads DuckDB starts from this one inherit it); raising niceness needs no privilege.
    On other systems it does nothing."""

    def initializer() -> None:
        if nice and sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)

    return initializer

