"""API keys (duckapi/api/ops/auth.py): 401 without or with a wrong key, 200 with either
header, /healthz open, docs and /metrics closed unless made public, the OpenAPI
security schemes, reloads, start-up failures, and the key never in a log or answer."""

from __future__ import annotations

import hmac
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from duckapi.api.app import create_app
from duckapi.api.ops import auth
from duckapi.api.ops.auth import ApiKeys, KeysError, read_keys
from tests.conftest import Built
from tests.servers import running_server

KEY = "k-3f9a1c77d2e845b0a6"
OTHER = "k-second-0b1c2d3e4f"
ROWS = json.dumps([{"group_id": "a", "event_value": 2}])
JSON = {"content-type": "application/json"}


def _keys_file(folder: Path, *keys: str) -> Path:
    path = folder / "keys.txt"
    path.write_text("# duckapi keys\n\n" + "".join(f"{k}   # a comment\n" for k in keys) + "\n")
    return path


def _client(built: Built, keys: Path, **changes: Any) -> TestClient:
    return TestClient(create_app(replace(built.settings, api_keys_file=keys, **changes), built.manifest))


def test_keys_file_lines_comments_and_blanks(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text("# header\n\n  alpha  \nbeta # who\n#gamma\nalpha\n")
    assert read_keys(path) == (b"alpha", b"beta")
    path.write_text("# only comments\n\n")
    with pytest.raises(KeysError, match="holds no key"):
        read_keys(path)
    with pytest.raises(KeysError, match="does not exist"):
        read_keys(tmp_path / "missing")
    with pytest.raises(KeysError, match="cannot be read"):
        read_keys(tmp_path)  # a folder


def test_every_key_is_compared_every_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = ApiKeys(_keys_file(tmp_path, "one", "two", "three"))
    calls: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    assert keys.valid(b"one") and not keys.valid(b"nope") and not keys.valid(b"")
    assert calls == [b"one", b"two", b"three"] * 3  # no early exit on a match


def test_requests_need_a_key_but_healthz(built: Built, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answers = []
    with _client(built, _keys_file(tmp_path, KEY, OTHER)) as client:
        for headers in ({}, {"authorization": "Bearer wrong-key-123"}, {"x-api-key": "wrong-key-123"},
                        {"authorization": f"Basic {KEY}"}, {"authorization": "Bearer "}):
            response = client.post("/analyse_data/", content=ROWS, headers={**JSON, **headers})
            answers.append(response)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["detail"] in ("invalid API key", "missing API key: send Authorization: Bearer <key> or X-API-Key: <key>")
            assert "wrong-key" not in response.text
        for headers in ({"authorization": f"Bearer {KEY}"}, {"Authorization": f"bearer {OTHER}"}, {"x-api-key": KEY}):
            response = client.post("/analyse_data/", content=ROWS, headers={**JSON, **headers})
            answers.append(response)
            assert response.status_code == 200 and response.json()[0]["group_sums"] == [{"group_id": "a", "value_sum": 2}]
        assert client.get("/healthz").status_code == 200
        for path in ("/models", "/analyse_data/sql", "/nowhere", "/docs", "/redoc", "/openapi.json", "/metrics"):
            assert client.get(path).status_code == 401, path
        assert client.get("/models", headers={"x-api-key": KEY}).status_code == 200
        document = client.get("/openapi.json", headers={"authorization": f"Bearer {KEY}"}).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"}
    assert schemes["apiKeyHeader"]["name"] == "X-API-Key"
    assert document["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    assert document["paths"]["/healthz"]["get"]["security"] == []
    for response in answers:
        assert KEY not in response.text and OTHER not in response.text
    assert KEY not in caplog.text and OTHER not in caplog.text


def test_docs_and_metrics_open_by_setting(built: Built, tmp_path: Path) -> None:
    with _client(built, _keys_file(tmp_path, KEY), public_docs=True) as client:
        assert client.get("/docs").status_code == 200
        assert client.get("/redoc").status_code == 200
        assert "securitySchemes" in client.get("/openapi.json").json()["components"]
        assert client.get("/metrics").status_code == 401
        assert client.get("/models").status_code == 401
    with _client(built, _keys_file(tmp_path, KEY), public_metrics=True) as client:
        assert client.get("/metrics").status_code != 401
        assert client.get("/docs").status_code == 401


def test_without_keys_everything_is_open_and_no_scheme_is_declared(client: TestClient) -> None:
    assert client.post("/analyse_data/", content=ROWS, headers=JSON).status_code == 200
    document = client.get("/openapi.json").json()
    assert "security" not in document and "securitySchemes" not in document.get("components", {})


def test_a_changed_keys_file_is_picked_up_by_reload(built: Built, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    path = _keys_file(tmp_path, KEY)
    with _client(built, path, reload=True, reload_interval=0.1) as client:
        def status(key: str) -> int:
            return client.post("/analyse_data/", content=ROWS, headers={**JSON, "x-api-key": key}).status_code

        assert (status(KEY), status(OTHER)) == (200, 401)
        _keys_file(tmp_path, OTHER)
        deadline = time.monotonic() + 10
        while status(OTHER) != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (status(KEY), status(OTHER)) == (401, 200)
        path.write_text("# emptied by mistake\n")  # logged; the previous keys stay
        deadline = time.monotonic() + 10
        while "API keys not reloaded" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "holds no key" in caplog.text
        assert (status(KEY), status(OTHER)) == (401, 200)
    assert KEY not in caplog.text and OTHER not in caplog.text


def test_a_missing_keys_file_stops_the_app(built: Built, tmp_path: Path) -> None:
    with pytest.raises(KeysError, match="does not exist"):
        create_app(replace(built.settings, api_keys_file=tmp_path / "none.txt"), built.manifest)


@pytest.mark.parametrize("content", [None, "# nothing\n\n"])
def test_serve_refuses_to_start_without_usable_keys(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "keys.txt"
    if content is not None:
        path.write_text(content)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUCKAPI_")}
    result = subprocess.run([sys.executable, "-m", "duckapi.cli", "serve", "--api-keys-file", str(path)],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"API keys file {path}" in result.stderr.replace("\n", "")


def test_a_real_server_requires_keys_and_reloads_them_on_sighup(built: Built, tmp_path: Path) -> None:
    path = _keys_file(tmp_path, KEY)
    env = built.server_env(DUCKAPI_API_KEYS_FILE=str(path))
    with running_server([], env, tmp_path) as server:
        def status(headers: dict[str, str]) -> int:
            return server.request("POST", "/analyse_data/", ROWS.encode(), {**JSON, **headers})[0]

        assert status({}) == 401
        assert status({"authorization": f"Bearer {KEY}"}) == 200
        assert status({"x-api-key": OTHER}) == 401
        _keys_file(tmp_path, OTHER)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while status({"x-api-key": OTHER}) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status({"x-api-key": OTHER}) == 200 and status({"x-api-key": KEY}) == 401
    log = (tmp_path / "server.log").read_text()
    assert "API keys reloaded" in log and KEY not in log and OTHER not in log
