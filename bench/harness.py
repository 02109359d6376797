"""What every bench shares (payloads, servers, clients, timing, checks, results files), so each holds its scenarios."""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import http.client
import itertools
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Container, Iterable, Mapping, Sequence

import numpy as np
import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work"
sys.path.insert(0, str(ROOT))
from tests.oracle import analyse  # noqa: E402  (the repo root must be importable first)

PATH = "/analyse_data/"
HEADERS = {"Content-Type": "application/json"}
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
GIB, MIB = 1024**3, 1024**2
Result = dict[str, Any]

# ---------------------------------------------------------------- payloads

# Varied Unicode group ids: emoji (incl. ZWJ sequences and flags), scripts, NFC vs NFD,
# JSON/SQL-awkward characters. No NUL: that would fail the baseline on every request.
HANDPICKED_IDS = [
    "🦆", "🐇", "🐰", "👩‍💻", "🇳🇱", "🏳️‍🌈", "😀😀😀", "emoji🦆mix", "日本語", "中文组", "한국어",
    "Ünïcødé", "café", "cafe\u0301", "Ελληνικά", "Кириллица", "עברית", "العربية", "हिन्दी", "ไทย",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ß", "SS", "ﬁ", "a", "A", "z", "0", "10", "9", "", " ", "tab\there", 'quo"te',
    "it's", "back\\slash", "'; drop view analysis; --", "x" * 100,
]
EMOJI = "🦆🐇🐰🐢🐙🦀🐝🦉🐸🦊🐼🐨🐯🦁🐮🐷🐵🐔🐧🐦"


def group_pool(size: int = 200) -> list[str]:
    """Handpicked ids topped up with emoji+number ids, so big payloads have many groups."""
    return HANDPICKED_IDS + [f"{EMOJI[i % len(EMOJI)]}{i}" for i in range(size - len(HANDPICKED_IDS))]


@dataclass(frozen=True)
class Scenario:
    name: str
    rows: int
    concurrency: int
    max_requests: int
    time_limit_s: float


@dataclass
class Workload:
    payloads: list[bytes]
    expected: list[list[dict[str, Any]]]


def small_rows(rng: np.random.Generator, pool: list[str]) -> list[dict[str, Any]]:
    """Nine rows over three groups, like the post's animals; sometimes an int32 extreme."""
    groups = [pool[i] for i in rng.choice(len(pool), 3, replace=False)]
    rows = []
    for _ in range(9):
        value = int(rng.integers(INT32_MIN, INT32_MAX + 1)) if rng.random() < 0.05 else int(rng.integers(0, 30))
        rows.append({"group_id": groups[int(rng.integers(0, 3))], "event_value": value})
    return rows


