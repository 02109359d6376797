"""A real server: `duckapi serve` under uvicorn on a free loopback port, spoken to over HTTP."""

from __future__ import annotations

import hashlib
import http.client
import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import Built
from tests.oracle import ANIMALS, analyse
from tests.payloads import random_rows
from tests.servers import URL, Server, running_server

@pytest.fixture(scope="module")
def server(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = built.server_env(DUCKAPI_MAX_BODY_BYTES=str(1024 * 1024))
    with running_server([], env, tmp_path_factory.mktemp("serve-log")) as server:
        yield server


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_health_and_animal_example(server: Server) -> None:
    status, body = server.request("GET", "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert server.post_rows(ANIMALS) == (200, analyse(ANIMALS))


def test_concurrent_requests_each_get_their_own_answer(server: Server) -> None:
    rng = random.Random(7)
    payloads = [random_rows(rng, rng.randint(1, 2000), groups=rng.randint(1, 10), big=i % 4 == 0) for i in range(48)]
    assert len({json.dumps(p) for p in payloads}) == len(payloads)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(server.post_rows, payloads))
    for rows, (status, answer) in zip(payloads, answers):
        assert status == 200
        assert answer == analyse(rows)


def test_concurrent_small_requests_each_get_their_own_answer(server: Server) -> None:
    """Small requests that queue up are answered in batches (duckapi/api/batcher.py)."""
    rng = random.Random(8)
    payloads = [random_rows(rng, rng.randint(0, 256), groups=rng.randint(1, 10), big=i % 4 == 0) for i in range(96)]
    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(server.post_rows, payloads))
    for rows, (status, answer) in zip(payloads, answers):
        assert status == 200
        assert answer == analyse(rows)


def test_requests_never_modify_the_database_file(server: Server, built: Built) -> None:
    db = built.settings.db_path
    before = _sha256(db), db.stat().st_mtime_ns
    rng = random.Random(11)
    bad_bodies = [b"[{", b'[{"group_id": 1, "event_value": 1}]', b'{"a": 1}', b'[{"group_id": "\xff", "event_value": 1}]',
                  json.dumps([{"group_id": "'; drop view analysis; --", "event_value": 1}]).encode()]

    def burst(i: int) -> int:
        if i % 2:
            return server.request("POST", URL, bad_bodies[i % len(bad_bodies)], {"Content-Type": "application/json"})[0]
        rows = random_rows(rng, 50)
        status, answer = server.post_rows(rows)
        assert answer == analyse(rows)
        return status

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(burst, range(60)))
    assert set(statuses) <= {200, 400, 422} and statuses.count(200) >= 30
    assert (_sha256(db), db.stat().st_mtime_ns) == before


def test_oversized_bodies_are_413_and_the_server_stays_up(server: Server) -> None:
    declared = server.request("POST", URL, b"[" + b" " * (2 * 1024 * 1024) + b"]", {"Content-Type": "application/json"})
    assert declared[0] == 413 and len(declared[1]) < 500

    # Chunked, no Content-Length: the server must stop reading past the limit.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        def chunks() -> Iterator[bytes]:
            yield b"["
            for _ in range(64):
                yield b'{"group_id": "a", "event_value": 1},' * 1000

        conn.request("POST", URL, body=chunks(), headers={"Content-Type": "application/json"}, encode_chunked=True)
        assert conn.getresponse().status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close the connection before the client finishes sending: also a refusal
    finally:
        conn.close()
    assert server.post_rows(ANIMALS) == (200, analyse(ANIMALS))


def test_wrong_method_and_unknown_path_are_4xx(server: Server) -> None:
    assert server.request("GET", URL)[0] == 405
    assert server.request("POST", "/nope/", b"[]")[0] == 404
