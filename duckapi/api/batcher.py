"""Small JSON requests that queue up behind busy threads run together, as one statement.

A request normally runs alone, one per executor thread. When every thread is busy,
small requests wait here, grouped by pipeline; a thread that frees up takes up to
`max_batch` of one pipeline's waiting requests and answers them all with one
statement (Pipeline.batch_sql). Why: for a small request DuckDB's cost is nearly all
per statement (parse, bind, optimise, schedule: about 3 ms for the bundled project's
9 rows), so one statement for 16 requests costs about what three cost alone.
Answers are byte-identical either way (tests/test_batcher.py), and a batch that
fails is answered request by request, so one request's bad rows never fail another.
Under no load nothing waits: a request finds a free thread and runs alone.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from typing import Callable, Optional, Sequence, Union

from duckapi.engines import ExecutionError, ResourceError
from duckapi.engines.deadline import deadline as thread_deadline
from duckapi.engines.duckdb import BOUND_ROWS, DuckDBEngine
from duckapi.pipeline import Pipeline
from duckapi.rows.columns import InputRows

#: Fewer waiting requests than this run one by one: a batched statement plans a
#: correlated subquery, which costs about as much as two requests alone.
BATCH_MIN = 3
#: Under sustained load (a batch ran within LOAD_WINDOW_S, another thread is busy) a
#: thread that finds fewer than BATCH_MIN waiting lingers this long for more: the
#: requests whose answers just went out are on their way back. Measured on 2 cores
#: at concurrency 8: ~89% of requests batched instead of ~67%, ~9% more throughput.
LINGER_S = 0.001
LOAD_WINDOW_S = 0.1

Outcome = Union[bytes, ExecutionError, ResourceError]
Waiting = tuple[InputRows, "asyncio.Future[bytes]", Optional[float]]  # rows, answer, deadline


class Batcher:
    def __init__(self, engine: DuckDBEngine, executor: Executor, threads: int, max_batch: int) -> None:
        self._engine = engine
        self._executor = executor
        self._threads = threads
        self._idle = threads  # runners that may start: at most one per executor thread
        self._max_batch = max(1, max_batch)
        self._waiting: dict[Pipeline, list[Waiting]] = {}  # oldest pipeline first
        self._last_batch = -LOAD_WINDOW_S
        self.statements = 0  # batched statements run, and the requests they answered
        self.batched_requests = 0
        # Metrics hooks (api/ops/metrics.py): waiting requests added (+1) or taken (-n),
        # and the size of each batched statement.
        self.on_queue: Callable[[int], None] = lambda change: None
        self.on_batch: Callable[[int], None] = lambda size: None

    def accepts(self, pipeline: Pipeline, tables: Sequence[InputRows]) -> bool:
        """Small requests of a batchable (single-input, single-row) pipeline."""
        return self._max_batch > 1 and pipeline.batchable and len(tables) == 1 and tables[0].num_rows <= BOUND_ROWS

    async def execute_json(self, pipeline: Pipeline, table: InputRows, deadline: float | None = None) -> bytes:
        """The answer; its statement stops at `deadline` (time.monotonic(), engines/deadline.py)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._waiting.setdefault(pipeline, []).append((table, future, deadline))
        self.on_queue(1)
        if self._idle:
            self._idle -= 1
            loop.create_task(self._run())
        return await future

    def _under_load(self) -> bool:
        """Worth waiting for more: few wait, but batches ran lately and a thread is busy."""
        few = len(next(iter(self._waiting.values()))) < BATCH_MIN
        busy = self._threads - self._idle > 1  # this runner counts as busy too
        return few and busy and time.monotonic() - self._last_batch < LOAD_WINDOW_S

    def _take(self) -> tuple[Pipeline, list[Waiting]]:
        """The oldest pipeline's waiting requests: all (up to max_batch) if they are
        enough to batch, else just the first, leaving the rest to other threads."""
        pipeline, waiting = next(iter(self._waiting.items()))
        count = min(len(waiting), self._max_batch) if len(waiting) >= BATCH_MIN else 1
        taken, rest = waiting[:count], waiting[count:]
        del self._waiting[pipeline]
        self.on_queue(-count)
        if rest:
            self._waiting[pipeline] = rest  # to the back: other pipelines go next
        if count > 1:
            self._last_batch = time.monotonic()
        return pipeline, [w for w in taken if not w[1].cancelled()]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                if self._under_load():
                    await asyncio.sleep(LINGER_S)
                    if not self._waiting:
                        break
                pipeline, taken = self._take()
                if not taken:
                    continue
                try:
                    outcomes, batched = await loop.run_in_executor(
                        self._executor, self._answer, pipeline, [t for t, _, _ in taken], [d for _, _, d in taken]
                    )
                    if batched:
                        self.statements += 1
                        self.batched_requests += len(taken)
                        self.on_batch(len(taken))
                except BaseException as exc:  # e.g. the executor shut down: nobody may hang
                    outcomes = [exc] * len(taken)  # type: ignore[list-item]
                for (_, future, _), outcome in zip(taken, outcomes):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._idle += 1

    def _answer(
        self, pipeline: Pipeline, tables: list[InputRows], deadlines: Sequence[float | None] = ()
    ) -> tuple[list[Outcome], bool]:
        """Outcomes in order, and whether one batched statement gave them. A batch stops
        halfway to its earliest deadline, leaving its requests time to be answered one
        by one, each stopping at its own (a slow one must not time the others out)."""
        deadlines = list(deadlines) or [None] * len(tables)
        if len(tables) > 1:
            known = [d for d in deadlines if d is not None]
            now = time.monotonic()
            try:
                with thread_deadline(now + (min(known) - now) / 2 if known else None):
                    return list(self._engine.execute_json_batch(pipeline, tables)), True
            except (ExecutionError, ResourceError):
                pass  # one request's rows (or time) can fail a batch: answer each on its own
        outcomes: list[Outcome] = []
        for table, at in zip(tables, deadlines):
            try:
                with thread_deadline(at):
                    outcomes.append(self._engine.execute_json(pipeline, (table,)))
            except (ExecutionError, ResourceError) as exc:
                outcomes.append(exc)
        return outcomes, False