def big_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mostly small values (histograms stay bounded), 1% anywhere in int32, both int32 extremes."""
    values = rng.integers(0, 500, n)
    wild = rng.random(n) < 0.01
    values[wild] = rng.integers(INT32_MIN, INT32_MAX + 1, int(wild.sum()))
    values[:2] = [INT32_MIN, INT32_MAX][:n]
    return values


def big_rows(rng: np.random.Generator, pool: list[str], n: int) -> list[dict[str, Any]]:
    """n rows over the whole pool (values: big_values)."""
    gid = rng.integers(0, len(pool), n).tolist()
    return [{"group_id": pool[g], "event_value": v} for g, v in zip(gid, big_values(rng, n).tolist())]


def make_workload(scenario: Scenario, seed: int, index: int, pool: list[str], seen: set[bytes]) -> Workload:
    """Distinct payload bytes and their oracle answers for every request the scenario may send."""
    rng, work = np.random.default_rng([seed, index]), Workload([], [])
    while len(work.payloads) < scenario.max_requests:
        rows = small_rows(rng, pool) if scenario.rows == 9 else big_rows(rng, pool, scenario.rows)
        body = orjson.dumps(rows)
        if body not in seen:
            seen.add(body)
            work.payloads.append(body)
            work.expected.append(analyse(rows))
    return work


WARMUP = Scenario("warmup", 9, 1, 20, 5)

# ---------------------------------------------------------------- servers and processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without DUCKAPI_* settings and HOST/PORT (servers run with their defaults), dbt quiet."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUCKAPI_") and k not in ("HOST", "PORT")}
    return {**env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", **extra}


def serve_cmd(db: Path | None = None, *extra: str) -> list[str]:
    """`duckapi serve` on loopback; `{port}` is filled in at start."""
    return [sys.executable, "-m", "duckapi.cli", "serve", "--host", "127.0.0.1", "--port", "{port}",
            *(["--db", str(db)] if db else []), *extra]


def build(db: Path, env: dict[str, str], cwd: Path = ROOT, log_name: str = "build.log") -> None:
    """`duckapi build` (of the code in `cwd`) into `db`, logged to bench/.work/logs."""
    db.parent.mkdir(parents=True, exist_ok=True)
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    with open(WORK / "logs" / log_name, "wb") as log:
        subprocess.run([sys.executable, "-m", "duckapi.cli", "build", "--db", str(db)], cwd=cwd, env=env, stdout=log,
                       stderr=subprocess.STDOUT, check=True)


def tree_of(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_sum(procs: Iterable[psutil.Process], of: Callable[[psutil.Process], float]) -> float:
    """A sum over a process tree; processes that exit meanwhile (or that we may not read) count nothing."""
    total = 0.0
    for p in procs:
        with suppress(psutil.Error):
            total += of(p)
    return total


def busy_cpu_s() -> float:
    """Machine-wide non-idle CPU seconds, to expose other processes competing for the cores."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


@dataclass
class Server:
    """A server process we start, probe and stop by pid (with any children it spawned)."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    ready_path: str = "/healthz"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    cwd: Path = ROOT  # `python -m` imports from here first (another checkout: another code version)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def log(self) -> Path:
        return WORK / "logs" / f"{self.name}.log"

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            cmd = [a.replace("{port}", str(self.port)) for a in self.cmd]
            self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log}")
            with suppress(OSError, http.client.HTTPException):
                if request(self.port, "GET", self.ready_path, None, timeout=2)[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s; see {self.log}")

    def rss(self) -> int:
        return int(tree_sum(tree_of(self.pid), lambda p: p.memory_info().rss))

    def stop(self) -> None:
        """SIGTERM to the server, then to any child it left behind; SIGKILL to what is still up."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with suppress(psutil.NoSuchProcess):
            procs = tree_of(self.proc.pid)
            for group, wait in ((procs[:1], 15), (procs[1:], 5)):
                for p in group:
                    with suppress(psutil.NoSuchProcess):
                        p.terminate()
                for p in psutil.wait_procs(group, wait)[1]:
                    p.kill()
        self.proc.wait(5)


def start_all(servers: Iterable[Server]) -> None:
    for s in servers:
        s.start()


def stop_all(servers: Iterable[Server | None]) -> None:
    for s in filter(None, servers):
        s.stop()

# ---------------------------------------------------------------- clients


@dataclass
class Sent:
    status: int  # -1: no HTTP response (connection error)
    latency_s: float
    body: bytes
    at_s: float = 0.0  # time.perf_counter() when it completed


