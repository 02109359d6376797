"""Answers sent before the body is read reach a client that is still sending (12 MB
bodies), and a client that asks `Expect: 100-continue` never has to send a refused upload."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Iterator

import pytest

from tests.conftest import Built
from tests.oracle import ANIMALS, analyse
from tests.servers import Server, running_server

BIG = b"x" * (12 * 1024 * 1024)


@pytest.fixture(scope="module")
def server(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = built.server_env(DUCKAPI_MAX_BODY_BYTES=str(1024 * 1024))
    with running_server([], env, tmp_path_factory.mktemp("early-log")) as server:
        yield server


def _post(server: Server, path: str, headers: dict[str, str], chunked: bool = False) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        if chunked:
            chunks = iter([BIG[i:i + 65536] for i in range(0, len(BIG), 65536)])
            conn.request("POST", path, body=chunks, headers=headers, encode_chunked=True)
        else:
            conn.request("POST", path, body=BIG, headers=headers)  # sends all 12 MB, then reads
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("path, headers, chunked, status", [
    ("/nope/", {"Content-Type": "application/json"}, False, 404),
    ("/analyse_data/", {"Content-Type": "text/plain"}, False, 415),
    ("/analyse_data/", {"Content-Type": "application/json", "Accept": "text/html"}, False, 406),
    ("/analyse_data/", {"Content-Type": "application/json"}, False, 413),  # by Content-Length
    ("/analyse_data/", {"Content-Type": "application/json"}, True, 413),  # while streaming
])
def test_an_early_answer_reaches_a_client_still_sending(server: Server, path: str, headers: dict[str, str],
                                                         chunked: bool, status: int) -> None:
    got, body = _post(server, path, headers, chunked)
    assert got == status and json.loads(body)["detail"]
    assert server.post_rows(ANIMALS) == (200, analyse(ANIMALS))  # and the server is fine


def _head_of_answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_expect_100_continue_refusal_is_sent_before_any_body(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /analyse_data/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(BIG))
        head = _head_of_answer(sock)  # no byte of the body was sent
    assert head.startswith(b"HTTP/1.1 415 ") and b"connection: close" in head.lower()


def test_expect_100_continue_then_the_body_is_answered(server: Server) -> None:
    body = json.dumps(ANIMALS).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /analyse_data/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert _head_of_answer(sock).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 200 and json.loads(response.read()) == analyse(ANIMALS)


def test_slow_connections_do_not_starve_other_clients(server: Server) -> None:
    """Slowloris, short: 300 connections that never finish their headers, and a normal
    client is still answered (bench/faults.py runs 1,000 of them)."""
    slow = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"POST /analyse_data/ HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
            slow.append(sock)
        for _ in range(10):
            assert server.post_rows(ANIMALS) == (200, analyse(ANIMALS))
    finally:
        for sock in slow:
            sock.close()
