"""Restarts. SIGTERM: /healthz says draining at once, then no new connections, the
request in flight is answered, and the process exits 0. A worker killed with -9 is
replaced, and the other one answers meanwhile."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time
from pathlib import Path

import psutil

from tests.conftest import Built
from tests.oracle import ANIMALS, analyse
from tests.servers import running_server


def test_sigterm_drains_then_finishes_the_request_in_flight(built: Built, tmp_path: Path) -> None:
    env = built.server_env(DUCKAPI_DRAIN_SECONDS="1")
    with running_server([], env, tmp_path) as server:
        assert server.proc is not None
        body = json.dumps(ANIMALS).encode()
        in_flight = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        in_flight.sendall(b"POST /analyse_data/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])  # half-way through its body
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while True:
            status, answer = server.request("GET", "/healthz", timeout=5)
            if status == 503:
                break
            assert time.monotonic() < deadline, "never said draining"
            time.sleep(0.05)
        assert json.loads(answer)["status"] == "draining"
        assert server.post_rows(ANIMALS) == (200, analyse(ANIMALS))  # still answering while draining
        deadline = time.monotonic() + 10
        while True:  # then it stops accepting
            try:
                server.request("GET", "/healthz", timeout=2)
            except OSError:
                break
            assert time.monotonic() < deadline, "still accepting connections"
            time.sleep(0.1)
        in_flight.sendall(body[10:])
        response = http.client.HTTPResponse(in_flight)
        response.begin()
        assert response.status == 200 and json.loads(response.read()) == analyse(ANIMALS)
        in_flight.close()
        assert server.proc.wait(timeout=30) == 0


def test_a_killed_worker_is_replaced(built: Built, tmp_path: Path) -> None:
    env = built.server_env()
    with running_server(["--workers", "2"], env, tmp_path) as server:
        assert server.proc is not None
        supervisor = psutil.Process(server.proc.pid)

        def workers() -> list[psutil.Process]:
            return [p for p in supervisor.children() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

        deadline = time.monotonic() + 60
        while len(workers()) < 2:
            assert time.monotonic() < deadline, "two workers never came up"
            time.sleep(0.2)
        victim = workers()[0]
        victim.send_signal(signal.SIGKILL)
        psutil.wait_procs([victim], timeout=10)  # dead (maybe a zombie until the supervisor reaps it)
        answers = [server.post_rows(ANIMALS) for _ in range(20)]  # the other worker answers meanwhile
        assert answers == [(200, analyse(ANIMALS))] * 20
        deadline = time.monotonic() + 60
        while len(workers()) < 2 or victim.pid in [p.pid for p in workers()]:
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.2)
        deadline = time.monotonic() + 60
        while True:  # the replacement compiles the project before it takes requests
            replacement = next(p for p in workers() if p.pid != victim.pid)
            if all(server.post_rows(ANIMALS) == (200, analyse(ANIMALS)) for _ in range(10)):
                break
            assert time.monotonic() < deadline and replacement.is_running()