def request(port: int, method: str, path: str, body: bytes | None, timeout: float = 600,
            headers: Mapping[str, str] = HEADERS) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection: status, headers, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers) if body is not None else {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def send(conn: http.client.HTTPConnection, path: str, body: bytes, headers: Mapping[str, str] = HEADERS) -> Sent:
    """One timed POST on `conn`; a connection error is status -1 and closes it (the next request reconnects)."""
    t0 = time.perf_counter()
    try:
        conn.request("POST", path, body=body, headers=dict(headers))
        resp = conn.getresponse()
        sent = Sent(resp.status, 0.0, resp.read())
    except (OSError, http.client.HTTPException) as exc:
        sent = Sent(-1, 0.0, repr(exc).encode())
        conn.close()
    sent.at_s = time.perf_counter()
    sent.latency_s = sent.at_s - t0
    return sent


def post(port: int, body: bytes, path: str = PATH, timeout: float = 900,
         content_type: str = "application/json") -> Sent:
    """One timed POST on a new connection; a connection error is status -1."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        return send(conn, path, body, {"Content-Type": content_type})
    finally:
        conn.close()


def drive(port: int, payloads: list[bytes], concurrency: int, time_limit_s: float, path: str = PATH,
          stop: threading.Event | None = None) -> tuple[list[Sent | None], float]:
    """Post payloads in order from `concurrency` threads, each on its own keep-alive connection, until the time limit
    or `stop` (requests in flight finish): responses by payload index (None: not sent), the wall time to the last."""
    results: list[Sent | None] = [None] * len(payloads)
    counter, start = itertools.count(), time.perf_counter()
    deadline, finished = start + time_limit_s, [start]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while (i := next(counter)) < len(payloads) and time.perf_counter() < deadline and not (stop and stop.is_set()):
            results[i] = sent = send(conn, path, payloads[i])
            finished.append(sent.at_s)
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, max(finished) - start


def warm(server: Server, payloads: list[bytes], path: str = PATH) -> None:
    """Untimed requests, one at a time; all must answer 200."""
    sent, _ = drive(server.port, payloads, 1, 30, path)
    if bad := [s for s in sent if s is None or s.status != 200]:
        raise RuntimeError(f"{server.name}: warm-up on {path} failed: {bad[0]}; see {server.log}")

# ---------------------------------------------------------------- measuring


class RssSampler(threading.Thread):
    """Peak RSS of a process tree and of the children of `also`, sampled every `interval` s, re-listed every `relist` s;
    `every_s`: also (seconds since start, MiB) points that often; `cpu`: each one's CPU seconds last seen (cpu_seen)."""

    def __init__(self, pid: int, interval: float = 0.02, every_s: float | None = None,
                 also: Sequence[psutil.Process] = (), relist: float = 1.0, cpu: bool = False) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.every_s, self.also, self.relist = pid, interval, every_s, also, relist
        self.peak, self.points, self.t0 = 0, list[tuple[float, float]](), time.perf_counter()
        self.cpu_seen: dict[int, float] | None = {} if cpu else None  # pid -> its CPU seconds
        self._stop_event = threading.Event()

    def procs(self) -> list[psutil.Process]:
        return [*tree_of(self.pid), *(c for a in self.also for c in a.children(recursive=True))]

    def rss_of(self, p: psutil.Process) -> int:
        with p.oneshot():
            if self.cpu_seen is not None:
                self.cpu_seen[p.pid] = sum(p.cpu_times()[:2])
            return p.memory_info().rss

    def rss(self) -> int:
        return int(tree_sum(self.procs(), self.rss_of))

    def point(self, rss: int) -> None:
        self.points.append((round(time.perf_counter() - self.t0, 2), round(rss / MIB, 1)))

    def run(self) -> None:
        procs, listed = list[psutil.Process](), float("-inf")
        while not self._stop_event.is_set():
            with suppress(psutil.Error):  # the process exited (or we may not read it)
                if time.monotonic() - listed >= self.relist:
                    procs, listed = self.procs(), time.monotonic()
                rss = int(tree_sum(procs, self.rss_of))
                self.peak = max(self.peak, rss)
                if self.every_s and time.perf_counter() - self.t0 >= len(self.points) * self.every_s:
                    self.point(rss)
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        if self.every_s:
            self.point(self.rss())
        return self.peak


def measure_command(command: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None,
                    also: Sequence[psutil.Process] = ()) -> Result:
    """Run a command (killed past `timeout`): wall time, peak RSS of its process tree and of the trees under `also`
    (a Spark worker's executors), sampled every 50 ms, its CPU, exit code, and other processes' CPU."""
    def reaped_s() -> float:  # user+system CPU seconds of this process's reaped descendants
        return sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])

    reaped0, busy0, started = reaped_s(), busy_cpu_s(), time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    sampler = RssSampler(proc.pid, 0.05, also=also, relist=0, cpu=True)
    sampler.start()
    try:
        stderr, timed_out = proc.communicate(timeout=timeout)[1], False
    except subprocess.TimeoutExpired:
        for p in tree_of(proc.pid)[::-1]:
            p.kill()
        stderr, timed_out = proc.communicate()[1], True
    seconds, peak = time.perf_counter() - started, sampler.stop()
    # Reaped descendants are in the rusage; PySpark never reaps its JVM, which only sampling sees.
    own = max(reaped_s() - reaped0, sum((sampler.cpu_seen or {}).values()))
    other = max(0.0, busy_cpu_s() - busy0 - own)
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(peak / MIB), "exit_code": proc.returncode,
            "cpu_s": round(own, 1), "other_cpu_pct": round(100 * other / (seconds * (os.cpu_count() or 1)), 1),
            "timed_out": timed_out, "stderr_tail": stderr.decode(errors="replace")[-600:] if proc.returncode else ""}


