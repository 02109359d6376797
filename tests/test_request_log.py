"""Request ids on every answer and, with DUCKAPI_ACCESS_LOG=json, one JSON line per
request that carries no row data and no keys."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from duckapi.api.app import create_app
from duckapi.api.ops.requests import RequestOps
from duckapi.settings import Settings
from tests.conftest import Built
from tests.servers import URL

SECRET_GROUP = "secret-group-🦆"
SECRET_VALUE = 987654321
SECRET_KEY = "sekrit-key-0123"
FIELDS = {"time", "request_id", "method", "endpoint", "path", "status", "rows_in", "body_format", "answer_format", "duration_ms"}


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture(scope="module")
def logged(built: Built) -> Iterator[TestClient]:
    with TestClient(create_app(replace(built.settings, request_log=True), built.manifest)) as client:
        yield client


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("duckapi.requests")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_one_json_line_per_request_without_rows_or_keys(logged: TestClient, lines: Lines) -> None:
    rows = [{"group_id": SECRET_GROUP, "event_value": SECRET_VALUE}, {"group_id": "b", "event_value": 2}]
    headers = {"X-Request-ID": "client-id-42", "Authorization": f"Bearer {SECRET_KEY}", "X-API-Key": SECRET_KEY}
    answer = logged.post(URL, json=rows, headers=headers)
    assert answer.status_code == 200 and SECRET_GROUP in answer.text
    assert answer.headers["x-request-id"] == "client-id-42"
    bad = logged.post(URL + "?vars=" + SECRET_KEY, json=[{"group_id": SECRET_GROUP}], headers=headers)
    assert bad.status_code == 422
    assert len(lines.lines) == 2
    ok, failed = lines.records()
    assert set(ok) == FIELDS
    assert ok["request_id"] == "client-id-42" and ok["method"] == "POST" and ok["endpoint"] == URL
    assert ok["status"] == 200 and ok["rows_in"] == 2 and ok["body_format"] == ok["answer_format"] == "json"
    assert isinstance(ok["duration_ms"], float) and ok["duration_ms"] > 0
    assert ok["time"].endswith("+00:00")
    assert failed["status"] == 422 and failed["rows_in"] is None and failed["path"] == URL
    text = "\n".join(lines.lines)
    for secret in (SECRET_GROUP, json.dumps(SECRET_GROUP)[1:-1], str(SECRET_VALUE), SECRET_KEY, "Bearer"):
        assert secret not in text


@pytest.mark.parametrize("given", ["x" * 129, "tab\there", "", "caf\u00e9"])
def test_an_invalid_request_id_is_replaced(logged: TestClient, lines: Lines, given: str) -> None:
    answer = logged.get("/healthz", headers={"X-Request-ID": given.encode("latin-1")})  # type: ignore[dict-item]
    generated = answer.headers["x-request-id"]
    assert generated != given and len(generated) == 32 and int(generated, 16) >= 0
    assert [r["request_id"] for r in lines.records()] == [generated]


def test_the_longest_valid_id_is_kept(logged: TestClient) -> None:
    given = "a-Z_0 9~" * 16
    assert len(given) == 128
    assert logged.get("/models", headers={"X-Request-ID": given}).headers["x-request-id"] == given


def test_every_answer_carries_a_fresh_id(logged: TestClient, lines: Lines) -> None:
    answers = [
        logged.post("/nope/", json=[]),  # 404
        logged.post(URL, content=b"x", headers={"Content-Type": "text/plain"}),  # 415
        logged.post(URL, json=[], headers={"Accept": "image/png"}),  # 406
        logged.put(URL, json=[]),  # 405
        logged.get("/metrics"),
    ]
    ids = [a.headers["x-request-id"] for a in answers]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 for i in ids)
    records = lines.records()
    assert [r["request_id"] for r in records] == ids
    assert [r["status"] for r in records] == [a.status_code for a in answers]
    assert [r["endpoint"] for r in records] == ["other", URL, URL, URL, "/metrics"]
    assert records[1]["body_format"] == "unsupported" and records[2]["answer_format"] == "unacceptable"


def test_an_unhandled_error_is_a_500_with_the_id(lines: Lines) -> None:
    def boom(request: object) -> None:
        raise RuntimeError("boom")

    seen: list[int] = []
    # Where create_app puts it: inside Starlette's ServerErrorMiddleware, which answers
    # with its own send (no id) unless an answer already went out.
    ops = Middleware(RequestOps, endpoints=lambda: (), on_start=lambda: None,
                     on_end=[lambda info, seconds: seen.append(info.status)], on_shutdown=lambda: None)
    app = Starlette(routes=[Route("/boom", boom)], middleware=[ops])
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom", headers={"X-Request-ID": "abc"})
    assert answer.status_code == 500 and answer.headers["x-request-id"] == "abc"
    assert answer.json() == {"detail": "Internal Server Error"}
    assert seen == [500]


def test_off_by_default(client: TestClient, lines: Lines) -> None:
    answer = client.post(URL, json=[{"group_id": "a", "event_value": 1}])
    assert answer.status_code == 200 and len(answer.headers["x-request-id"]) == 32
    assert lines.lines == []


def test_the_setting() -> None:
    assert Settings.from_env(env={}).request_log is False
    json_log = Settings.from_env(env={"DUCKAPI_ACCESS_LOG": "json"})
    assert json_log.request_log and not json_log.access_log  # instead of uvicorn's text line
    assert json_log.to_env()["DUCKAPI_ACCESS_LOG"] == "json"
    assert Settings.from_env(env=json_log.to_env()).request_log
    text_log = Settings.from_env(env={"DUCKAPI_ACCESS_LOG": "1"})
    assert text_log.access_log and not text_log.request_log
    assert text_log.to_env()["DUCKAPI_ACCESS_LOG"] == "1"
