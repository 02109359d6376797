"""GET /metrics: request counts by endpoint, status and formats, latency, rows in,
batch sizes, in-flight and queued gauges, compiles, the reference data version; and
with `--workers 2`, sums over the workers (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from duckapi.api.app import create_app
from duckapi.api.ops.requests import endpoint_label
from tests.conftest import Built
from tests.servers import JSON, URL, running_server

ROWS = [{"group_id": "a", "event_value": 1}, {"group_id": "a", "event_value": 2}, {"group_id": "b", "event_value": 3}]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_of(samples: Samples, endpoint: str = URL, method: str = "POST", status: str = "200",
                body: str = "json", answer: str = "json") -> float:
    return value(samples, "duckapi_requests_total", endpoint=endpoint, method=method, status=status,
                 body_format=body, answer_format=answer)


def scrape(client: Any) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


@pytest.fixture(scope="module")
def app_client(built: Built) -> Iterator[TestClient]:
    """An app of its own (its own registry), with one pipeline thread so that requests
    queue and batch deterministically."""
    from dataclasses import replace

    with TestClient(create_app(replace(built.settings, executor_threads=1), built.manifest)) as client:
        yield client


def test_requests_by_status_and_format_latency_and_rows_in(app_client: TestClient) -> None:
    before = scrape(app_client)
    for _ in range(3):
        assert app_client.post(URL, json=ROWS).status_code == 200
    assert app_client.post(URL, json=[{"group_id": "a"}]).status_code == 422  # event_value missing
    table = pa.table({"group_id": ["x", "y"], "event_value": pa.array([5, 6], pa.int64())})
    csv = b"group_id,event_value\nx,5\ny,6\n"
    answer = app_client.post(URL, content=csv, headers={"Content-Type": "text/csv", "Accept": "application/vnd.apache.parquet"})
    assert answer.status_code == 200 and pq.read_table(io.BytesIO(answer.content)).num_rows > 0
    assert app_client.post("/nope/", json=ROWS).status_code == 404
    assert app_client.get("/healthz").status_code == 200
    after = scrape(app_client)

    def delta(fn: Any, *args: Any, **kwargs: Any) -> float:
        return fn(after, *args, **kwargs) - fn(before, *args, **kwargs)

    assert delta(requests_of) == 3
    assert delta(requests_of, status="422") == 1
    assert delta(requests_of, body="csv", answer="parquet") == 1
    assert delta(requests_of, endpoint="other", status="404", body="none", answer="none") == 1
    assert delta(requests_of, endpoint="/healthz", method="GET", body="none", answer="none") == 1
    assert delta(requests_of, endpoint="/metrics", method="GET", body="none", answer="none") == 1  # the first scrape
    assert delta(value, "duckapi_request_duration_seconds_count", endpoint=URL) == 5
    assert delta(value, "duckapi_request_duration_seconds_bucket", endpoint=URL, le="+Inf") == 5
    assert delta(value, "duckapi_request_duration_seconds_sum", endpoint=URL) > 0
    # Rows decoded: 3 x 3 JSON rows and 2 CSV rows (the 422 never decoded).
    assert delta(value, "duckapi_rows_in_total", endpoint=URL) == 3 * len(ROWS) + 2
    assert value(after, "duckapi_requests_in_flight") == 1  # the scrape itself
    assert value(after, "duckapi_requests_queued") == 0
    version = app_client.app.state.service.state.warehouse.version  # type: ignore[attr-defined]
    assert version >= 1 and value(after, "duckapi_reference_data_version") == version


def test_waiting_requests_are_queued_then_batched(app_client: TestClient) -> None:
    """The single pipeline thread is held: six requests wait (one taken by the batcher's
    runner, queued in the pool; five in the batcher), then five go as one statement.
    They are sent one at a time, each once the last is seen waiting: sent together, a
    slow event loop may let several arrive before the runner takes the first, and the
    runner would batch those at once."""
    batcher = app_client.app.state.batcher  # type: ignore[attr-defined]
    before = scrape(app_client)
    release = threading.Event()
    blocker = batcher._executor.submit(release.wait, 120)  # never holds the thread for good

    def in_batcher() -> int:
        return sum(map(len, list(batcher._waiting.values())))

    with ThreadPoolExecutor(6) as pool:
        try:
            answers = []
            for sent in range(1, 7):
                answers.append(pool.submit(app_client.post, URL, json=ROWS))
                deadline = time.monotonic() + 60
                while (waiting := scrape(app_client))["duckapi_requests_queued", frozenset()] < sent or in_batcher() != sent - 1:
                    assert time.monotonic() < deadline, (sent, in_batcher(), value(waiting, "duckapi_requests_queued"))
                    time.sleep(0.01)
            assert value(waiting, "duckapi_requests_queued") == 6
            assert value(waiting, "duckapi_requests_in_flight") == 7  # six, and the scrape
        finally:  # a failure above must not leave the pipeline thread held (the module would hang)
            release.set()
        assert [a.result().status_code for a in answers] == [200] * 6
    blocker.result()
    after = scrape(app_client)
    assert value(after, "duckapi_requests_queued") == 0
    assert value(after, "duckapi_requests_in_flight") == 1
    assert value(after, "duckapi_batch_size_count") - value(before, "duckapi_batch_size_count") == 1
    assert value(after, "duckapi_batch_size_sum") - value(before, "duckapi_batch_size_sum") == 5
    assert value(after, "duckapi_batch_size_bucket", le="4.0") == value(before, "duckapi_batch_size_bucket", le="4.0")
    assert value(after, "duckapi_batch_size_bucket", le="6.0") - value(before, "duckapi_batch_size_bucket", le="6.0") == 1


def test_a_reload_counts_a_compile_and_moves_the_reference_version(app_client: TestClient) -> None:
    service = app_client.app.state.service  # type: ignore[attr-defined]
    before = scrape(app_client)
    assert service.reload()
    after = scrape(app_client)
    assert value(after, "duckapi_compiles_total", kind="reload", outcome="ok") - value(before, "duckapi_compiles_total", kind="reload", outcome="ok") == 1
    assert value(after, "duckapi_compile_duration_seconds_count", kind="reload") - value(before, "duckapi_compile_duration_seconds_count", kind="reload") == 1
    assert value(after, "duckapi_compile_duration_seconds_sum", kind="reload") > value(before, "duckapi_compile_duration_seconds_sum", kind="reload")
    assert value(after, "duckapi_reference_data_version") == service.state.warehouse.version
    assert value(after, "duckapi_reference_data_version") == value(before, "duckapi_reference_data_version") + 1


def test_unknown_paths_share_one_label() -> None:
    endpoints = {"/analyse_data/": object()}
    assert endpoint_label("/analyse_data", endpoints) == "/analyse_data/"
    assert endpoint_label("/analyse_data/sql", endpoints) == "/analyse_data/sql/"
    assert endpoint_label("/healthz", endpoints) == "/healthz"
    assert {endpoint_label(f"/random/{i}", endpoints) for i in range(100)} == {"other"}
    assert endpoint_label("/other_data/sql", endpoints) == "other"


def test_two_workers_sum_their_metrics(built: Built, tmp_path: Path) -> None:
    env = built.server_env(DUCKAPI_EXECUTOR_THREADS="1", DUCKAPI_ACCESS_LOG="json")
    body = json.dumps(ROWS).encode()
    with running_server(["--workers", "2"], env, tmp_path) as server:
        def post(i: int) -> int:
            return server.request("POST", URL, body, JSON)[0]

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(post, range(40))) == [200] * 40
        assert server.request("POST", URL, b'[{"group_id": "a"}]', JSON)[0] == 422
        scrapes = [parse(server.request("GET", "/metrics")[1].decode()) for _ in range(10)]
    # Whichever worker answers the scrape, it reports both workers' requests.
    for samples in scrapes:
        assert requests_of(samples) == 40
        assert requests_of(samples, status="422") == 1
        assert value(samples, "duckapi_request_duration_seconds_count", endpoint=URL) == 41
        assert value(samples, "duckapi_rows_in_total", endpoint=URL) == 40 * len(ROWS)
        assert value(samples, "duckapi_reference_data_version") >= 1
    # Each worker logged its own requests as JSON lines.
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines() if line.startswith("{")]
    posts = [line for line in lines if line["endpoint"] == URL]
    assert len(posts) == 41 and sorted({line["status"] for line in posts}) == [200, 422]
    assert all(len(line["request_id"]) == 32 for line in posts)