class Usage:
    """Server, client and other processes' CPU over a stretch of wall time."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid, self.t0, self.client0, self.busy0 = pid, time.perf_counter(), time.process_time(), busy_cpu_s()
        self.server0 = self.server_s()

    def server_s(self) -> float:  # user+system CPU seconds of the server's process tree so far
        with suppress(psutil.NoSuchProcess):
            return tree_sum(tree_of(self.pid), lambda p: sum(p.cpu_times()[:2])) if self.pid else 0.0
        return 0.0

    def seconds(self) -> tuple[float, float, float, float]:
        """Wall, server, client and other processes' CPU seconds since the start."""
        wall = max(time.perf_counter() - self.t0, 1e-9)
        server = self.server_s() - self.server0
        client = time.process_time() - self.client0
        return wall, server, client, max(0.0, busy_cpu_s() - self.busy0 - server - client)

    def cores(self) -> dict[str, float]:
        wall, server, client, other = self.seconds()
        return {"server_cores": round(server / wall, 2), "client_cores": round(client / wall, 2),
                "other_processes_cores": round(other / wall, 2)}


def ms(values: Iterable[float], qs: Mapping[str, float] = {"p50": 0.5, "p99": 0.99, "max": 1.0},
       empty: float | None = None) -> dict[str, float | None]:
    """Percentiles (linear between the nearest two) in milliseconds of latencies in seconds; `empty` of none."""
    lat = [v * 1000 for v in values]
    return {k: round(float(np.percentile(lat, q * 100)), 2) if lat else empty for k, q in qs.items()}


def done(sent: Iterable[Sent | None]) -> list[Sent]:
    return [s for s in sent if s is not None]


def batched(port: int) -> dict[str, int]:
    """duckapi's counters of requests answered in batches (duckapi/api/batcher.py)."""
    status, _, body = request(port, "GET", "/healthz", None)
    return dict(json.loads(body).get("batched", {})) if status == 200 else {}


