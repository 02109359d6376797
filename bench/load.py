"""Load benchmark: duckapi against the original FastAPI app (bench/baseline_server.py).

One run builds the dbt project into bench/.work/, starts both servers on free
loopback ports, replays the same distinct, seeded payloads against each, then
verifies every stored answer against the independent oracle (tests/oracle.py).
Payloads and expected answers are made before timing and answers are checked
after it, because client and servers share the same (few) cores.

    python -m bench.load            # full run, ~3-5 minutes; writes bench/results.json, bench/RESULTS.md
    python -m bench.load --quick    # smoke run, < 1 minute; writes under bench/.work/ unless --out-* given
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import http.client
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Container, Mapping

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
GIB = 1024**3
MIB = 1024**2

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
    extra = [f"{EMOJI[i % len(EMOJI)]}{i}" for i in range(size - len(HANDPICKED_IDS))]
    return HANDPICKED_IDS + extra


@dataclass(frozen=True)
class Scenario:
    name: str
    rows: int
    concurrency: int
    max_requests: int
    time_limit_s: float


#: Each scenario is timed in this many rounds per server, alternating the servers.
ROUNDS = 3
FULL = [
    Scenario("9 rows c=1", 9, 1, 1500, 15),
    Scenario("9 rows c=8", 9, 8, 3000, 15),
    Scenario("10k rows c=1", 10_000, 1, 100, 20),
    Scenario("100k rows c=1", 100_000, 1, 20, 30),
    Scenario("1M rows c=1", 1_000_000, 1, 5, 60),
]
QUICK = [
    Scenario("9 rows c=1", 9, 1, 20, 5),
    Scenario("9 rows c=8", 9, 8, 40, 5),
    Scenario("10k rows c=1", 10_000, 1, 3, 10),
    Scenario("100k rows c=1", 100_000, 1, 2, 10),
    Scenario("1M rows c=1", 1_000_000, 1, 1, 30),
]


# ---------------------------------------------------------------- payloads


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


def big_rows(rng: np.random.Generator, pool: list[str], n: int) -> list[dict[str, Any]]:
    """n rows over the whole pool: mostly small values (histograms stay bounded), 1% anywhere in int32."""
    gid = rng.integers(0, len(pool), n).tolist()
    values = rng.integers(0, 500, n)
    wild = rng.random(n) < 0.01
    values[wild] = rng.integers(INT32_MIN, INT32_MAX + 1, int(wild.sum()))
    values[0], values[1] = INT32_MIN, INT32_MAX
    return [{"group_id": pool[g], "event_value": v} for g, v in zip(gid, values.tolist())]


def make_workload(scenario: Scenario, seed: int, index: int, pool: list[str], seen: set[bytes]) -> Workload:
    """Distinct payload bytes and their oracle answers for every request the scenario may send."""
    rng = np.random.default_rng([seed, index])
    work = Workload([], [])
    while len(work.payloads) < scenario.max_requests:
        rows = small_rows(rng, pool) if scenario.rows == 9 else big_rows(rng, pool, scenario.rows)
        body = orjson.dumps(rows)
        if body in seen:
            continue
        seen.add(body)
        work.payloads.append(body)
        work.expected.append(analyse(rows))
    return work


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A server process we start, probe and stop by pid (with any children it spawned)."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    ready_path: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    cwd: Path = ROOT  # `python -m` imports from here first (another checkout: another code version)

    def start(self) -> None:
        log = open(WORK / "logs" / f"{self.name}.log", "wb")
        cmd = [a.replace("{port}", str(self.port)) for a in self.cmd]
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def wait_ready(self, timeout: float = 180) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {WORK / 'logs'}")
            try:
                status, _, _ = request(self.port, "GET", self.ready_path, None, timeout=2)
                if status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s; see {WORK / 'logs'}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for child in children:
            try:
                child.terminate()
                child.wait(5)
            except psutil.NoSuchProcess:
                pass
            except psutil.TimeoutExpired:
                child.kill()


def request(port: int, method: str, path: str, body: bytes | None, timeout: float = 600) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=HEADERS if body is not None else {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def build(db: Path, env: dict[str, str], cwd: Path = ROOT, log_name: str = "build.log") -> None:
    """`duckapi build` (of the code in `cwd`) into bench/.work; the baseline gets a copy with the same file stem."""
    db.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "duckapi.cli", "build", "--db", str(db)]
    with open(WORK / "logs" / log_name, "wb") as log:
        subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)


# ---------------------------------------------------------------- measuring


class RssSampler(threading.Thread):
    """Peak RSS of a process tree, sampled every ~20 ms (children re-listed every second)."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop_event = threading.Event()

    def tree(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def rss(self, procs: list[psutil.Process] | None = None) -> int:
        total = 0
        for p in procs or self.tree():
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def run(self) -> None:
        procs, listed = self.tree(), time.monotonic()
        while not self._stop_event.is_set():
            if time.monotonic() - listed > 1:
                procs, listed = self.tree(), time.monotonic()
            self.peak = max(self.peak, self.rss(procs))
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak

    def cpu_s(self) -> float:
        """User+system CPU seconds of the tree so far (to charge a scenario its server CPU)."""
        total = 0.0
        for p in self.tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total


@dataclass
class Sent:
    status: int  # -1: no HTTP response (connection error)
    latency_s: float
    body: bytes
    at_s: float = 0.0  # time.perf_counter() when it completed (drive sets it)


def drive(
    port: int, payloads: list[bytes], concurrency: int, time_limit_s: float, path: str = PATH,
    stop: threading.Event | None = None,
) -> tuple[list[Sent | None], float]:
    """Post payloads in order from `concurrency` threads, each on its own keep-alive connection.

    Stops taking new requests at the time limit or once `stop` is set (requests in flight
    finish). Returns the responses by payload index (None = not sent) and the wall time to
    the last completion.
    """
    results: list[Sent | None] = [None] * len(payloads)
    counter = itertools.count()
    start = time.perf_counter()
    deadline = start + time_limit_s
    finished = [start]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            i = next(counter)
            if i >= len(payloads) or time.perf_counter() >= deadline or (stop is not None and stop.is_set()):
                break
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=payloads[i], headers=HEADERS)
                resp = conn.getresponse()
                sent = Sent(resp.status, 0.0, resp.read())
            except (OSError, http.client.HTTPException) as exc:
                sent = Sent(-1, 0.0, repr(exc).encode())
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            t1 = time.perf_counter()
            sent.latency_s, sent.at_s = t1 - t0, t1
            results[i] = sent
            finished.append(t1)
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, max(finished) - start


