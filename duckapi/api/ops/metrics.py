"""Prometheus metrics, served at `GET /metrics` in the text exposition format.

One `Metrics` per app, with its own registry (several apps in one process, as in the
tests, do not collide). With several uvicorn workers each is a process of its own:
`duckapi serve` points PROMETHEUS_MULTIPROC_DIR at a fresh folder before the workers
start (ops/multiproc.py), prometheus-client then keeps every worker's values in files
there, and a scrape, whichever worker answers it, sums them (gauges: the live
processes' values, `livesum`/`livemin`). Without that variable (one in-process app)
the values are plain in-memory ones.

README "### Metrics" lists each metric and its labels.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess, values
from starlette.responses import Response

from duckapi.api.ops.requests import RequestInfo

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (3, 4, 6, 8, 12, 16, 24, 32, 64, 128)
COMPILE_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0, 120.0)


def multiprocess_mode() -> bool:
    """Whether prometheus-client keeps values in files (it chose at import, from the
    environment `duckapi serve` prepared)."""
    return values.ValueClass is not values.MutexValue


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = multiprocess_mode()
        r = self.registry
        self.requests = Counter(
            "duckapi_requests", "Answered requests by endpoint, method, status, request body format and answer format",
            ("endpoint", "method", "status", "body_format", "answer_format"), registry=r,
        )
        self.latency = Histogram(
            "duckapi_request_duration_seconds", "Time from the request's arrival to its last answer byte",
            ("endpoint",), buckets=LATENCY_BUCKETS, registry=r,
        )
        self.rows_in = Counter("duckapi_rows_in", "Rows decoded from request bodies (all inputs)", ("endpoint",), registry=r)
        self.batch_size = Histogram(
            "duckapi_batch_size", "Requests answered by one batched statement (api/batcher.py)",
            buckets=BATCH_BUCKETS, registry=r,
        )
        self.in_flight = Gauge(
            "duckapi_requests_in_flight", "Requests being answered", registry=r, multiprocess_mode="livesum",
        )
        self.queued = Gauge(
            "duckapi_requests_queued", "Requests (or batches) waiting for a pipeline thread",
            registry=r, multiprocess_mode="livesum",
        )
        self.compiles = Counter(
            "duckapi_compiles", "Project compiles after start-up: kind vars (a new vars variant) or reload",
            ("kind", "outcome"), registry=r,
        )
        self.compile_seconds = Histogram(
            "duckapi_compile_duration_seconds", "Duration of those compiles (dbt compile and the check run)",
            ("kind",), buckets=COMPILE_BUCKETS, registry=r,
        )
        self.reference_version = Gauge(
            "duckapi_reference_data_version",
            "Warehouse snapshot version the current state serves (0: none); several workers: the oldest",
            registry=r, multiprocess_mode="livemin",
        )

    # --- requests (ops/requests.py calls these) ---

    def start(self) -> None:
        self.in_flight.inc()

    def finish(self, info: RequestInfo, seconds: float) -> None:
        self.in_flight.dec()
        self.requests.labels(info.endpoint, info.method, str(info.status), info.body_format, info.answer_format).inc()
        self.latency.labels(info.endpoint).observe(seconds)
        if info.rows_in is not None:
            self.rows_in.labels(info.endpoint).inc(info.rows_in)

    def shutdown(self) -> None:
        """This process's live gauges leave the sums (a worker that stops)."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())

    # --- hooks of the batcher and the service ---

    def attach(self, service: Any, batcher: Any) -> None:
        """Count the batcher's waiting requests and batch sizes, and the service's compiles."""
        batcher.on_queue, batcher.on_batch = self.queue, self.batch
        service.on_compile = self.compiled
        self.serving(service.state)

    def queue(self, change: int) -> None:
        self.queued.inc(change)

    def batch(self, size: int) -> None:
        self.batch_size.observe(size)

    def compiled(self, kind: str, seconds: float, state: Any | None) -> None:
        """Service.on_compile: `state` is the compiled ProjectState, None if it failed."""
        self.compiles.labels(kind, "ok" if state is not None else "error").inc()
        self.compile_seconds.labels(kind).observe(seconds)
        if kind == "reload" and state is not None:
            self.serving(state)

    def serving(self, state: Any) -> None:
        self.reference_version.set(state.warehouse.version if state.warehouse is not None else 0)

    def executor(self, threads: int, **kwargs: Any) -> ThreadPoolExecutor:
        return CountingExecutor(threads, self.queue, **kwargs)

    # --- the scrape ---

    def response(self) -> Response:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that reports how many submitted calls wait for a thread."""

    def __init__(self, threads: int, queue: Callable[[int], None], **kwargs: Any) -> None:
        super().__init__(threads, **kwargs)
        self._queue = queue

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        queue = self._queue

        def started() -> Any:
            queue(-1)
            return fn(*args, **kwargs)

        queue(1)
        try:
            future = super().submit(started)
        except BaseException:
            queue(-1)
            raise
        # A call cancelled before it started never runs `started`.
        future.add_done_callback(lambda f: queue(-1) if f.cancelled() else None)
        return future