@dataclass
class Timing:
    """One server's measurements of one scenario, summed over its rounds."""

    sent: list[Sent | None]  # by payload index; None = not sent
    wall_s: float = 0.0
    idle_rss: int = -1  # before its first round
    peak_rss: int = 0
    cpu_s: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # server, client, other processes
    batched: dict[str, int] = field(default_factory=dict)  # duckapi's /healthz counters
    per_round: list[dict[str, float]] = field(default_factory=list)  # requests, req/s, server CPU per round

    def time_round(self, server: Server, payloads: list[bytes], lo: int, hi: int, sc: Scenario, counters: bool,
                   path: str, rounds: int) -> None:
        """Send payloads[lo:hi] to `path` (within this round's share of the time limit) and add up."""
        sampler = RssSampler(server.pid)
        before, usage = sampler.rss(), Usage(server.pid)
        counted = batched(server.port) if counters else {}
        sampler.start()
        self.sent[lo:hi], wall = drive(server.port, payloads[lo:hi], sc.concurrency, sc.time_limit_s / rounds, path)
        for key, value in (batched(server.port) if counters else {}).items():
            self.batched[key] = self.batched.get(key, 0) + value - counted[key]
        self.peak_rss = max(self.peak_rss, sampler.stop(), before)
        cpu = usage.seconds()[1:]
        self.cpu_s = [a + b for a, b in zip(self.cpu_s, cpu)]
        self.wall_s += wall
        self.idle_rss = before if self.idle_rss < 0 else self.idle_rss
        n = len(done(self.sent[lo:hi]))
        self.per_round.append({"requests": n, "rps": round(n / wall, 1) if wall > 0 else 0.0,
                               "server_cpu_ms_per_request": round(cpu[0] * 1000 / max(n, 1), 2)})

    def summary(self, rows: int) -> tuple[Result, Result]:
        """Requests, errors, throughput, latency, RSS; and server, client, other CPU per request and in cores."""
        finished, wall = done(self.sent), self.wall_s
        errors, n = [s for s in finished if s.status != 200], len(finished)
        return {
            "requests": n, "errors": len(errors),
            "error_examples": sorted({f"{s.status}: {s.body[:200].decode(errors='replace')}" for s in errors})[:3],
            "wall_s": round(wall, 3), "throughput_rps": round(n / wall, 2) if wall > 0 else 0.0,
            "rows_per_s": round(n * rows / wall) if wall > 0 else 0,
            "latency_ms": ms((s.latency_s for s in finished), {"p50": 0.5, "p95": 0.95, "max": 1.0}, float("nan")),
            "rss_mib": {"idle_before": round(self.idle_rss / MIB, 1), "peak": round(self.peak_rss / MIB, 1),
                        "growth": round((self.peak_rss - self.idle_rss) / MIB, 1)},
            "response_mib_total": round(sum(len(s.body) for s in finished) / MIB, 2),
        }, {"server_ms_per_request": round(self.cpu_s[0] * 1000 / max(n, 1), 2),
            "client_ms_per_request": round(self.cpu_s[1] * 1000 / max(n, 1), 2),
            "other_processes_cores": round(self.cpu_s[2] / max(wall, 1e-9), 2)}


def timed(servers: Mapping[str, Server], sc: Scenario, payloads: list[bytes], label: str = "",
          counted: Container[str] = (), paths: Mapping[str, str] | None = None, rounds: int = 3,
          abba: bool = False) -> dict[str, Timing]:
    """A scenario on each server (or endpoint: `paths`) in rounds that alternate them (a, b, a, b; `abba`: a, b, b, a),
    so a slow spell of this shared VM weighs on all alike; `counted`: servers whose batching counters are read."""
    per_server = {name: Timing([None] * len(payloads)) for name in servers}
    bounds = np.linspace(0, len(payloads), rounds + 1).astype(int)
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        order = list(servers.items())
        for name, s in (order[::-1] if abba and i % 2 else order):
            per_server[name].time_round(s, payloads, lo, hi, sc, name in counted, (paths or {}).get(name, PATH), rounds)
            time.sleep(0.3)
    for name, t in per_server.items():
        print(f"  {label}{sc.name:14} {name:8} {len(done(t.sent)):5} requests in {t.wall_s:6.1f}s", flush=True)
    return per_server


def scenario_results(sc: Scenario, per_server: Mapping[str, Timing], check: Callable[[str, Timing], Result],
                     *extra: str) -> Result:
    """A scenario's plan, then per server its summary, `check`'s verdict, CPU and the `extra` Timing fields named."""
    entry: Result = {"name": sc.name, "rows": sc.rows, "concurrency": sc.concurrency, "max_requests": sc.max_requests,
                     "time_limit_s": sc.time_limit_s}
    for name, t in per_server.items():
        summary, cpu = t.summary(sc.rows)
        entry[name] = summary | check(name, t) | {"cpu": cpu} | {k: getattr(t, k) for k in extra}
    return entry