@dataclass
class Timing:
    """One server's measurements of one scenario, summed over its rounds."""

    sent: list[Sent | None]  # by payload index; None = not sent
    wall_s: float = 0.0
    idle_rss: int = -1  # before its first round
    peak_rss: int = 0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    other_cpu_s: float = 0.0  # CPU used by anything else on the machine meanwhile (noise)
    batched: dict[str, int] = field(default_factory=dict)  # duckapi's /healthz counters
    per_round: list[dict[str, float]] = field(default_factory=list)  # requests, req/s, server CPU per round

    def time_round(self, server: Server, payloads: list[bytes], lo: int, hi: int, sc: Scenario, counters: bool,
                   path: str = PATH, rounds: int = ROUNDS) -> None:
        """Send payloads[lo:hi] to `path` (within this round's share of the time limit) and add up."""
        assert server.proc is not None
        sampler = RssSampler(server.proc.pid)
        before = sampler.rss()
        server_cpu, client_cpu, busy = sampler.cpu_s(), time.process_time(), busy_cpu_s()
        counted = batched(server.port) if counters else {}
        sampler.start()
        sent, wall = drive(server.port, payloads[lo:hi], sc.concurrency, sc.time_limit_s / rounds, path)
        for key, value in (batched(server.port) if counters else {}).items():
            self.batched[key] = self.batched.get(key, 0) + value - counted[key]
        self.peak_rss = max(self.peak_rss, sampler.stop(), before)
        server_cpu, client_cpu = sampler.cpu_s() - server_cpu, time.process_time() - client_cpu
        self.other_cpu_s += max(0.0, busy_cpu_s() - busy - server_cpu - client_cpu)
        self.server_cpu_s += server_cpu
        self.client_cpu_s += client_cpu
        self.sent[lo:hi] = sent
        self.wall_s += wall
        n = sum(x is not None for x in sent)
        self.per_round.append({"requests": n, "rps": round(n / wall, 1) if wall > 0 else 0.0,
                               "server_cpu_ms_per_request": round(server_cpu * 1000 / max(n, 1), 2)})
        if self.idle_rss < 0:
            self.idle_rss = before


