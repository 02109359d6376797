"""A real `duckapi serve` in a child process on a free loopback port, for integration tests."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

URL = "/analyse_data/"
JSON = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
        self.port = port
        self.proc = proc

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 30) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def post_rows(self, rows: Any, path: str = URL) -> tuple[int, Any]:
        status, body = self.request("POST", path, json.dumps(rows).encode(), JSON)
        return status, json.loads(body)


@contextmanager
def running_server(args: list[str], env: dict[str, str], log_dir: Path, ready_timeout: float = 120) -> Iterator[Server]:
    """`duckapi serve ARGS` with these DUCKAPI_* variables; stopped (by pid) on exit."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("DUCKAPI_")}
    child_env["DUCKAPI_DRAIN_SECONDS"] = "0"  # stopping a test server need not wait
    child_env.update(env)
    child_env.update({"HOST": "127.0.0.1", "PORT": str(port)})
    log = log_dir / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "duckapi.cli", "serve", *args],
                                env=child_env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(port, proc)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if server.request("GET", "/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready in {ready_timeout} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started, and every process it started, by pid (kill if they linger)."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        proc.terminate()
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=20)
    for child in alive:
        child.kill()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def schemathesis_finds_nothing(server: Server, tmp_path: Path, examples: int = 15, seconds: int = 12) -> None:
    """schemathesis, every check, against the server's own OpenAPI document: no issue found.
    A request with new vars waits for dbt to compile its variant (~5 s on a quiet machine,
    12.6 s once beside two other test workers), hence 20 s for every answer, not the
    response-time check's default 10 s."""
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"http://127.0.0.1:{server.port}/openapi.json",
         "--checks", "all", "--max-examples", str(examples), "--workers", "1", "--max-time", str(seconds),
         "--request-timeout", "20", "--max-response-time", "20", "--seed", "11"],
        capture_output=True, text=True, timeout=seconds * 10 + 60, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
