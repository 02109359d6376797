"""Exact HTTP against a real server: 405 with Allow, HEAD, OPTIONS, 404, the OpenAPI
shapes of `select` and `vars`, and schemathesis (all checks) over the bundled project
and the two-input shop (the web-events example: tests/test_example_web_events.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import Built
from tests.shop_support import shop_build
from tests.servers import Server, running_server, schemathesis_finds_nothing

pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def server(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"DUCKAPI_DB_PATH": str(built.settings.db_path), "DUCKAPI_TARGET_PATH": str(built.settings.resolved_target_path),
           "DUCKAPI_MAX_BODY_BYTES": str(1024 * 1024)}
    with running_server([], env, tmp_path_factory.mktemp("http-log")) as running:
        yield running


@pytest.fixture(scope="module")
def shop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("http-shop")
    settings = shop_build().settings  # one build of the shop for the whole session
    env = {"DUCKAPI_PROJECT_DIR": str(settings.project_dir), "DUCKAPI_DB_PATH": str(settings.db_path),
           "DUCKAPI_TARGET_PATH": str(settings.resolved_target_path)}
    with running_server([], env, folder) as running:
        yield running


GET = "GET, HEAD, OPTIONS"
MATRIX = [
    # path, method, status, Allow (None: no Allow header)
    ("/healthz", "GET", 200, None), ("/healthz", "HEAD", 200, None), ("/healthz", "POST", 405, GET),
    ("/healthz", "PUT", 405, GET), ("/healthz", "DELETE", 405, GET), ("/healthz", "OPTIONS", 204, GET),
    ("/models", "POST", 405, GET), ("/models", "PATCH", 405, GET), ("/models", "OPTIONS", 204, GET),
    ("/openapi.json", "POST", 405, GET), ("/docs", "DELETE", 405, GET),
    ("/analyse_data/", "GET", 405, "POST, OPTIONS"), ("/analyse_data/", "HEAD", 405, "POST, OPTIONS"),
    ("/analyse_data/", "PUT", 405, "POST, OPTIONS"), ("/analyse_data", "GET", 405, "POST, OPTIONS"),
    ("/analyse_data/", "OPTIONS", 204, "POST, OPTIONS"),
    ("/analyse_data/sql", "GET", 200, None), ("/analyse_data/sql", "HEAD", 200, None),
    ("/analyse_data/sql", "POST", 405, GET), ("/analyse_data/sql", "OPTIONS", 204, GET),
    ("/nope", "GET", 404, None), ("/nope", "POST", 404, None), ("/nope", "OPTIONS", 404, None),
    ("/nope/sql", "GET", 404, None), ("/", "DELETE", 405, GET), ("/", "HEAD", 200, None),
]


def test_methods_allow_and_unknown_paths(server: Server) -> None:
    import http.client

    for path, method, status, allow in MATRIX:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        assert (response.status, response.getheader("allow")) == (status, allow), (path, method, body[:200])
        if method == "HEAD":
            assert body == b"" and int(response.getheader("content-length")) > 0
        if status == 405 and method != "HEAD":
            assert method in json.loads(body)["detail"]


def test_openapi_describes_select_and_vars(server: Server, shop_server: Server) -> None:
    document = json.loads(server.request("GET", "/openapi.json")[1])
    select, dbt_vars = document["paths"]["/analyse_data/"]["post"]["parameters"]
    assert select["style"] == "form" and select["explode"] is False
    assert select["schema"]["type"] == "array" and select["schema"]["items"]["enum"][0] == "group_sums"
    assert dbt_vars["content"]["application/json"]["schema"] == {"type": "object", "properties": {}, "additionalProperties": False}
    assert "No var may be set" in dbt_vars["description"]
    assert set(document["paths"]["/analyse_data/"]["post"]["responses"]) >= {"200", "400", "406", "413", "415", "422", "503"}
    shop = json.loads(shop_server.request("GET", "/openapi.json")[1])
    multipart = shop["paths"]["/customers/"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert multipart["schema"]["required"] == ["stg_orders", "stg_payments"]
    assert multipart["encoding"]["stg_orders"] == {"contentType": "application/json"}


def test_schemathesis_finds_nothing_on_the_bundled_project(server: Server, tmp_path: Path) -> None:
    schemathesis_finds_nothing(server, tmp_path)


def test_schemathesis_finds_nothing_on_the_shop(shop_server: Server, tmp_path: Path) -> None:
    schemathesis_finds_nothing(shop_server, tmp_path)