def time_alternating(
    servers: Mapping[str, Server], sc: Scenario, payloads: list[bytes], counted: Container[str] = (),
    paths: Mapping[str, str] | None = None, rounds: int = ROUNDS, abba: bool = False,
) -> dict[str, Timing]:
    """Time one scenario on each server (or endpoint: `paths` by name; default PATH), the
    payloads split into `rounds` rounds that alternate them (a, b, a, b, ...; with `abba`
    every other round in reverse order: a, b, b, a, ...), so a slow spell of this shared VM
    weighs on all rather than on whichever was being timed.
    `counted`: names whose /healthz batching counters are read around each round."""
    per_server = {name: Timing([None] * len(payloads)) for name in servers}
    bounds = np.linspace(0, len(payloads), rounds + 1).astype(int)
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        order = list(servers.items())
        for name, s in (order[::-1] if abba and i % 2 else order):
            path = (paths or {}).get(name, PATH)
            per_server[name].time_round(s, payloads, lo, hi, sc, counters=name in counted, path=path, rounds=rounds)
            time.sleep(0.3)
    return per_server


def cpu_summary(t: Timing) -> dict[str, float]:
    """Server, client and other processes' CPU of one Timing, per request and in cores."""
    n = max(sum(x is not None for x in t.sent), 1)
    return {"server_ms_per_request": round(t.server_cpu_s * 1000 / n, 2),
            "client_ms_per_request": round(t.client_cpu_s * 1000 / n, 2),
            "other_processes_cores": round(t.other_cpu_s / max(t.wall_s, 1e-9), 2)}


def batched(port: int) -> dict[str, int]:
    """duckapi's counters of requests answered in batches (duckapi/api/batcher.py)."""
    status, _, body = request(port, "GET", "/healthz", None)
    return dict(json.loads(body).get("batched", {})) if status == 200 else {}