def run_scenarios(servers: Mapping[str, Server], scenarios: Sequence[Scenario], indexes: Sequence[int], seed: int,
                  t0: float, during: Callable[[list[Workload]], Any] = lambda _: None,
                  **timing: Any) -> list[tuple[Scenario, Workload, dict[str, Timing]]]:
    """Scenarios on several servers: start them, make the payloads (seeded by scenario index) and answers meanwhile,
    check and warm them, time each scenario (`timing`: timed's options), then `during(workloads)`; stop them."""
    raw = []
    try:
        start_all(servers.values())
        print("generating payloads and oracle answers (servers start meanwhile)", flush=True)
        pool, seen = group_pool(), set[bytes]()
        workloads = [make_workload(sc, seed, i, pool, seen) for sc, i in zip(scenarios, indexes)]
        warmup = make_workload(WARMUP, seed, 1000, pool, seen)
        del seen
        rows = [{"group_id": "bench-preflight", "event_value": 7}, {"group_id": "bench-preflight", "event_value": 5}]
        for name, s in servers.items():  # each must answer from the posted rows (not the dbt seed) before we time it
            s.wait_ready()
            status, _, body = request(s.port, "POST", PATH, orjson.dumps(rows))
            if status != 200 or normalise(json.loads(body)) != normalise(analyse(rows)):
                raise RuntimeError(f"{name} does not answer from the posted rows: {status} {body[:300]!r}")
        for s in servers.values():
            drive(s.port, warmup.payloads, 1, 10)
        gc_frozen()
        print(f"ready after {time.monotonic() - t0:.0f}s; timing", flush=True)
        for sc, work in zip(scenarios, workloads):
            raw.append((sc, work, timed(servers, sc, work.payloads, **timing)))
        during(workloads)
    finally:
        stop_all(servers.values())
        gc.unfreeze()
    return raw


def gc_frozen() -> None:
    """Collect, then keep the collector from walking the stored payloads and answers while we time."""
    gc.collect()
    gc.freeze()

# ---------------------------------------------------------------- checking answers


def normalise(answer: Any) -> Any:
    """Order-free, int-normalised form, for the baseline (pandas may reorder or give floats)."""
    def _int(x: Any) -> Any:
        return int(x) if isinstance(x, float) and x.is_integer() else x

    if not (isinstance(answer, list) and len(answer) == 1 and isinstance(answer[0], dict)):
        return answer
    out = {}
    for key, items in answer[0].items():
        if not isinstance(items, list):
            out[key] = items
            continue
        entries = [{k: sorted(map(_int, v)) if isinstance(v, list) else _int(v) for k, v in e.items()}
                   if isinstance(e, dict) else e for e in items]
        out[key] = sorted(entries, key=lambda e: repr(sorted(e.items())) if isinstance(e, dict) else repr(e))
    return [out]


def verify(sent: Iterable[Sent | None], expected: Iterable[Any], baseline: bool = False) -> Result:
    """Wrong answers among the 200s: exact equality, or after normalising for the baseline."""
    def describe_diff(got: Any, want: Any) -> str:  # a hint for the report: the first part that differs
        if not (isinstance(got, list) and got and isinstance(got[0], dict)):
            return f"not an answer: {str(got)[:200]}"
        key = next((k for k in {**want[0], **got[0]} if got[0].get(k) != want[0].get(k)), None)
        return f"{key}: got {str(got[0].get(key))[:150]}, expected {str(want[0].get(key))[:150]}" if key else "differs"

    wrong, exact, examples = 0, 0, list[str]()
    for s, exp in zip(sent, expected):
        if s is None or s.status != 200:
            continue
        try:
            got = json.loads(s.body)
        except ValueError as exc:
            got = f"invalid JSON: {exc}"
        if got == exp:
            exact += 1
        elif not (baseline and normalise(got) == normalise(exp)):
            wrong += 1
            if len(examples) < 3:
                examples.append(describe_diff(got, exp))
    return {"wrong": wrong, "exact_order_matches": exact, "wrong_examples": examples}

# ---------------------------------------------------------------- the machine and the code


def git(*args: str, cwd: Path = ROOT, check: bool = True) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check).stdout.strip()


def tree_changes() -> list[str]:
    """Uncommitted changes to the served code at the time of the run (others share the checkout)."""
    return git("status", "--porcelain", "--", "duckapi", check=False).splitlines()


