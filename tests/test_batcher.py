"""Batched execution: many small requests in one statement, each answered from its own rows."""

from __future__ import annotations

import asyncio
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Iterator

import pyarrow as pa
import pytest

from duckapi.dbt import project
from duckapi.api.batcher import BATCH_MIN, Batcher
from duckapi.engines import ExecutionError
from duckapi.engines.duckdb import BOUND_ROWS
from duckapi.pipeline import Pipeline
from duckapi.serving.service import Service
from tests.conftest import Built, settings_in
from tests.oracle import analyse
from tests.payloads import random_rows
from tests.test_project_features import FEATURES

PATH = "/analyse_data/"


@pytest.fixture(scope="module")
def service(built: Built) -> Iterator[Service]:
    service = Service(built.settings, built.manifest)
    yield service
    service.close()


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    settings = settings_in(tmp_path_factory.mktemp("batch-features"), project_dir=FEATURES)
    service = Service(settings, project.build(settings))
    yield service
    service.close()


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table({
        "group_id": pa.array([r["group_id"] for r in rows], pa.string()),
        "event_value": pa.array([r["event_value"] for r in rows], pa.int64()),
    })


def _payloads(seed: int, count: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    sizes = [0, 1, 9, 256]
    return [random_rows(rng, sizes[i] if i < len(sizes) else rng.randint(0, 256), groups=rng.randint(1, 12), big=i % 3 == 0)
            for i in range(count)]


def _run_batcher(service: Service, pipeline: Pipeline, tables: list[pa.Table], threads: int = 1) -> tuple[list[Any], int]:
    """Submit every table at once to a Batcher over `threads` threads; outcomes and batch count."""

    async def main() -> tuple[list[Any], int]:
        with ThreadPoolExecutor(threads) as executor:
            batcher = Batcher(service.engine, executor, threads, max_batch=16)
            jobs = [batcher.execute_json(pipeline, t) for t in tables]
            outcomes = await asyncio.gather(*jobs, return_exceptions=True)
            return outcomes, batcher.statements

    return asyncio.run(main())


def test_the_bundled_pipeline_is_batchable(service: Service) -> None:
    pipeline = service.state.endpoints[PATH].pipeline
    assert pipeline.single_row and pipeline.batchable
    sql = pipeline.batch_sql("to_json(o)::varchar")
    assert "$1::bigint[]" in sql and "$2::varchar[][]" in sql and "$3::bigint[][]" in sql


def test_a_batch_answers_each_request_exactly_as_alone(service: Service) -> None:
    pipeline = service.state.endpoints[PATH].pipeline
    payloads = _payloads(21, 40)
    tables = [_table(rows) for rows in payloads]
    alone = [service.engine.execute_json(pipeline, (t,)) for t in tables]
    for size in (2, 3, 8, 16):
        batched: list[bytes] = []
        for start in range(0, len(tables), size):
            batched += service.engine.execute_json_batch(pipeline, tables[start:start + size])
        assert batched == alone  # byte for byte
    assert [json.loads(a) for a in alone] == [analyse(rows) for rows in payloads]


def test_queued_requests_are_batched_and_each_gets_its_answer(service: Service) -> None:
    pipeline = service.state.endpoints[PATH].pipeline
    payloads = _payloads(5, 40)
    outcomes, statements = _run_batcher(service, pipeline, [_table(rows) for rows in payloads])
    assert statements >= 1  # one thread, 40 waiting: most ran batched
    assert [json.loads(o) for o in outcomes] == [analyse(rows) for rows in payloads]


def test_a_few_waiting_requests_run_one_by_one(service: Service) -> None:
    pipeline = service.state.endpoints[PATH].pipeline
    payloads = _payloads(6, BATCH_MIN - 1)
    outcomes, statements = _run_batcher(service, pipeline, [_table(rows) for rows in payloads])
    assert statements == 0
    assert [json.loads(o) for o in outcomes] == [analyse(rows) for rows in payloads]


def _events(rows: list[tuple[str, int | None]]) -> pa.Table:
    return pa.table({"k": pa.array([k for k, _ in rows], pa.string()), "v": pa.array([v for _, v in rows], pa.int64())})


def test_materialized_models_are_computed_once_per_request_within_a_batch(features: Service) -> None:
    """`shared` (a table model with random()) must be one value per request, not per batch."""
    pipeline = features.state.pipeline("/features/", ["d1", "d2", "d3"])
    assert pipeline.batchable
    tables = [_events([("a", v) for v in range(n)]) for n in range(1, 7)]
    answers = [json.loads(a)[0] for a in features.engine.execute_json_batch(pipeline, tables)]
    randoms = [a["d1"]["r"] for a in answers]
    assert len(set(randoms)) == len(tables)  # a fresh evaluation for every request
    for n, answer in enumerate(answers, start=1):
        assert answer["d1"]["r"] == answer["d2"]["r"] == answer["d3"]["r"]  # ...shared by its dependents
        assert answer["d1"]["n"] == n and answer["d3"]["total"] == sum(range(n))


def test_one_failing_request_does_not_fail_the_others_in_its_batch(features: Service) -> None:
    """`boom` errors on any non-null v: in a batch, only the requests that have one fail."""
    pipeline = features.state.pipeline("/features/", None)
    good, bad = _events([("a", None), ("b", None)]), _events([("a", 1)])
    tables = [good, bad, good, good, bad, good]
    with pytest.raises(ExecutionError):
        features.engine.execute_json_batch(pipeline, tables)
    outcomes, _ = _run_batcher(features, pipeline, tables)
    for table, outcome in zip(tables, outcomes):
        if table is bad:
            assert isinstance(outcome, ExecutionError) and "boom" in str(outcome)
        else:
            (answer,) = json.loads(outcome)
            assert answer["d1"]["n"] == 0 and answer["d3"]["total"] == 0 and answer["boom"] == 0


def test_multi_row_models_are_not_batched(features: Service) -> None:
    pipeline = features.state.endpoints["/features/"].pipeline
    many = replace(pipeline, single_row=False)
    with pytest.raises(ValueError):
        many.batch_sql("*")
    assert not features.engine.batchable(many)


def test_max_batch_one_turns_batching_off(service: Service) -> None:
    pipeline = service.state.endpoints[PATH].pipeline
    with ThreadPoolExecutor(1) as executor:
        assert Batcher(service.engine, executor, 1, max_batch=16).accepts(pipeline, (_table([]),))
        assert not Batcher(service.engine, executor, 1, max_batch=1).accepts(pipeline, (_table([]),))
    big = _table(random_rows(random.Random(1), BOUND_ROWS + 1))
    with ThreadPoolExecutor(1) as executor:
        assert not Batcher(service.engine, executor, 1, max_batch=16).accepts(pipeline, (big,))


def test_requests_cancelled_while_waiting_are_skipped(service: Service) -> None:
    pipeline = service.state.endpoints[PATH].pipeline
    payloads = _payloads(9, 12)

    async def main() -> tuple[list[Any], int]:
        with ThreadPoolExecutor(1) as executor:
            batcher = Batcher(service.engine, executor, 1, max_batch=16)
            tasks = [asyncio.ensure_future(batcher.execute_json(pipeline, _table(rows))) for rows in payloads]
            await asyncio.sleep(0)  # all submitted; the first runs, the rest wait
            for task in tasks[1::2]:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            return outcomes, batcher.batched_requests

    outcomes, batched = asyncio.run(main())
    for i, (rows, outcome) in enumerate(zip(payloads, outcomes)):
        if i % 2:
            assert isinstance(outcome, asyncio.CancelledError)
        else:
            assert json.loads(outcome) == analyse(rows)
    assert batched <= len(payloads) // 2  # the cancelled ones were never computed in a batch


def test_a_free_thread_lingers_only_under_sustained_load(service: Service) -> None:
    """Waiting for batch-mates pays only while batches are forming and another thread is busy."""
    pipeline = service.state.endpoints[PATH].pipeline
    with ThreadPoolExecutor(2) as executor:
        batcher = Batcher(service.engine, executor, 2, max_batch=16)
        batcher._waiting[pipeline] = [(_table([]), None)]  # type: ignore[list-item]
        batcher._idle = 0  # both runners active: this one and another
        assert not batcher._under_load()  # no batch has run yet: low load, run at once
        batcher._last_batch = time.monotonic()
        assert batcher._under_load()
        batcher._idle = 1  # the other thread is free: nothing to wait for
        assert not batcher._under_load()
        batcher._idle = 0
        batcher._waiting[pipeline] *= BATCH_MIN  # enough to batch now
        assert not batcher._under_load()