def busy_cpu_s() -> float:
    """Machine-wide non-idle CPU seconds, to expose other processes competing for the cores."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


# ---------------------------------------------------------------- verifying


def _int(x: Any) -> Any:
    return int(x) if isinstance(x, float) and x.is_integer() else x


def normalise(answer: Any) -> Any:
    """Order-free, int-normalised form, for the baseline (pandas may reorder or give floats)."""
    if not (isinstance(answer, list) and len(answer) == 1 and isinstance(answer[0], dict)):
        return answer
    out = {}
    for key, items in answer[0].items():
        if not isinstance(items, list):
            out[key] = items
            continue
        entries = [
            {k: sorted(map(_int, v)) if isinstance(v, list) else _int(v) for k, v in e.items()}
            if isinstance(e, dict) else e
            for e in items
        ]
        out[key] = sorted(entries, key=lambda e: repr(sorted(e.items())) if isinstance(e, dict) else repr(e))
    return [out]


def describe_diff(got: Any, expected: Any) -> str:
    """A short hint where two answers differ, for the report."""
    if not (isinstance(got, list) and got and isinstance(got[0], dict)):
        return f"not an answer: {str(got)[:200]}"
    for key, exp in expected[0].items():
        g = got[0].get(key)
        if g != exp:
            if not isinstance(g, list):
                return f"{key}: got {str(g)[:100]}"
            idx = next((i for i, (a, b) in enumerate(zip(g, exp)) if a != b), min(len(g), len(exp)))
            return (f"{key}: {len(g)} items vs {len(exp)} expected; first difference at {idx}: "
                    f"got {str(g[idx:idx + 1])[:120]} expected {str(exp[idx:idx + 1])[:120]}")
    extra = set(got[0]) - set(expected[0])
    return f"unexpected keys {sorted(extra)}" if extra else "differs"


def verify(server: str, sent: list[Sent | None], expected: list[Any]) -> dict[str, Any]:
    """Wrong answers among the 200s: exact equality for duckapi, normalised for the baseline."""
    wrong = exact = 0
    examples: list[str] = []
    for s, exp in zip(sent, expected):
        if s is None or s.status != 200:
            continue
        try:
            got = json.loads(s.body)
        except ValueError as exc:
            got = f"invalid JSON: {exc}"
        if got == exp:
            exact += 1
            continue
        if server == "baseline" and normalise(got) == normalise(exp):
            continue
        wrong += 1
        if len(examples) < 3:
            examples.append(describe_diff(got, exp))
    return {"wrong": wrong, "exact_order_matches": exact, "wrong_examples": examples}


def summarise(sent: list[Sent | None], wall_s: float, idle: int, peak: int, rows: int) -> dict[str, Any]:
    done = [s for s in sent if s is not None]
    errors = [s for s in done if s.status != 200]
    lat = sorted(s.latency_s * 1000 for s in done)
    return {
        "requests": len(done),
        "errors": len(errors),
        "error_examples": sorted({f"{s.status}: {s.body[:200].decode(errors='replace')}" for s in errors})[:3],
        "wall_s": round(wall_s, 3),
        "throughput_rps": round(len(done) / wall_s, 2) if wall_s > 0 else 0.0,
        "rows_per_s": round(len(done) * rows / wall_s) if wall_s > 0 else 0,
        "latency_ms": {k: round(percentile(lat, q), 2) for k, q in (("p50", 0.5), ("p95", 0.95), ("max", 1.0))},
        "rss_mib": {"idle_before": round(idle / MIB, 1), "peak": round(peak / MIB, 1),
                    "growth": round((peak - idle) / MIB, 1)},
        "response_mib_total": round(sum(len(s.body) for s in done) / MIB, 2),
    }


# ---------------------------------------------------------------- reporting


def machine_info(servers: dict[str, Server]) -> dict[str, Any]:
    versions = {}
    for pkg in ("duckdb", "pandas", "pyarrow", "fastapi", "pydantic", "starlette", "uvicorn", "dbt-core", "dbt-duckdb"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:  # read-only; the tree may have uncommitted changes, so this is only a hint
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        head = ""
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_head": head or None,
        "duckapi_env": {k: v for k, v in os.environ.items() if k.startswith("DUCKAPI_")},
        "commands": {name: s.cmd for name, s in servers.items()},
    }


def wait_for_quiet(max_load: float, wait_s: float = 600, every_s: float = 30) -> dict[str, Any]:
    """Wait until the 1-minute load average is below `max_load` (others share this VM),
    re-checking every `every_s` for at most `wait_s`; then go ahead anyway. What was seen."""
    start, seen = time.monotonic(), []
    while True:
        load1 = round(os.getloadavg()[0], 2)
        seen.append(load1)
        waited = time.monotonic() - start
        if load1 < max_load or waited + every_s > wait_s:
            quiet = load1 < max_load
            print(f"1-minute load {load1} ({'quiet' if quiet else 'NOT quiet, going ahead'}) "
                  f"after waiting {waited:.0f}s", flush=True)
            return {"max_load": max_load, "quiet": quiet, "waited_s": round(waited), "load1_seen": seen,
                    "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}
        print(f"1-minute load {load1} >= {max_load}: waiting {every_s:.0f}s", flush=True)
        time.sleep(every_s)


def fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or x != x else f"{x:,.{digits}f}"


def _batched_cell(server: dict[str, Any]) -> str:
    counts = server.get("batched")
    if not counts:
        return "-"
    return f"{counts.get('requests', 0)} in {counts.get('statements', 0)} statements"


def markdown(results: dict[str, Any]) -> str:
    rows = [
        "| scenario | duckapi req/s | duckapi p50 ms | baseline req/s | baseline p50 ms | speedup (req/s) "
        "| p50 faster | duckapi peak RSS MiB | baseline peak RSS MiB | errors duckapi / baseline "
        "| wrong duckapi / baseline |",
        "|---|---:|---:|---:|---:|---:|:-:|---:|---:|:-:|:-:|",
    ]
    for sc in results["scenarios"]:
        d, b = sc["duckapi"], sc["baseline"]
        rows.append(
            f"| {sc['name']} | {fmt(d['throughput_rps'])} | {fmt(d['latency_ms']['p50'], 2)} "
            f"| {fmt(b['throughput_rps'])} | {fmt(b['latency_ms']['p50'], 2)} | {fmt(sc['speedup'])}x "
            f"| {'yes' if sc['p50_faster'] else 'NO'} | {fmt(d['rss_mib']['peak'], 0)} | {fmt(b['rss_mib']['peak'], 0)} "
            f"| {d['errors']} / {b['errors']} | {d['wrong']} / {b['wrong']} |"
        )
    detail = [
        "| scenario | server | requests | p95 ms | max ms | rows/s | server CPU ms/req | client CPU ms/req "
        "| other procs' CPU (cores) | idle RSS MiB | RSS growth MiB | answered in batches |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for sc in results["scenarios"]:
        for name in ("duckapi", "baseline"):
            r = sc[name]
            detail.append(
                f"| {sc['name']} | {name} | {r['requests']} | {fmt(r['latency_ms']['p95'], 2)} "
                f"| {fmt(r['latency_ms']['max'], 2)} | {r['rows_per_s']:,} | {fmt(r['cpu']['server_ms_per_request'], 2)} "
                f"| {fmt(r['cpu']['client_ms_per_request'], 2)} | {fmt(r['cpu']['other_processes_cores'], 2)} "
                f"| {fmt(r['rss_mib']['idle_before'], 0)} "
                f"| {fmt(r['rss_mib']['growth'], 0)} | {_batched_cell(r)} |"
            )
    targets = [f"- {'PASS' if t['pass'] else 'FAIL'}: {t['target']} ({t['measured']})" for t in results["targets"]]
    probes = results["probes"]
    m = results["machine"]
    return "\n".join([
        f"# Load benchmark: duckapi vs the original FastAPI app{' (quick run)' if results['quick'] else ''}",
        "",
        f"{m['date_utc']}, {m['cpu_count']} CPUs ({m['cpu_affinity']} usable), {m['memory_gib']} GiB, "
        f"Python {m['python']}, DuckDB {m['versions']['duckdb']}, pandas {m['versions']['pandas']}. "
        "Client and both servers share the machine; one server is loaded at a time, in "
        f"{results.get('rounds', 1)} alternating rounds per scenario.",
        "Every request posts a distinct seeded payload; every 200 answer is checked after timing: duckapi "
        "for exact equality with tests/oracle.py, the baseline after sorting lists and normalising numbers. "
        "Speedup is duckapi req/s over baseline req/s. `python -m bench.load` regenerates this file.",
        "",
        *rows,
        "",
        "## Targets",
        "",
        *targets,
        "",
        "## Selecting one part",
        "",
        f"duckapi only, {results['selection']['rows']:,} rows, {results['selection']['one']['requests']} distinct payloads: "
        f"all seven parts p50 {results['selection']['all']['p50_ms']} ms, `?select={results['selection']['part']}` p50 "
        f"{results['selection']['one']['p50_ms']} ms: {results['selection']['ratio_all_over_one']}x faster "
        f"(correct answers: {results['selection']['all']['correct']} and {results['selection']['one']['correct']} of "
        f"{results['selection']['one']['requests']}).",
        "",
        "## Probes",
        "",
        f"- event_value 2**31: duckapi {probes['int32_overflow']['duckapi']['status']} "
        f"(correct: {probes['int32_overflow']['duckapi']['correct']}), baseline "
        f"{probes['int32_overflow']['baseline']['status']}; baseline still answers afterwards: "
        f"{probes['baseline_healthy_after_overflow']}",
        f"- same payload twice, list order differs: baseline {probes['order_differs']['baseline']}, "
        f"duckapi {probes['order_differs']['duckapi']}; byte-identical answers: baseline "
        f"{probes['bytes_identical']['baseline']}, duckapi {probes['bytes_identical']['duckapi']}",
        f"- baseline answers in the oracle's exact order (no normalisation needed): "
        f"{results['baseline_exact_order_total']} of {results['baseline_ok_total']}",
        "",
        "## Details",
        "",
        "Both servers run with their defaults: the baseline with uvicorn's per-request access log, duckapi without (its default). \"Other procs' CPU\" is "
        "what the rest of the machine used meanwhile, in cores out of "
        f"{m['cpu_count']}: above ~0.1 the numbers in that row are disturbed.",
        "",
        *detail,
        "",
    ])


def targets(scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {s["name"]: s for s in scenarios}
    out = []
    c8 = by.get("9 rows c=8")
    if c8:
        out.append({"target": "9 rows c=8: duckapi throughput >= 10x baseline", "pass": c8["speedup"] >= 10,
                    "measured": f"{c8['speedup']:.1f}x"})
    for s in scenarios:
        out.append({"target": f"{s['name']}: duckapi p50 below baseline p50", "pass": s["p50_faster"],
                    "measured": f"{s['duckapi']['latency_ms']['p50']} ms vs {s['baseline']['latency_ms']['p50']} ms"})
    big = by.get("1M rows c=1")
    if big:
        peak = big["duckapi"]["rss_mib"]["peak"]
        out.append({"target": "1M rows: duckapi peak server RSS < 1 GiB", "pass": peak < 1024,
                    "measured": f"{peak:.0f} MiB"})
    for s in scenarios:
        d = s["duckapi"]
        if d["errors"] or d["wrong"] or d["requests"] == 0:
            out.append({"target": f"{s['name']}: duckapi answers all correct", "pass": False,
                        "measured": f"{d['requests']} requests, {d['errors']} errors, {d['wrong']} wrong"})
    return out


# ---------------------------------------------------------------- the run


def probe_answers(servers: dict[str, Server]) -> dict[str, Any]:
    """Checks outside the timed scenarios: int32 overflow, and repeatability of list order."""
    over = [{"group_id": "🦆", "event_value": 2**31}, {"group_id": "🐇", "event_value": 1}]
    rng = np.random.default_rng(99)
    rows = big_rows(rng, group_pool(), 2000)
    body = orjson.dumps(rows)
    probes: dict[str, Any] = {"int32_overflow": {}, "order_differs": {}, "bytes_identical": {}}
    for name, server in servers.items():
        status, _, answer = request(server.port, "POST", PATH, orjson.dumps(over))
        correct = status == 200 and json.loads(answer) == analyse(over)
        probes["int32_overflow"][name] = {"status": status, "correct": correct, "body": answer[:300].decode(errors="replace")}
        first = request(server.port, "POST", PATH, body)[2]
        second = request(server.port, "POST", PATH, body)[2]
        probes["order_differs"][name] = json.loads(first) != json.loads(second)
        probes["bytes_identical"][name] = first == second
    status, _, answer = request(servers["baseline"].port, "POST", PATH, orjson.dumps(rows[:9]))
    probes["baseline_healthy_after_overflow"] = status == 200 and normalise(json.loads(answer)) == normalise(analyse(rows[:9]))
    return probes


SELECTED_PART = "group_sums"


def measure_selection(port: int, work: Workload) -> dict[str, Any]:
    """duckapi alone: the same large payloads with all seven parts, then one part selected."""
    payloads, expected = work.payloads[:3], work.expected[:3]
    timings: dict[str, Any] = {}
    for label, path in (("all", PATH), ("one", f"{PATH}?select={SELECTED_PART}")):
        sent, _ = drive(port, payloads, 1, 300, path)
        ok = [x for x in sent if x is not None and x.status == 200]
        if label == "one":
            want = [[{SELECTED_PART: e[0][SELECTED_PART]}] for e in expected]
        else:
            want = expected
        timings[label] = {
            "p50_ms": round(sorted(x.latency_s for x in ok)[len(ok) // 2] * 1000, 1) if ok else None,
            "correct": sum(x is not None and x.status == 200 and json.loads(x.body) == w for x, w in zip(sent, want)),
            "requests": len(payloads),
        }
    all_ms, one_ms = timings["all"]["p50_ms"], timings["one"]["p50_ms"]
    timings["ratio_all_over_one"] = round(all_ms / one_ms, 2) if all_ms and one_ms else None
    timings["part"] = SELECTED_PART
    timings["rows"] = work.expected and sum(r["group_count"] for r in work.expected[0][0]["group_histogram"])
    return timings


def preflight(servers: dict[str, Server]) -> None:
    """Both servers must answer from the posted rows (not the dbt seed) before we time them."""
    rows = [{"group_id": "bench-preflight", "event_value": 7}, {"group_id": "bench-preflight", "event_value": 5}]
    for name, server in servers.items():
        status, _, body = request(server.port, "POST", PATH, orjson.dumps(rows))
        if status != 200 or normalise(json.loads(body)) != normalise(analyse(rows)):
            raise RuntimeError(f"{name} does not answer from the posted rows: {status} {body[:300]!r}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    scenarios = QUICK if args.quick else FULL
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # Keep dbt's manifest and logs inside bench/.work, away from the project's own target/.
    env["DUCKAPI_TARGET_PATH"] = str(WORK / "target")
    for key in ("HOST", "PORT"):  # flags set these; stray values must not leak in
        env.pop(key, None)
    ours_db, base_db = WORK / "duckapi" / "dev.duckdb", WORK / "baseline" / "dev.duckdb"
    t0 = time.monotonic()
    print("building the dbt project into", ours_db.parent, flush=True)
    build(ours_db, env)
    base_db.parent.mkdir(parents=True, exist_ok=True)
    for old in base_db.parent.glob("dev.duckdb*"):
        old.unlink()
    shutil.copy2(ours_db, base_db)  # same stem "dev": the catalog name the views were compiled with
    servers = {
        "duckapi": Server("duckapi", [sys.executable, "-m", "duckapi.cli", "serve", "--host", "127.0.0.1",
                                      "--port", "{port}", "--db", str(ours_db)], env, "/healthz"),
        "baseline": Server("baseline", [sys.executable, "-m", "uvicorn", "bench.baseline_server:app",
                                        "--host", "127.0.0.1", "--port", "{port}"],
                           {**env, "BASELINE_DB_PATH": str(base_db)}, "/openapi.json"),
    }
    results: dict[str, Any] = {"quick": args.quick, "seed": args.seed, "rounds": ROUNDS, "scenarios": []}
    raw: list[tuple[Scenario, Workload, dict[str, Timing]]] = []
    try:
        for s in servers.values():
            s.start()
        print("generating payloads and oracle answers (servers start meanwhile)", flush=True)
        pool, seen = group_pool(), set()
        workloads = [make_workload(sc, args.seed, i, pool, seen) for i, sc in enumerate(scenarios)]
        warmup = make_workload(Scenario("warmup", 9, 1, 20, 5), args.seed, 1000, pool, seen)
        del seen
        for s in servers.values():
            s.wait_ready()
        preflight(servers)
        for s in servers.values():
            drive(s.port, warmup.payloads, 1, 10)
        gc.collect()
        gc.freeze()  # keep the collector from walking the stored answers while we time
        print(f"ready after {time.monotonic() - t0:.0f}s; timing", flush=True)
        for sc, work in zip(scenarios, workloads):
            # Rounds alternate the servers (duckapi, baseline, duckapi, ...).
            per_server = time_alternating(servers, sc, work.payloads, counted={"duckapi"})
            for name, timing in per_server.items():
                n = sum(x is not None for x in timing.sent)
                print(f"  {sc.name:14} {name:8} {n:5} requests in {timing.wall_s:6.1f}s", flush=True)
            raw.append((sc, work, per_server))
        results["probes"] = probe_answers(servers)
        results["selection"] = measure_selection(servers["duckapi"].port, workloads[-1])
    finally:
        for s in servers.values():
            s.stop()
    gc.unfreeze()
    print("verifying answers", flush=True)
    exact_total = ok_total = 0
    for sc, work, per_server in raw:
        entry: dict[str, Any] = {"name": sc.name, "rows": sc.rows, "concurrency": sc.concurrency,
                                 "max_requests": sc.max_requests, "time_limit_s": sc.time_limit_s}
        for name, t in per_server.items():
            entry[name] = summarise(t.sent, t.wall_s, t.idle_rss, t.peak_rss, sc.rows) | verify(name, t.sent, work.expected)
            entry[name]["cpu"] = cpu_summary(t)
        entry["duckapi"]["batched"] = per_server["duckapi"].batched
        b, d = entry["baseline"], entry["duckapi"]
        exact_total += b["exact_order_matches"]
        ok_total += b["requests"] - b["errors"]
        entry["speedup"] = round(d["throughput_rps"] / b["throughput_rps"], 2) if b["throughput_rps"] else None
        entry["p50_faster"] = bool(d["latency_ms"]["p50"] < b["latency_ms"]["p50"])
        results["scenarios"].append(entry)
    results["baseline_exact_order_total"], results["baseline_ok_total"] = exact_total, ok_total
    results["targets"] = targets(results["scenarios"])
    results["machine"] = machine_info(servers)
    results["total_s"] = round(time.monotonic() - t0, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny request counts: a smoke run under a minute")
    parser.add_argument("--seed", type=int, default=20240521, help="payload seed")
    results_options(parser, "")
    return run_and_write(parser.parse_args(argv), "", run, markdown)


def write_results(results: dict[str, Any], out_json: Path, out_md: Path,
                  render: Callable[[dict[str, Any]], str], strict: bool) -> int:
    """Write the JSON and the Markdown report, print it; 1 if strict and a target failed."""
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    text = render(results)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(text)
    print(text)
    print(f"wrote {out_json} and {out_md} in {results['total_s']}s")
    return 1 if strict and not all(t["pass"] for t in results["targets"]) else 0


def results_options(parser: argparse.ArgumentParser, stem: str) -> None:
    """The options every benchmark shares: wait for a quiet machine, where results go, --strict."""
    name = f"{stem}_results" if stem else "results"
    parser.add_argument("--max-load", type=float, default=0.0,
                        help="first wait (up to --wait-s) for the 1-minute load average to drop below this; 0: don't wait")
    parser.add_argument("--wait-s", type=float, default=600)
    parser.add_argument("--out-json", type=Path, help=f"default bench/{name}.json (quick: bench/.work/)")
    parser.add_argument("--out-md", type=Path, help=f"default bench/{name.upper()}.md (quick: bench/.work/)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")


def run_and_write(args: argparse.Namespace, stem: str, run: Callable[[argparse.Namespace], dict[str, Any]],
                  render: Callable[[dict[str, Any]], str]) -> int:
    """Run the benchmark (SIGTERM unwinds through `finally`, so servers stop) and write its
    results where `results_options` says: bench/, or bench/.work/ for a quick run."""
    name = f"{stem}_results" if stem else "results"
    quick = "-quick" if args.quick else ""
    out_json = args.out_json or ((WORK if quick else BENCH) / f"{name}{quick}.json")
    out_md = args.out_md or ((WORK if quick else BENCH) / f"{name.upper()}{quick}.md")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return write_results(run(args), out_json, out_md, render, args.strict)


if __name__ == "__main__":
    sys.exit(main())
