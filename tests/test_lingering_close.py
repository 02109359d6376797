"""Every answer sent before the body is read reaches every common client (12 MB bodies),
whatever its Connection header: the server closes with a lingering close
(duckapi/api/ops/lingering.py), never with body bytes unread, which the kernel would
answer with a reset instead of the answer.

A real `duckapi serve` (API keys on, 1 MB body limit, one pipeline thread and a queue of
one) gets, from urllib (which sends `Connection: close`), http.client with and without
`Connection: close`, requests, httpx, aiohttp and curl, a 12 MB body for each early
status: 401 (no key), 404, 405, 406, 413 (Content-Length over the limit), 415, and 503
(two slow uploads hold the pipeline thread and the queue).
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import subprocess
import urllib.error
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator

import aiohttp
import httpx
import pytest
import requests

from tests.conftest import Built
from tests.servers import Server, running_server

BODY = b"x" * (12 * 1024 * 1024)
KEY = "k-lingering-7a1c"

#: status -> (method, path, headers): what makes the server answer it before the body.
EARLY = {
    401: ("POST", "/analyse_data/", {"content-type": "application/json"}),
    404: ("POST", "/nowhere/", {"content-type": "application/json", "x-api-key": KEY}),
    405: ("PUT", "/analyse_data/", {"content-type": "application/json", "x-api-key": KEY}),
    406: ("POST", "/analyse_data/", {"content-type": "application/json", "accept": "image/png", "x-api-key": KEY}),
    413: ("POST", "/analyse_data/", {"content-type": "application/json", "x-api-key": KEY}),
    415: ("POST", "/analyse_data/", {"content-type": "text/plain", "x-api-key": KEY}),
    503: ("POST", "/analyse_data/", {"content-type": "application/json", "x-api-key": KEY}),
}


@pytest.fixture(scope="module")
def server(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("lingering")
    keys = folder / "keys.txt"
    keys.write_text(KEY + "\n")
    env = built.server_env(DUCKAPI_MAX_BODY_BYTES=str(1024 * 1024), DUCKAPI_API_KEYS_FILE=str(keys),
                           DUCKAPI_EXECUTOR_THREADS="1", DUCKAPI_MAX_QUEUE="1", DUCKAPI_MAX_BATCH="1")
    with running_server([], env, folder) as server:
        yield server


@contextmanager
def queue_full(server: Server) -> Iterator[None]:
    """Two POSTs whose bodies never finish arriving hold the pipeline thread and the queue."""
    with ExitStack() as stack:
        for _ in range(2):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=30))
            sock.sendall(f"POST /analyse_data/ HTTP/1.1\r\nhost: x\r\nx-api-key: {KEY}\r\n"
                         "content-type: application/json\r\ncontent-length: 1000\r\n\r\n[".encode())
        probe = ""
        for _ in range(100):  # until the server has taken both (they are in progress)
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("POST", "/analyse_data/", body=b"[]", headers=EARLY[503][2])
            probe = str(conn.getresponse().status)
            conn.close()
            if probe == "503":
                break
        assert probe == "503", probe
        yield


def with_urllib(url: str, method: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=BODY, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def with_http_client(close: bool) -> Callable[[str, str, dict[str, str]], int]:
    def send(url: str, method: str, headers: dict[str, str]) -> int:
        host, port = url.split("/")[2].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            conn.request(method, "/" + url.split("/", 3)[3], body=BODY,
                         headers={**headers, **({"connection": "close"} if close else {})})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    return send


def with_requests(url: str, method: str, headers: dict[str, str]) -> int:
    return requests.request(method, url, data=BODY, headers=headers, timeout=60).status_code


def with_httpx(url: str, method: str, headers: dict[str, str]) -> int:
    return httpx.request(method, url, content=BODY, headers=headers, timeout=60).status_code


def with_aiohttp(url: str, method: str, headers: dict[str, str]) -> int:
    async def send() -> int:
        async with aiohttp.ClientSession() as session:
            async with session.request(method, url, data=BODY, headers=headers) as response:
                await response.read()
                return response.status

    return asyncio.run(send())


def with_curl(url: str, method: str, headers: dict[str, str], folder: Path) -> int:
    body = folder / "body.bin"
    if not body.exists():
        body.write_bytes(BODY)
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, "--data-binary", f"@{body}",
            "-H", "Expect:"]  # curl would wait for 100-continue; send the body as other clients do
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=120)
    return int(done.stdout or 0)


CLIENTS = ["urllib", "http.client", "http.client+close", "requests", "httpx", "aiohttp", "curl"]


@pytest.mark.parametrize("status", list(EARLY))
@pytest.mark.parametrize("client", CLIENTS)
def test_every_client_receives_every_early_answer(server: Server, client: str, status: int, tmp_path: Path) -> None:
    method, path, headers = EARLY[status]
    url = f"http://127.0.0.1:{server.port}{path}"
    send: Callable[[str, str, dict[str, str]], int] = {
        "urllib": with_urllib, "http.client": with_http_client(False), "http.client+close": with_http_client(True),
        "requests": with_requests, "httpx": with_httpx, "aiohttp": with_aiohttp,
        "curl": lambda u, m, h: with_curl(u, m, h, tmp_path),
    }[client]
    if status == 503:
        with queue_full(server):
            assert send(url, method, headers) == 503
    else:
        assert send(url, method, headers) == status
    # The server is well: a good request still gets its answer.
    ok, _ = server.request("GET", "/healthz")
    assert ok == 200
