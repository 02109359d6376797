"""Limits answer clearly instead of piling up (duckapi/api/ops/limits.py): too many rows
(413), a full queue (503 + Retry-After), a request past its time (504, its DuckDB
statement interrupted, batched or not), a statement past the memory limit (503); after
each the next request is answered correctly. The slow project (tests/projects/slow)
does work on range(n) for each row's n."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from duckapi.dbt import project
from duckapi.api.app import create_app
from duckapi.rows.formats import InputError
from duckapi.api.ops.limits import check_rows
from duckapi.settings import default_memory_limit
from duckapi.engines import StatementTimeout
from duckapi.engines.deadline import WATCHDOG
from duckapi.settings import Settings
from tests.conftest import Built, settings_in

SLOW = Path(__file__).parent / "projects" / "slow"
JSON = {"content-type": "application/json"}
ARROW = "application/vnd.apache.arrow.stream"
FOREVER = 10**12  # range(n) that would take DuckDB half an hour


def _post(client: TestClient, url: str, rows: Any, **headers: str) -> Any:
    return client.post(url, content=json.dumps(rows), headers={**JSON, **headers})


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, Any]]:
    settings = settings_in(tmp_path_factory.mktemp("slow"), project_dir=SLOW)
    return settings, project.build(settings)


def _client(slow: tuple[Settings, dict[str, Any]], **changes: Any) -> TestClient:
    settings, manifest = slow
    return TestClient(create_app(replace(settings, **changes), manifest))


def _sum(n: int) -> int:
    return n * (n - 1) // 2


# --- rows ---------------------------------------------------------------------

def test_too_many_rows_is_413_naming_limit_and_count_and_the_next_is_answered(built: Built) -> None:
    rows = [{"group_id": "a", "event_value": i} for i in range(6)]
    with TestClient(create_app(replace(built.settings, max_rows=5), built.manifest)) as client:
        response = _post(client, "/analyse_data/", rows)
        assert response.status_code == 413
        detail = response.json()["detail"]
        assert "6 rows" in detail and "limit of 5 rows" in detail and "DUCKAPI_MAX_ROWS" in detail
        csv = "group_id,event_value\n" + "".join(f"a,{i}\n" for i in range(6))  # any format, after decoding
        assert client.post("/analyse_data/", content=csv, headers={"content-type": "text/csv"}).status_code == 413
        ok = _post(client, "/analyse_data/", rows[:5])
        assert ok.status_code == 200 and ok.json()[0]["group_sums"] == [{"group_id": "a", "value_sum": 10}]


def test_rows_are_counted_over_every_input() -> None:
    one = pa.table({"x": [1, 2, 3]})
    check_rows([one, one], 6)
    check_rows([one, one], 0)  # no limit
    with pytest.raises(InputError) as raised:
        check_rows([one, one, one], 8)
    assert raised.value.status == 413 and "9 rows" in raised.value.detail and "limit of 8" in raised.value.detail


# --- timeout ------------------------------------------------------------------

def test_a_request_past_its_time_is_504_and_the_same_lane_answers_next(slow: tuple[Settings, dict[str, Any]]) -> None:
    with _client(slow, request_timeout=0.5, executor_threads=1) as client:
        for url, accept in (("/spin/", "application/json"), ("/spin_rows/", "application/json"), ("/spin_rows/", ARROW)):
            started = time.monotonic()
            response = _post(client, url, [{"n": FOREVER}], accept=accept)
            took = time.monotonic() - started
            assert response.status_code == 504, response.text
            assert "limit of 0.5 s" in response.json()["detail"] and "DUCKAPI_REQUEST_TIMEOUT" in response.json()["detail"]
            assert 0.4 < took < 3, took
            # One executor thread: the lane that was interrupted answers this one.
            response = _post(client, "/spin/", [{"n": 10}])
            assert response.status_code == 200 and response.json() == [{"total": 45}]
        assert _post(client, "/spin_rows/", [{"n": 10}, {"n": 4}]).json() == [{"n": 4, "total": 6}, {"n": 10, "total": 45}]


def test_a_slow_request_in_a_batch_times_out_alone(slow: tuple[Settings, dict[str, Any]]) -> None:
    """Four waiting requests of a batchable model, one slow: the batched statement stops
    halfway to the earliest deadline, then each is answered alone, by its own deadline.
    (Driven on the batcher directly: the order requests reach a loaded machine's server
    is not the order a test sends them in.)"""
    with _client(slow, request_timeout=2.0, executor_threads=1) as client:
        batcher = client.app.state.batcher
        pipeline = client.app.state.service.state.endpoints["/spin/"].pipeline
        assert pipeline.batchable
        ns = [10, 20, 30, FOREVER]
        tables = [pa.table({"n": pa.array([n], pa.int64())}) for n in ns]
        started = time.monotonic()
        outcomes, batched = batcher._answer(pipeline, tables, [started + 2.0] * len(ns))
        took = time.monotonic() - started
        assert not batched and 1.9 < took < 3.5, took
        assert outcomes[:3] == [json.dumps([{"total": _sum(n)}], separators=(",", ":")).encode() for n in ns[:3]]
        assert isinstance(outcomes[3], StatementTimeout)
        # Over HTTP, the slow one batched with others: 504, and the lane answers next.
        with ThreadPoolExecutor(4) as pool:
            busy = pool.submit(_post, client, "/spin_rows/", [{"n": 200_000_000}])
            time.sleep(0.1)
            answers = [pool.submit(_post, client, "/spin/", [{"n": n}]) for n in (FOREVER, 5, 6)]
            assert busy.result().status_code == 200
            assert answers[0].result().status_code == 504
            assert all(f.result().status_code in (200, 504) for f in answers[1:])
        assert _post(client, "/spin/", [{"n": 5}]).json() == [{"total": 10}]


def test_no_timeout_means_nothing_is_armed(slow: tuple[Settings, dict[str, Any]]) -> None:
    with _client(slow, request_timeout=0) as client:
        before = len(WATCHDOG._heap)
        assert _post(client, "/spin/", [{"n": 100}]).json() == [{"total": 4950}]
        assert len(WATCHDOG._heap) == before


# --- queue --------------------------------------------------------------------

def test_a_full_queue_is_503_with_retry_after_at_once_then_normal_service(slow: tuple[Settings, dict[str, Any]]) -> None:
    """One thread and room for one waiting request: a third concurrent one is refused."""
    with _client(slow, executor_threads=1, max_queue=1, request_timeout=1.0) as client:
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(_post, client, "/spin_rows/", [{"n": FOREVER}])
            time.sleep(0.2)
            waiting = pool.submit(_post, client, "/spin_rows/", [{"n": 3}])
            time.sleep(0.2)
            started = time.monotonic()
            refused = _post(client, "/spin/", [{"n": 3}])
            assert time.monotonic() - started < 0.5  # answered at once, not after the others
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert "DUCKAPI_MAX_QUEUE" in refused.json()["detail"]
            assert client.get("/healthz").status_code == 200  # only POSTs queue
            assert running.result().status_code == 504
            assert waiting.result().status_code in (200, 504)
        assert _post(client, "/spin/", [{"n": 3}]).json() == [{"total": 3}]


# --- memory -------------------------------------------------------------------

def test_a_request_past_the_memory_limit_fails_alone_with_503(slow: tuple[Settings, dict[str, Any]]) -> None:
    with _client(slow, duckdb_memory_limit="64MB", executor_threads=1) as client:
        response = _post(client, "/hog/", [{"n": 30_000_000}])
        assert response.status_code == 503, response.text
        assert "not enough resources" in response.json()["detail"]
        assert _post(client, "/hog/", [{"n": 11}]).json() == [{"chars": 12 + 10}]  # "0,1,...,10"
        assert _post(client, "/spin/", [{"n": 10}]).json() == [{"total": 45}]


def test_the_default_memory_limit_shares_half_the_memory_over_every_lane() -> None:
    settings = Settings.from_env(env={})
    assert settings.duckdb_memory_limit is None and settings.lane_memory_limit
    two = default_memory_limit(1, 2)
    four = default_memory_limit(2, 2)
    assert int(two[:-2]) // 2 - 1 <= int(four[:-2]) <= int(two[:-2]) // 2 + 1
    assert Settings.from_env(env={"DUCKAPI_DUCKDB_MEMORY_LIMIT": "none"}).lane_memory_limit is None
    assert Settings.from_env(env={"DUCKAPI_DUCKDB_MEMORY_LIMIT": "2GB"}).lane_memory_limit == "2GB"


# --- priority -----------------------------------------------------------------

def _nice(tid: int) -> int:
    stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[16])  # field 19: nice


def _pipeline_threads(before: set[int]) -> list[threading.Thread]:
    """The pipeline threads started since `before` (other tests' apps may still have theirs)."""
    return [t for t in threading.enumerate() if t.name.startswith("duckapi_") and t.native_id and t.ident not in before]


def test_pipeline_threads_run_nicer_than_the_event_loop(slow: tuple[Settings, dict[str, Any]]) -> None:
    assert Settings.from_env(env={}).executor_nice == 10
    base = _nice(threading.get_native_id())
    before = {t.ident for t in threading.enumerate()}
    with _client(slow, executor_nice=5, executor_threads=2) as client:
        assert _post(client, "/spin/", [{"n": 10}]).json() == [{"total": 45}]
        assert _post(client, "/spin/", [{"n": 10}]).json() == [{"total": 45}]
        pipeline = _pipeline_threads(before)
        assert pipeline and {_nice(t.native_id) for t in pipeline} == {min(19, base + 5)}  # type: ignore[arg-type]
        others = [t for t in threading.enumerate() if not t.name.startswith("duckapi") and t.native_id]
        assert {_nice(t.native_id) for t in others} == {base}  # type: ignore[arg-type]
    before = {t.ident for t in threading.enumerate()}
    with _client(slow, executor_nice=0, executor_threads=1) as client:
        assert _post(client, "/spin/", [{"n": 10}]).json() == [{"total": 45}]
        threads = _pipeline_threads(before)
        assert threads and {_nice(t.native_id) for t in threads} == {base}  # type: ignore[arg-type]


def test_limits_are_settings_with_protective_defaults_and_reach_workers() -> None:
    default = Settings.from_env(env={})
    assert (default.max_rows, default.max_queue, default.request_timeout) == (10_000_000, 64, 60.0)
    env = {"DUCKAPI_MAX_ROWS": "7", "DUCKAPI_MAX_QUEUE": "0", "DUCKAPI_REQUEST_TIMEOUT": "2.5"}
    settings = Settings.from_env(env=env)
    assert (settings.max_rows, settings.max_queue, settings.request_timeout) == (7, 0, 2.5)
    again = Settings.from_env(env=settings.to_env())
    assert (again.max_rows, again.max_queue, again.request_timeout) == (7, 0, 2.5)