def package_versions(*packages: str) -> dict[str, str | None]:
    found = {d.metadata["Name"].lower(): d.version for d in metadata.distributions()}
    return {p: found.get(p.lower()) for p in packages}


def machine_info(servers: Mapping[str, Server]) -> Result:
    """The machine, the packages and the code a run measured (uncommitted changes to duckapi/ listed)."""
    return {"date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
            "loadavg_at_end": loadavg(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "memory_gib": round(psutil.virtual_memory().total / GIB, 1), "platform": platform.platform(),
            "python": platform.python_version(),
            "versions": package_versions("duckdb", "pandas", "pyarrow", "fastapi", "pydantic", "starlette", "uvicorn",
                                         "dbt-core", "dbt-duckdb"),
            "git_head": git("rev-parse", "HEAD", check=False) or None, "duckapi_tree_changes": tree_changes(),
            "duckapi_env": {k: v for k, v in os.environ.items() if k.startswith("DUCKAPI_")},
            "commands": {name: s.cmd for name, s in servers.items()}}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def quiet_first(args: argparse.Namespace, every_s: float = 30) -> Result:
    """With --max-load, wait (up to --wait-s) for the 1-minute load to drop below it (others share this VM)."""
    start, seen = time.monotonic(), list[float]()
    while args.max_load:
        seen.append(load1 := round(os.getloadavg()[0], 2))
        if (quiet := load1 < args.max_load) or (waited := time.monotonic() - start) + every_s > args.wait_s:
            print(f"1-minute load {load1}: {'quiet' if quiet else 'NOT quiet, going ahead'}", flush=True)
            return {"max_load": args.max_load, "quiet": quiet, "waited_s": round(time.monotonic() - start),
                    "load1_seen": seen, "loadavg_at_start": loadavg()}
        print(f"1-minute load {load1} >= {args.max_load}: waiting {every_s:.0f}s ({waited:.0f}s so far)", flush=True)
        time.sleep(every_s)
    return {"loadavg_at_start": loadavg()}

# ---------------------------------------------------------------- results files


def target(name: str, passed: bool, measured: str) -> Result:
    return {"target": name, "pass": passed, "measured": measured}


def fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or x != x else f"{x:,.{digits}f}"


def cell(x: Any) -> str:
    """A value as one Markdown table cell: lists joined, no line breaks or bars."""
    text = ", ".join(map(cell, x)) or "-" if isinstance(x, list) else "-" if x is None or x == {} else str(x)
    return text.replace("\n", " ").replace("|", "\\|")


def flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level, keys joined by ' '; lists of dicts stay whole (they become tables of their own)."""
    return {key: x for k, v in d.items()
            for key, x in (flat(v, f"{prefix}{k} ") if isinstance(v, dict) and v else {f"{prefix}{k}": v}).items()}


def is_rows(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def table(rows: Sequence[Mapping[str, Any]], sideways: bool = False) -> list[str]:
    """Rows of dicts as a Markdown table (a column per key; on its side when asked or for many more keys than rows);
    lists of rows inside follow as tables of their own."""
    flats = [flat(r) for r in rows]
    cols = list(dict.fromkeys(k for f in flats for k in f if not is_rows(f[k])))
    grid = [[c.replace("_", " ") for c in cols], *([cell(f.get(c)) for c in cols] for f in flats)]
    if sideways or len(cols) > 8 and len(rows) < len(cols) / 2:
        grid = [list(column) for column in zip(*grid)]
    lines = ["| " + " | ".join(r) + " |" for r in grid]
    lines.insert(1, "|" + "---|" * len(grid[0]))
    for f in flats:
        for k, v in f.items():
            if is_rows(v):
                lines += ["", f"{cell(f.get(cols[0]))}, {k.replace('_', ' ')}:".removeprefix(", "), "", *table(v)]
    return lines


def section(value: Any) -> list[str]:
    """A results entry: rows, or a dict of alike dicts (a row each), as a table; another dict as a key/value table."""
    if isinstance(value, dict) and value:
        subs = list(value.values())
        if len(subs) > 1 and all(isinstance(v, dict) for v in subs) and len({frozenset(v) for v in subs}) == 1:
            return table([{"": k, **v} for k, v in value.items()])
        return table([{"": "", **value}], sideways=True)
    return table(value) if is_rows(value) else [cell(value)]


def report(title: str, results: Result, about: str = "",
           skip: Container[str] = ("machine", "load", "quick", "targets", "total_s")) -> str:
    """Every bench's Markdown: the title, what ran and where, the targets, then each other entry under its heading."""
    m, load = results.get("machine"), results.get("load") or {}
    lines = [f"# {title}{' (quick run)' if results.get('quick') else ''}", ""]
    if isinstance(m, dict):
        versions = ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items() if v)
        lines += [f"{m.get('date_utc')}, {m.get('cpu_count')} CPUs, {m.get('memory_gib')} GiB, Python "
                  f"{m.get('python')}, git {(m.get('git_head') or '?')[:7]}; {versions}." + (
                      f" 1-minute load {cell(load.get('load1_seen', load.get('loadavg_at_start')))} before the run, "
                      f"{cell(m['loadavg_at_end'])} at the end." if m.get("loadavg_at_end") else ""), ""]
    lines += [about, ""] if about else []
    if targets := results.get("targets"):
        lines += ["## Targets", "", *(f"- {'PASS' if t['pass'] else 'FAIL'}: {t['target']} ({t['measured']})"
                                      for t in targets), ""]
    lines += [x for key, value in results.items() if key not in skip
              for x in (f"## {key.replace('_', ' ')}", "", *section(value), "")]
    return "\n".join(lines + ([f"Whole run: {results['total_s']} s."] if "total_s" in results else [])).rstrip("\n")


