"""Warm lanes: the first requests after a start or a reload cost what later ones do.

Each pipeline thread has its own DuckDB database (a lane). Its first request used to pay
for opening it, attaching the warehouse snapshot and planning the statement: about
30 ms against 5 ms after (docs/benchmarks.md). So at start-up (before the server takes
connections) and on every reload (before the new state takes requests), every thread
of the executor warms its own lane: each endpoint's statement run once over no rows
(engines/duckdb.py DuckDBEngine.warm), and once over one plausible row per input, so
every operator has run once. A barrier holds each warming task until all
have started, so each runs on a thread of its own. Data-dependent endpoints render per
request and are not warmed; parts and vars variants neither.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import Executor
from typing import Any

from duckapi.pipeline.contract import column_type
from duckapi.engines.duckdb import DuckDBEngine
from duckapi.errors import InputError
from duckapi.library.project import Call, Project
from duckapi.serving.service import ProjectState


def warm(project: Project, state: ProjectState, executor: Executor, threads: int) -> None:
    """Warm every one of `threads` executor threads' lanes for `state`'s endpoints."""
    pipelines, tables = [], []
    for path, served in state.endpoints.items():
        if served.renderings is not None:
            continue
        call = project.call_in(state, path)
        one_row = [[{c.name: _sample(c.data_type) for c in item.columns}] for item in call.pipeline.inputs]
        for rows in ([[] for _ in call.pipeline.inputs], one_row):
            try:
                tables.append(call.read(_body(call, rows), "json"))
            except (InputError, ValueError):  # a made-up row the contract refuses: no rows only
                continue
            pipelines.append(call.pipeline)
    engine: DuckDBEngine = project.service.engine
    barrier = threading.Barrier(threads)

    def one_lane() -> None:
        barrier.wait(timeout=60)
        engine.warm(pipelines, tables)

    for future in [executor.submit(one_lane) for _ in range(threads)]:
        future.result()


def _body(call: Call, rows: list[list[dict[str, Any]]]) -> bytes:
    """Rows per input as the JSON body a request would send."""
    inputs = call.pipeline.inputs
    if len(inputs) == 1:
        return json.dumps(rows[0]).encode()
    return json.dumps({item.name: item_rows for item, item_rows in zip(inputs, rows)}).encode()


#: One plausible value per kind of column (pipeline/contract.py): a row that runs every operator once.
_SAMPLES: dict[str, Any] = {
    "varchar": "a", "integer": 1, "decimal": 1, "float": 1.0, "boolean": True, "date": "2000-01-01",
    "time": "00:00:00", "timestamp": "2000-01-01T00:00:00", "timestamptz": "2000-01-01T00:00:00Z",
    "uuid": "00000000-0000-0000-0000-000000000000", "blob": "", "nested": None,
}


def _sample(data_type: str) -> Any:
    return _SAMPLES[column_type(data_type).kind]