def results_paths(stem: str, quick: bool, out_json: Path | None = None,
                  out_md: Path | None = None) -> tuple[Path, Path]:
    """bench/<stem>_results.json and bench/<STEM>_RESULTS.md (quick: bench/.work/, -quick); or in $DUCKAPI_BENCH_OUT."""
    name, suffix = f"{stem}_results" if stem else "results", "-quick" if quick else ""
    folder = Path(os.environ.get("DUCKAPI_BENCH_OUT") or (WORK if quick else BENCH))
    return out_json or folder / f"{name}{suffix}.json", out_md or folder / f"{name.upper()}{suffix}.md"


def bench_main(doc: str, stem: str, run: Callable[[argparse.Namespace], Result], render: Callable[[Result], str],
               quick_help: str, argv: list[str] | None, seed: int | None = None,
               options: Callable[[argparse.ArgumentParser], Any] = lambda _: None) -> int:
    """A bench's command line (its `options`, --seed with a default, the shared ones), its run (SIGTERM unwinds through
    `finally`, so servers stop) and its results files; 1 if --strict and a target was missed."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if seed is not None:
        parser.add_argument("--seed", type=int, default=seed, help="payload seed")
    options(parser)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--max-load", type=float, default=0.0, help="first wait (up to --wait-s) for the 1-minute "
                        "load average to drop below this; 0: don't wait")
    parser.add_argument("--wait-s", type=float, default=600)
    parser.add_argument("--out-json", type=Path, help="default bench/<name>_results.json (quick: bench/.work/)")
    parser.add_argument("--out-md", type=Path, help="default bench/<NAME>_RESULTS.md (quick: bench/.work/)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--render-only", action="store_true", help="rewrite the Markdown from the JSON; no run")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out_json, out_md = results_paths(stem, args.quick, args.out_json, args.out_md)
    results = json.loads(out_json.read_text()) if args.render_only else run(args)
    written = {out_md: render(results)}
    if not args.render_only:
        written[out_json] = json.dumps(results, indent=2, ensure_ascii=False)
    for path, text in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    print(f"{written[out_md]}\nwrote {' and '.join(map(str, written))}")
    return int(args.strict and not all(t["pass"] for t in results.get("targets", [])))
