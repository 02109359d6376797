"""Faults benchmark: duckapi on the bundled project under overload, killed processes,
slow connections and a long soak.

Every timed request posts a distinct seeded 9-row payload to /analyse_data/; every 200
answer is checked after timing for exact equality with tests/oracle.py. Four scenarios,
each on a server of its own (all started together after one `duckapi build`):

1. Overload. Capacity first: closed loop, 8 keep-alive connections (bench/load.py's
   drive). Then an open loop offers 4x that rate for 60 s: requests are due at fixed
   times whatever the answers, sent by an asyncio (uvloop) client over a pool of
   keep-alive connections (a new one when all are busy; every fourth request says
   `Connection: close`, as urllib does, and its connection closes after the answer), against a server with
   DUCKAPI_MAX_QUEUE=16. Reported: offered vs target rate and how late the client sent,
   accepted (200) and rejected (503) latency from the moment of sending, other statuses,
   server RSS every second.
2. Kill -9. `--workers 2`, closed loop c=8: one worker (a child of the server process) is
   killed at ~5 s; a poller attributes each of its answers to the worker that holds the
   server side of its connection (psutil), to time when the replacement answers; the
   0.5 s throughput buckets time the recovery. Then the whole server (supervisor and
   workers) is killed under the same load and restarted on the same port: time to the
   first 200 and to full throughput.
3. Slow connections. 1,000 connections that send a partial request (line, then headers)
   one byte per second, plus 100 that send nothing and 100 idle after one complete
   request, while a normal client posts at c=1; compared with c=1 before they opened.
4. Soak at c=2 (10 minutes; --soak-seconds): server RSS every 5 s, per-minute throughput
   and latency.

    python -m bench.faults            # full run, ~15 minutes: bench/faults_results.json, bench/FAULTS_RESULTS.md
    python -m bench.faults --quick    # smoke run, ~1.5 minutes; writes under bench/.work/ unless --out-* given
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import orjson
import psutil
import uvloop

from bench.load import (
    HEADERS, INT32_MAX, INT32_MIN, MIB, PATH, WORK, RssSampler, Sent, Server, build, busy_cpu_s, drive, fmt,
    group_pool, machine_info, percentile, results_options, run_and_write, verify, wait_for_quiet,
)
from bench.reference import dbt_env, load_before, tree_changes
from tests.oracle import analyse

HERE = WORK / "faults"
#: The open-loop client reuses a pooled connection only if it was idle for less than this
#: (uvicorn's keep-alive timeout is 5 s; reusing one it is closing fails with 0 bytes read).
KEEP_ALIVE_REUSE_S = 4.0
#: Share of 9-row payloads with one event_value anywhere in int32 (as bench/load.py's small_rows).
WILD_VALUE_RATE = 0.05


@dataclass(frozen=True)
class Plan:
    capacity_s: float = 10.0
    capacity_concurrency: int = 8
    overload_factor: float = 4.0
    overload_s: float = 60.0
    max_queue: int = 16
    max_connections: int = 512  # the open-loop client's pool
    kill_load_s: float = 20.0
    kill_at_s: float = 5.0
    kill_concurrency: int = 8
    restart_load_s: float = 10.0
    slow_connections: int = 1000
    idle_connections: int = 100
    keepalive_connections: int = 100
    slow_byte_every_s: float = 1.0
    slow_baseline_s: float = 10.0
    slow_s: float = 45.0
    soak_s: float = 600.0
    soak_concurrency: int = 2
    soak_rss_every_s: float = 5.0
    probe_every_s: float = 0.025  # the independent client's pause between its requests


FULL = Plan()
QUICK = Plan(capacity_s=3, overload_s=8, kill_load_s=8, kill_at_s=3, restart_load_s=4,
             slow_baseline_s=3, slow_s=8, soak_s=30)


# ---------------------------------------------------------------- payloads


class Payloads:
    """Distinct seeded 9-row payloads, made in bulk (numpy draws, one orjson.dumps each):
    three groups of group_pool() per payload, event values 0..29, sometimes one anywhere
    in int32. The expected answers are computed only when checking (`expected`)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.pool = group_pool()
        self.seen: set[bytes] = set()
        self.batches = 0

    def make(self, n: int) -> list[bytes]:
        rng = np.random.default_rng([self.seed, self.batches])
        self.batches += 1
        out: list[bytes] = []
        while len(out) < n:
            m = int((n - len(out)) * 1.01) + 8
            groups = rng.integers(0, len(self.pool), (m, 3))
            distinct = (groups[:, 0] != groups[:, 1]) & (groups[:, 0] != groups[:, 2]) & (groups[:, 1] != groups[:, 2])
            which = rng.integers(0, 3, (m, 9))
            values = rng.integers(0, 30, (m, 9))
            wild = rng.random(m) < WILD_VALUE_RATE
            values[wild, rng.integers(0, 9, int(wild.sum()))] = rng.integers(INT32_MIN, INT32_MAX + 1, int(wild.sum()))
            gid = np.take_along_axis(groups, which, axis=1)
            pool = self.pool
            for ok, g_row, v_row in zip(distinct.tolist(), gid.tolist(), values.tolist()):
                if not ok:
                    continue
                body = orjson.dumps([{"group_id": pool[g], "event_value": v} for g, v in zip(g_row, v_row)])
                if body in self.seen:
                    continue
                self.seen.add(body)
                out.append(body)
                if len(out) == n:
                    break
        return out


def expected(sent: Iterable[Sent | None], payloads: Iterable[bytes]) -> Iterator[list[dict[str, Any]] | None]:
    """The oracle's answers, one by one, for the 200s only (bench/load.py's verify takes any iterable)."""
    for s, body in zip(sent, payloads):
        yield analyse(orjson.loads(body)) if s is not None and s.status == 200 else None


def check(sent: list[Sent | None], payloads: list[bytes]) -> dict[str, Any]:
    """Wrong answers among the 200s (exact equality with tests/oracle.py)."""
    out = verify("duckapi", sent, expected(sent, payloads))
    del out["exact_order_matches"]
    return out


# ---------------------------------------------------------------- servers and measuring


def raise_nofile() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit; servers started later inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def faults_server(name: str, db: Path, extra_args: Sequence[str] = (), extra_env: dict[str, str] | None = None) -> Server:
    env = {**dbt_env(), "DUCKAPI_TARGET_PATH": str(HERE / f"target-{name}"), "DUCKAPI_DRAIN_SECONDS": "0",
           **(extra_env or {})}
    cmd = [sys.executable, "-m", "duckapi.cli", "serve", "--host", "127.0.0.1", "--port", "{port}", "--db", str(db),
           *extra_args]
    return Server(f"faults-{name}", cmd, env, "/healthz")


def tree(server: Server) -> list[psutil.Process]:
    assert server.proc is not None
    root = psutil.Process(server.proc.pid)
    return [root, *root.children(recursive=True)]


def workers(server: Server) -> list[psutil.Process]:
    """The uvicorn workers of a --workers N server (spawned children of the supervisor)."""
    assert server.proc is not None
    out = []
    for p in psutil.Process(server.proc.pid).children():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline()):
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


class RssSeries(threading.Thread):
    """The server tree's RSS every `every_s` (load.RssSampler's process-tree sum): (s, MiB)."""

    def __init__(self, pid: int, every_s: float) -> None:
        super().__init__(daemon=True)
        self.sampler = RssSampler(pid)
        self.every_s = every_s
        self.points: list[tuple[float, float]] = []
        self.t0 = time.perf_counter()
        self._done = threading.Event()

    def sample(self) -> None:
        self.points.append((round(time.perf_counter() - self.t0, 2), round(self.sampler.rss() / MIB, 1)))

    def run(self) -> None:
        while True:
            self.sample()
            if self._done.wait(self.every_s):
                return

    def stop(self) -> list[tuple[float, float]]:
        self._done.set()
        self.join()
        self.sample()
        return self.points


@dataclass
class Usage:
    """Server, client and other processes' CPU over a stretch of wall time (cores)."""

    pid: int
    t0: float = field(default_factory=time.perf_counter)
    server0: float = 0.0
    client0: float = field(default_factory=time.process_time)
    busy0: float = field(default_factory=busy_cpu_s)

    def __post_init__(self) -> None:
        self.server0 = RssSampler(self.pid).cpu_s()

    def cores(self) -> dict[str, float]:
        wall = max(time.perf_counter() - self.t0, 1e-9)
        server = RssSampler(self.pid).cpu_s() - self.server0
        client = time.process_time() - self.client0
        other = max(0.0, busy_cpu_s() - self.busy0 - server - client)
        return {"server_cores": round(server / wall, 2), "client_cores": round(client / wall, 2),
                "other_processes_cores": round(other / wall, 2)}


def ms(values: Iterable[float]) -> dict[str, float | None]:
    """p50 / p99 / max in milliseconds of latencies in seconds."""
    lat = sorted(v * 1000 for v in values)
    if not lat:
        return {"p50": None, "p99": None, "max": None}
    return {"p50": round(percentile(lat, 0.5), 2), "p99": round(percentile(lat, 0.99), 2), "max": round(lat[-1], 2)}


def statuses(sent: Iterable[Sent | None]) -> dict[str, int]:
    counts = Counter(str(s.status) if s.status != -1 else "connection error" for s in sent if s is not None)
    return dict(sorted(counts.items()))


def error_kinds(sent: Iterable[Sent | None]) -> dict[str, int]:
    """Connection errors by exception (the client's repr up to its first parenthesis), other non-200s by status."""
    kinds: Counter[str] = Counter()
    for s in sent:
        if s is None or s.status == 200:
            continue
        kinds[s.body.decode(errors="replace").split("(", 1)[0] if s.status == -1 else f"HTTP {s.status}"] += 1
    return dict(kinds)


def buckets(sent: Iterable[Sent | None], t0: float, width: float, end: float) -> list[float]:
    """200s completed per second in consecutive `width`-second buckets from t0 to end
    (whole buckets only: a last, partial one would look like a drop)."""
    n = max(1, int((end - t0) / width + 1e-6))
    counts = [0] * n
    for s in sent:
        if s is not None and s.status == 200 and t0 <= s.at_s < t0 + n * width:
            counts[int((s.at_s - t0) / width)] += 1
    return [round(c / width, 1) for c in counts]


def recovered_at(rates: list[float], width: float, level: float, from_s: float, share: float = 0.9,
                 after_dip: bool = False) -> float | None:
    """Seconds (bucket ends, from the buckets' t0) when two consecutive buckets first average
    at least `share` of `level`, looking only at buckets starting at or after from_s. With
    `after_dip`: the first such window after the lowest one (from_s itself if none is below)."""
    first = max(int(np.floor(from_s / width)), 0)
    windows = [(rates[i] + rates[i + 1]) / 2 for i in range(first, len(rates) - 1)]
    start = first
    if after_dip and windows:
        if min(windows) >= share * level:
            return round(from_s, 2)
        start = first + int(np.argmin(windows))
    for i in range(start, len(rates) - 1):
        if (rates[i] + rates[i + 1]) / 2 >= share * level:
            return round((i + 2) * width, 2)
    return None


def post_one(port: int, body: bytes, timeout: float = 10) -> Sent:
    """One POST on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.perf_counter()
    try:
        conn.request("POST", PATH, body=body, headers=HEADERS)
        resp = conn.getresponse()
        sent = Sent(resp.status, 0.0, resp.read())
    except (OSError, http.client.HTTPException) as exc:
        sent = Sent(-1, 0.0, repr(exc).encode())
    finally:
        conn.close()
    sent.at_s = time.perf_counter()
    sent.latency_s = sent.at_s - t0
    return sent


def post_attributed(port: int, body: bytes, pids: list[int]) -> tuple[Sent, int | None]:
    """POST on a new connection and name the worker holding its server side (psutil)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    t0 = time.perf_counter()
    try:
        conn.request("POST", PATH, body=body, headers=HEADERS)
        resp = conn.getresponse()
        sent = Sent(resp.status, 0.0, resp.read())
        sent.at_s = time.perf_counter()
        sent.latency_s = sent.at_s - t0
        local = conn.sock.getsockname()[1] if conn.sock else -1
        for pid in pids:
            try:
                for c in psutil.Process(pid).net_connections("tcp"):
                    if c.raddr and c.raddr.port == local and c.laddr.port == port:
                        return sent, pid
            except psutil.Error:
                pass
        return sent, None
    except (OSError, http.client.HTTPException) as exc:
        now = time.perf_counter()
        return Sent(-1, now - t0, repr(exc).encode(), now), None
    finally:
        conn.close()


# ---------------------------------------------------------------- asyncio HTTP client


#: Every CLOSE_EVERY-th open-loop request says `Connection: close`, as urllib, many scripts
#: and proxies do: its answer (a 503 above all, sent before the body is read) must arrive.
CLOSE_EVERY = 4


def request_bytes(body: bytes, close: bool = False) -> bytes:
    return (b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + (b"Connection: close\r\n" if close else b"")
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body, and whether the server closes the connection after it."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close, chunked = None, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value == b"close"
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, b"".join(parts), close
    if length is None:
        return status, await reader.read(), True
    return status, await reader.readexactly(length), close


@dataclass
class OpenLoop:
    """One open-loop run: responses by payload index, and when each was due and sent."""

    rate: float
    sent: list[Sent | None]
    due: list[float]
    send: list[float]
    started: float
    connections_opened: int = 0
    most_open: int = 0


async def _open_loop(port: int, payloads: list[bytes], rate: float, max_connections: int,
                     timeout_s: float = 60) -> OpenLoop:
    n = len(payloads)
    run = OpenLoop(rate, [None] * n, [0.0] * n, [0.0] * n, time.perf_counter() + 0.2)
    # LIFO: a released connection is reused before a free slot (None) opens a new one.
    pool: asyncio.LifoQueue[tuple[asyncio.StreamReader, asyncio.StreamWriter, float] | None] = asyncio.LifoQueue()
    for _ in range(max_connections):
        pool.put_nowait(None)
    live = [0]
    loop = asyncio.get_running_loop()

    async def one(i: int) -> None:
        item = await pool.get()
        t0 = run.send[i] = time.perf_counter()
        writer = None
        if item is not None and (item[0].at_eof() or t0 - item[2] > KEEP_ALIVE_REUSE_S):
            item[1].close()  # uvicorn closes keep-alive connections idle for 5 s: don't race it
            live[0] -= 1
            item = None
        try:
            async with asyncio.timeout(timeout_s):
                if item is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    run.connections_opened += 1
                    live[0] += 1
                    run.most_open = max(run.most_open, live[0])
                else:
                    reader, writer, _ = item
                writer.write(request_bytes(payloads[i], close=i % CLOSE_EVERY == 0))
                status, body, close = await read_response(reader)
            t1 = time.perf_counter()
            run.sent[i] = Sent(status, t1 - t0, body, t1)
            if close:
                writer.close()
                live[0] -= 1
                pool.put_nowait(None)
            else:
                pool.put_nowait((reader, writer, t1))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError) as exc:
            t1 = time.perf_counter()
            run.sent[i] = Sent(-1, t1 - t0, repr(exc).encode(), t1)
            if writer is not None:
                writer.close()
                live[0] -= 1
            pool.put_nowait(None)

    tasks: set[asyncio.Task[None]] = set()
    i = 0
    while i < n:
        now = time.perf_counter()
        while i < n and run.started + i / rate <= now:
            run.due[i] = run.started + i / rate
            task = loop.create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if i < n:
            await asyncio.sleep(max(0.0, run.started + i / rate - time.perf_counter()))
    while tasks:
        await asyncio.gather(*list(tasks))
    while not pool.empty():
        item = pool.get_nowait()
        if item is not None:
            item[1].close()
    return run


def open_loop(port: int, payloads: list[bytes], rate: float, max_connections: int) -> OpenLoop:
    """Send payloads[i] at started + i / rate whatever the answers (uvloop event loop)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_open_loop(port, payloads, rate, max_connections))


# ---------------------------------------------------------------- 1. overload

#: An independent client in a process of its own, idle between requests: one POST at a
#: time on a keep-alive connection (latency from sending to the last byte read; a new
#: connection, from connecting), so its figures carry none of the load generator's own
#: lag on this shared 2-core machine.
PROBE = r"""
import http.client, json, sys, time
port, seconds, pause, body = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), open(sys.argv[4], "rb").read()
out, end, con = [], time.monotonic() + seconds, None
while time.monotonic() < end:
    started = time.perf_counter()
    try:
        if con is None:
            con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        con.request("POST", "/analyse_data/", body, {"Content-Type": "application/json"})
        response = con.getresponse()
        response.read()
        status = response.status
        if response.will_close:
            con.close()
            con = None
    except Exception as exc:
        status, con = type(exc).__name__, None
    out.append((status, (time.perf_counter() - started) * 1000))
    time.sleep(pause)
json.dump(out, sys.stdout)
"""


def start_probe(port: int, seconds: float, pause: float, body: bytes) -> subprocess.Popen[bytes]:
    path = HERE / "probe-body.json"
    path.write_bytes(body)
    return subprocess.Popen([sys.executable, "-c", PROBE, str(port), str(seconds), str(pause), str(path)],
                            stdout=subprocess.PIPE)


def server_durations(log: Path, offset: int) -> dict[str, list[float]]:
    """The request log's duration_ms of POSTs by status, from byte `offset` of the server's log
    (DUCKAPI_ACCESS_LOG=json: from the ASGI app's first sight of a request to its last byte sent)."""
    out: dict[str, list[float]] = {}
    with open(log, "rb") as f:
        f.seek(offset)
        for line in f:
            if line.startswith(b"{") and b'"duration_ms"' in line:
                entry = orjson.loads(line)
                if entry.get("method") == "POST":
                    out.setdefault(str(entry["status"]), []).append(entry["duration_ms"])
    return out


def overload(server: Server, plan: Plan, payloads: Payloads) -> dict[str, Any]:
    assert server.proc is not None
    port = server.port
    drive(port, payloads.make(100), 1, 10)  # warm-up
    cap_payloads = payloads.make(int(plan.capacity_s * 2000))
    gc.collect()
    gc.freeze()
    usage = Usage(server.proc.pid)
    cap_sent, cap_wall = drive(port, cap_payloads, plan.capacity_concurrency, plan.capacity_s)
    cap_n = sum(s is not None for s in cap_sent)
    capacity = cap_n / cap_wall
    capacity_info = {"concurrency": plan.capacity_concurrency, "requests": cap_n, "wall_s": round(cap_wall, 2),
                     "rps": round(capacity, 1), "latency_ms": ms(s.latency_s for s in cap_sent if s is not None),
                     "statuses": statuses(cap_sent), **usage.cores(), **check(cap_sent, cap_payloads)}
    print(f"  capacity (c={plan.capacity_concurrency}): {capacity:.1f} req/s", flush=True)
    rate = plan.overload_factor * capacity
    work = payloads.make(int(rate * plan.overload_s))
    gc.collect()
    gc.freeze()
    time.sleep(1)
    idle_rss = RssSampler(server.proc.pid).rss() / MIB
    peak = RssSampler(server.proc.pid)
    series = RssSeries(server.proc.pid, 1.0)
    usage = Usage(server.proc.pid)
    log = WORK / "logs" / f"{server.name}.log"
    log_offset = log.stat().st_size
    peak.start()
    series.start()
    probe = start_probe(port, plan.overload_s, plan.probe_every_s, payloads.make(1)[0])
    run = open_loop(port, work, rate, plan.max_connections)
    probed = [(str(status), latency) for status, latency in orjson.loads(probe.communicate(timeout=120)[0])]
    points = series.stop()
    peak_rss = peak.stop() / MIB
    cores = usage.cores()
    time.sleep(2)
    after_payloads = payloads.make(5)
    after = [post_one(port, body) for body in after_payloads]
    rss_after = RssSampler(server.proc.pid).rss() / MIB
    print(f"  open loop at {rate:.0f} req/s for {plan.overload_s:.0f}s: {statuses(run.sent)}", flush=True)

    done = [s for s in run.sent if s is not None]
    last_send = max(run.send)
    lag = [s - d for s, d in zip(run.send, run.due)]
    ok = [s for s in done if s.status == 200]
    busy = [s for s in done if s.status == 503]
    end = max(s.at_s for s in done)
    t0 = run.started
    # RSS bounded: the last third of the run against the first third after its first 10 s.
    tail = [mib for t, mib in points if t >= plan.overload_s * 2 / 3]
    head = [mib for t, mib in points if min(10.0, plan.overload_s / 4) <= t <= plan.overload_s / 3] or tail
    result = {
        "capacity": capacity_info,
        "max_queue": plan.max_queue,
        "factor": plan.overload_factor,
        "duration_s": plan.overload_s,
        "target_rps": round(rate, 1),
        "offered": {
            "requests": len(work),
            "rps": round(len(work) / max(last_send - t0, 1e-9), 1),
            "send_lag_ms": ms(lag),
            "connections_opened": run.connections_opened,
            "most_connections_open": run.most_open,
            "pool_limit": plan.max_connections,
        },
        "statuses": statuses(run.sent),
        "accepted": {"requests": len(ok), "rps": round(len(ok) / max(end - t0, 1e-9), 1),
                     "latency_ms": ms(s.latency_s for s in ok),
                     "latency_from_due_ms": ms(s.at_s - d for s, d in zip(run.sent, run.due) if s and s.status == 200)},
        "rejected": {"requests": len(busy), "latency_ms": ms(s.latency_s for s in busy),
                     "examples": sorted({s.body[:200].decode(errors="replace") for s in busy})[:1]},
        "probe": {"every_s": plan.probe_every_s, "statuses": dict(Counter(status for status, _ in probed)),
                  **{f"{status}_latency_ms": ms(latency / 1000 for s, latency in probed if s == status) for status in ("200", "503")}},
        "server_side_ms": {status: {"requests": len(durations), **ms(d / 1000 for d in durations)}
                           for status, durations in server_durations(log, log_offset).items()},
        "other": {"requests": len(done) - len(ok) - len(busy), "kinds": error_kinds(s for s in done if s.status != 503),
                  "examples": sorted({f"{s.status}: {s.body[:160].decode(errors='replace')}" for s in done
                                      if s.status not in (200, 503)})[:3]},
        "rss_mib": {"idle_before": round(idle_rss, 1), "peak": round(peak_rss, 1), "series_1s": points,
                    "first_third_max": max(head), "last_third_max": max(tail), "after_2s_idle": round(rss_after, 1)},
        "throughput_1s": buckets(run.sent, t0, 1.0, end),
        "rejected_p99_ms_1s": [ms(s.latency_s for s in busy if t0 + k <= s.at_s < t0 + k + 1)["p99"]
                               for k in range(int(end - t0))],
        "answers_after": {**statuses(after), "wrong": check(after, after_payloads)["wrong"]},
        **cores,
        **check(run.sent, work),
    }
    return result


# ---------------------------------------------------------------- 2. kill -9


def wait_workers(server: Server, n: int, timeout: float = 120) -> list[psutil.Process]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = workers(server)
        if len(found) >= n:
            return found
        time.sleep(0.1)
    raise RuntimeError(f"{server.name}: {n} workers never came up")


def kill_worker_later(server: Server, at: float, bodies: list[bytes], out: dict[str, Any]) -> None:
    """At perf_counter `at`, kill -9 one worker; then poll (new connections, one POST each)
    until the replacement worker answers a 200 itself."""
    time.sleep(max(0.0, at - time.perf_counter()))
    before = workers(server)
    victim = before[0]
    out["victim_pid"], out["workers_before"] = victim.pid, [p.pid for p in before]
    out["killed_at"] = time.perf_counter()
    victim.send_signal(signal.SIGKILL)
    old = {p.pid for p in before}
    polls: list[Sent] = []
    out["polls"], out["poll_payloads"], out["answered_by"] = polls, [], []
    deadline = out["killed_at"] + 60
    while time.perf_counter() < deadline:
        new = [p.pid for p in workers(server) if p.pid not in old]
        if new and "spawned_at" not in out:
            out["spawned_at"], out["replacement_pid"] = time.perf_counter(), new[0]
        if new:
            body = bodies[len(polls)]
            sent, pid = post_attributed(server.port, body, [*new, *(old - {victim.pid})])
            polls.append(sent)
            out["poll_payloads"].append(body)
            out["answered_by"].append(pid)
            if pid == new[0] and sent.status == 200:
                out["answered_at"] = sent.at_s
                return
        time.sleep(0.02)


def kill_and_restart(server: Server, plan: Plan, payloads: Payloads) -> tuple[dict[str, Any], Server]:
    assert server.proc is not None
    port, c = server.port, plan.kill_concurrency
    wait_workers(server, 2)
    drive(port, payloads.make(400), c, 3)  # warm-up: both workers
    worker_pids = [p.pid for p in workers(server)]
    work = payloads.make(int(plan.kill_load_s * 1500))
    poll_bodies = payloads.make(3000)
    gc.collect()
    gc.freeze()
    info: dict[str, Any] = {}
    t0 = time.perf_counter()
    killer = threading.Thread(target=kill_worker_later, args=(server, t0 + plan.kill_at_s, poll_bodies, info), daemon=True)
    killer.start()
    sent, wall = drive(port, work, c, plan.kill_load_s)
    killer.join()
    width = 0.5
    rates = buckets(sent, t0, width, t0 + wall)
    kill_s = info["killed_at"] - t0
    pre = [r for i, r in enumerate(rates) if 1.0 <= i * width and (i + 1) * width <= kill_s]
    level = float(np.mean(pre)) if pre else float("nan")
    after_kill = [r for i, r in enumerate(rates) if i * width >= kill_s]
    recovered = recovered_at(rates, width, level, kill_s, after_dip=True)
    dip_at = (int(np.floor(kill_s / width)) + int(np.argmin(after_kill))) * width if after_kill else None
    answered_s = info["answered_at"] - info["killed_at"] if "answered_at" in info else None
    post = [r for i, r in enumerate(rates) if answered_s is not None and i * width >= kill_s + answered_s + 1]
    worker_kill = {
        "workers": worker_pids, "victim": info["victim_pid"], "replacement": info.get("replacement_pid"),
        "concurrency": c, "load_s": plan.kill_load_s, "kill_at_s": round(kill_s, 2),
        "requests": sum(s is not None for s in sent), "statuses": statuses(sent), "errors": error_kinds(sent),
        "replacement_spawned_s": round(info["spawned_at"] - info["killed_at"], 2) if "spawned_at" in info else None,
        "replacement_answered_s": round(answered_s, 2) if answered_s is not None else None,
        "polls": len(info["polls"]), "poll_statuses": statuses(info["polls"]),
        "polls_answered_by": dict(Counter("replacement" if p == info.get("replacement_pid") else
                                          "other worker" if p else "unknown" for p in info["answered_by"])),
        "pre_kill_rps": round(level, 1),
        "lowest_0_5s_after_kill_rps": min(after_kill) if after_kill else None,
        "lowest_0_5s_at_s": round(dip_at - kill_s, 2) if dip_at is not None else None,
        "throughput_back_s": round(recovered - kill_s, 2) if recovered is not None else None,
        "after_replacement_rps": round(float(np.mean(post)), 1) if post else None,
        "throughput_0_5s": rates,
        **check(sent, work),
    }
    polls_check = check(info["polls"], info["poll_payloads"])
    worker_kill["wrong"] += polls_check["wrong"]
    worker_kill["wrong_examples"] += polls_check["wrong_examples"]
    print(f"  worker kill: {worker_kill['statuses']}, replacement answered after "
          f"{worker_kill['replacement_answered_s']} s, throughput back after {worker_kill['throughput_back_s']} s",
          flush=True)

    # The whole server (supervisor and workers) under the same load, then a restart on the same port.
    work2 = payloads.make(int(4 * 1500))
    stop = threading.Event()
    box: dict[str, Any] = {}
    loader = threading.Thread(target=lambda: box.update(zip(("sent", "wall"), drive(port, work2, c, 30, stop=stop))),
                              daemon=True)
    loader.start()
    time.sleep(2)
    procs = tree(server)
    stop.set()  # no new requests: the ones in flight meet the kill
    for p in procs:  # supervisor first, so that it replaces nobody
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    killed_at = time.perf_counter()
    psutil.wait_procs(procs, timeout=10)
    server.proc.wait(10)
    loader.join()
    in_flight = [s for s in box["sent"] if s is not None and s.at_s >= killed_at]
    restart_bodies = payloads.make(int(plan.restart_load_s * 1500) + 2000)
    again = replace(server, name=server.name + "-restart", proc=None)
    t_restart = time.perf_counter()
    again.start()
    assert again.proc is not None
    polls, k = [], 0
    while True:
        if again.proc.poll() is not None:
            raise RuntimeError(f"{again.name} exited with {again.proc.returncode}; see {WORK / 'logs'}")
        s = post_one(port, restart_bodies[k], timeout=10)
        polls.append(s)
        if s.status != -1:  # a payload is used up once the server has answered it
            k += 1
        if s.status == 200:
            break
        if time.perf_counter() - t_restart > 180:
            raise RuntimeError(f"{again.name}: no 200 within 180 s")
        time.sleep(0.02)
    first_200 = polls[-1].at_s - t_restart
    rest = restart_bodies[k:]
    sent3, wall3 = drive(port, rest, c, plan.restart_load_s)
    rates3 = buckets(sent3, t_restart, width, time.perf_counter())
    full = recovered_at(rates3, width, level, first_200)
    restart = {
        "kill_under_load_concurrency": c,
        "requests_before_kill": sum(s is not None for s in box["sent"]),
        "statuses_before_kill": statuses(box["sent"]),
        "in_flight_at_kill": len(in_flight), "in_flight_errors": error_kinds(in_flight),
        "first_200_s": round(first_200, 2), "polls_until_first_200": len(polls),
        "poll_statuses": statuses(polls),
        "full_throughput_s": full, "pre_kill_rps": round(level, 1),
        "rps_after_first_200": round(sum(s is not None for s in sent3) / wall3, 1),
        "throughput_0_5s_from_restart": rates3,
        "restart_load_statuses": statuses(sent3),
        "workers_after": len(workers(again)),
    }
    answered = [s for s in polls if s.status != -1]
    wrong = [check(box["sent"], work2), check(answered, restart_bodies[:k]), check(sent3, rest)]
    restart["wrong"] = sum(w["wrong"] for w in wrong)
    restart["wrong_examples"] = [e for w in wrong for e in w["wrong_examples"]][:3]
    print(f"  whole server killed ({len(in_flight)} requests in flight); restart: first 200 after {first_200:.2f} s, "
          f"full throughput after {full} s", flush=True)
    return {"worker": worker_kill, "server": restart}, again


# ---------------------------------------------------------------- 3. slow connections

#: What a slow connection sends, one byte at a time: a request line, then headers without end.
SLOW_PREFIX = b"POST /analyse_data/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: "


class SlowClients(threading.Thread):
    """Connections held open in an event loop of their own: `slow` send SLOW_PREFIX (then
    "a"s) a byte every `every_s`; `idle` send nothing; `keepalive` send one complete GET
    /healthz, read the answer, then nothing. Each records when the server closed it."""

    def __init__(self, port: int, slow: int, idle: int, keepalive: int, every_s: float) -> None:
        super().__init__(daemon=True)
        self.port, self.every_s = port, every_s
        self.kinds = ["slow"] * slow + ["idle"] * idle + ["keepalive"] * keepalive
        self.records: list[dict[str, Any]] = [{"kind": k, "sent": 0, "received": b""} for k in self.kinds]
        self.opened = threading.Event()
        self.loop = uvloop.new_event_loop()
        self.stopping: asyncio.Event | None = None
        self.writers: list[asyncio.StreamWriter] = []

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.main())

    async def main(self) -> None:
        self.stopping = asyncio.Event()
        conns = []
        for lo in range(0, len(self.records), 50):
            conns += await asyncio.gather(*(self.connect(r) for r in self.records[lo:lo + 50]))
        self.opened.set()
        tasks = [asyncio.create_task(self.hold(r, c)) for r, c in zip(self.records, conns) if c is not None]
        await self.stopping.wait()
        for t in tasks:
            t.cancel()
        for w in self.writers:
            w.close()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def connect(self, rec: dict[str, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError as exc:
            rec["error"] = repr(exc)
            return None
        rec["opened"] = time.perf_counter()
        self.writers.append(writer)
        return reader, writer

    async def hold(self, rec: dict[str, Any], conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        reader, writer = conn
        if rec["kind"] == "keepalive":
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                rec["answered"] = (await read_response(reader))[0]
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                rec["answered"] = repr(exc)
            rec["idle_from"] = time.perf_counter()
        watcher = asyncio.create_task(self.watch(reader, rec))
        if rec["kind"] == "slow":
            await asyncio.sleep(random.random() * self.every_s)
            while "closed" not in rec and not writer.is_closing():
                k = rec["sent"]
                writer.write(SLOW_PREFIX[k:k + 1] or b"a")
                rec["sent"] = k + 1
                await asyncio.sleep(self.every_s)
        await watcher

    async def watch(self, reader: asyncio.StreamReader, rec: dict[str, Any]) -> None:
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    rec["closed"], rec["how"] = time.perf_counter(), "EOF"
                    return
                rec["received"] += data[:200]
        except OSError as exc:
            rec["closed"], rec["how"] = time.perf_counter(), type(exc).__name__

    def stop(self) -> None:
        assert self.stopping is not None
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.join(30)

    def summary(self, at: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind in dict.fromkeys(self.kinds):
            recs = [r for r in self.records if r["kind"] == kind]
            opened = [r for r in recs if "opened" in r]
            closed = [r for r in opened if "closed" in r and r["closed"] <= at]
            since = [r["closed"] - r.get("idle_from", r["opened"]) for r in closed]
            entry = {
                "connections": len(recs), "opened": len(opened), "connect_errors": len(recs) - len(opened),
                "closed_by_server": len(closed), "open_at_end": len(opened) - len(closed),
                "held_open_s": round(at - min((r["opened"] for r in opened), default=at), 1),
                "closed_after_s": {"min": round(min(since), 2), "p50": round(percentile(sorted(since), 0.5), 2),
                                   "max": round(max(since), 2)} if since else None,
                "close_kinds": dict(Counter(r["how"] for r in closed)),
                "answers_to_them": sorted({r["received"][:40].decode(errors="replace") for r in opened if r["received"]})[:3],
            }
            if kind == "slow":
                entry["bytes_sent_max"] = max((r["sent"] for r in opened), default=0)
            if kind == "keepalive":
                entry["first_request"] = dict(Counter(str(r.get("answered")) for r in opened))
            out[kind] = entry
        return out


def server_connections(server: Server) -> dict[str, int]:
    """Open file descriptors and established connections on the port of the server tree."""
    fds = established = 0
    for p in tree(server):
        try:
            fds += p.num_fds()
            established += sum(1 for c in p.net_connections("tcp")
                               if c.laddr.port == server.port and c.status == psutil.CONN_ESTABLISHED)
        except psutil.Error:
            pass
    return {"fds": fds, "established": established}


def slow_connections(server: Server, plan: Plan, payloads: Payloads) -> dict[str, Any]:
    assert server.proc is not None
    port = server.port
    drive(port, payloads.make(100), 1, 10)  # warm-up
    base_work, slow_work = payloads.make(int(plan.slow_baseline_s * 800)), payloads.make(int(plan.slow_s * 800))
    gc.collect()
    gc.freeze()
    limit = psutil.Process(server.proc.pid).rlimit(psutil.RLIMIT_NOFILE)
    before_conns = server_connections(server)
    usage = Usage(server.proc.pid)
    base, base_wall = drive(port, base_work, 1, plan.slow_baseline_s)
    base_cores = usage.cores()
    rss_before = RssSampler(server.proc.pid).rss() / MIB
    clients = SlowClients(port, plan.slow_connections, plan.idle_connections, plan.keepalive_connections,
                          plan.slow_byte_every_s)
    t_open = time.perf_counter()
    clients.start()
    if not clients.opened.wait(120):
        raise RuntimeError("slow connections not opened in 120 s")
    opened_s = time.perf_counter() - t_open
    time.sleep(0.5)
    held_conns = server_connections(server)
    peak = RssSampler(server.proc.pid)
    peak.start()
    usage = Usage(server.proc.pid)
    during, during_wall = drive(port, slow_work, 1, plan.slow_s)
    cores = usage.cores()
    at = time.perf_counter()
    end_conns = server_connections(server)
    peak_rss = peak.stop() / MIB
    groups = clients.summary(at)
    clients.stop()
    time.sleep(1)
    after_conns = server_connections(server)
    after_payloads = payloads.make(5)
    after = [post_one(port, body) for body in after_payloads]

    def side(sent: list[Sent | None], wall: float, work: list[bytes]) -> dict[str, Any]:
        done = [s for s in sent if s is not None]
        return {"requests": len(done), "rps": round(len(done) / wall, 1), "statuses": statuses(done),
                "latency_ms": ms(s.latency_s for s in done), **check(sent, work)}

    without, with_slow = side(base, base_wall, base_work), side(during, during_wall, slow_work)
    print(f"  c=1 p50/p99 without {without['latency_ms']['p50']}/{without['latency_ms']['p99']} ms, with "
          f"{sum(g['opened'] for g in groups.values())} slow/idle connections "
          f"{with_slow['latency_ms']['p50']}/{with_slow['latency_ms']['p99']} ms; "
          f"closed by the server: { {k: g['closed_by_server'] for k, g in groups.items()} }", flush=True)
    return {
        "server_nofile_limit": list(limit), "client_nofile_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "byte_every_s": plan.slow_byte_every_s, "opening_s": round(opened_s, 2),
        "without": {**without, **base_cores}, "with": {**with_slow, **cores},
        "p50_ratio": round(with_slow["latency_ms"]["p50"] / without["latency_ms"]["p50"], 2),
        "p99_ratio": round(with_slow["latency_ms"]["p99"] / without["latency_ms"]["p99"], 2),
        "groups": groups,
        "server": {"before": before_conns, "held": held_conns, "at_end": end_conns, "after_closing": after_conns,
                   "rss_mib_before": round(rss_before, 1), "rss_mib_peak_with": round(peak_rss, 1)},
        "answers_after": {**statuses(after), "wrong": check(after, after_payloads)["wrong"]},
    }


# ---------------------------------------------------------------- 4. soak


def soak(server: Server, plan: Plan, payloads: Payloads, capacity: float) -> dict[str, Any]:
    assert server.proc is not None
    port = server.port
    drive(port, payloads.make(100), 1, 10)  # warm-up
    work = payloads.make(int(max(capacity, 300) * plan.soak_s * 1.6) + 1000)
    gc.collect()
    gc.freeze()
    time.sleep(1)
    series = RssSeries(server.proc.pid, plan.soak_rss_every_s)
    peak = RssSampler(server.proc.pid, interval=0.1)
    usage = Usage(server.proc.pid)
    series.start()
    peak.start()
    t0 = time.perf_counter()
    sent, wall = drive(port, work, plan.soak_concurrency, plan.soak_s)
    points = series.stop()
    peak_rss = peak.stop() / MIB
    cores = usage.cores()
    n = sum(s is not None for s in sent)
    # The server's RSS settles about two minutes into steady load (native memory of the
    # statements; Python's own stays flat): flat from 120 s to 600 s in the 18:39 run (c8580dd),
    # whose 60-s point was still 12 MiB short of it (docs/benchmarks.md, Faults).
    warm_up = min(120.0, plan.soak_s / 3)
    mark = max(10.0, min(60.0, plan.soak_s / 6))  # table rows every minute (quick: every 10 s)
    table = []
    for k in range(max(1, int(wall / mark + 1e-6))):  # whole marks
        lo, hi = t0 + k * mark, t0 + (k + 1) * mark
        part = [s for s in sent if s is not None and lo <= s.at_s < hi]
        rss_at = [mib for t, mib in points if t <= (k + 1) * mark + 0.5]
        table.append({"until_s": round(min((k + 1) * mark, wall), 1), "rss_mib": rss_at[-1] if rss_at else None,
                      "requests": len(part), "rps": round(len(part) / (min(hi, t0 + wall) - lo), 1),
                      "latency_ms": ms(s.latency_s for s in part), "errors": sum(s.status != 200 for s in part)})
    at_warm = [mib for t, mib in points if t <= warm_up + 0.5][-1]
    after_warm = [mib for t, mib in points if t >= warm_up]
    slope = None
    if len(after_warm) >= 3:
        ts = [t for t, _ in points if t >= warm_up]
        slope = round(float(np.polyfit(ts, after_warm, 1)[0]) * 60, 2)
    result = {
        "concurrency": plan.soak_concurrency, "duration_s": plan.soak_s, "wall_s": round(wall, 1),
        "requests": n, "payloads_prepared": len(work), "ran_out_of_payloads": n >= len(work),
        "rps": round(n / wall, 1), "statuses": statuses(sent), "errors": error_kinds(sent),
        "latency_ms": ms(s.latency_s for s in sent if s is not None),
        "rss_every_s": plan.soak_rss_every_s, "rss_series": points, "warm_up_s": warm_up, "mark_s": mark,
        "rss_mib": {"start": points[0][1], "after_warm_up": at_warm, "end": points[-1][1], "peak": round(peak_rss, 1),
                    "min_after_warm_up": min(after_warm), "max_after_warm_up": max(after_warm),
                    "growth_after_warm_up": round(points[-1][1] - at_warm, 1), "slope_mib_per_min": slope},
        "table": table, **cores, **check(sent, work),
    }
    print(f"  soak: {n} requests in {wall:.0f}s, RSS {at_warm} MiB after warm-up -> {points[-1][1]} MiB at the end; "
          f"{result['statuses']}", flush=True)
    return result


# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = QUICK if args.quick else FULL
    if args.soak_seconds:
        plan = replace(plan, soak_s=args.soak_seconds)
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    HERE.mkdir(parents=True, exist_ok=True)
    nofile = raise_nofile()
    quiet = wait_for_quiet(args.max_load, args.wait_s) if args.max_load else {"loadavg_at_start": list(os.getloadavg())}
    t0 = time.monotonic()
    from duckapi.settings import Settings  # the checkout's code, as the servers will run it

    queue_setting = "max_queue" in Settings.__dataclass_fields__
    db = HERE / "dev.duckdb"
    print("building the bundled project into", db, flush=True)
    build(db, {**dbt_env(), "DUCKAPI_TARGET_PATH": str(HERE / "target-build")}, log_name="faults-build.log")
    servers = {
        "overload": faults_server("overload", db, extra_env={"DUCKAPI_MAX_QUEUE": str(plan.max_queue),
                                                            "DUCKAPI_ACCESS_LOG": "json"}),
        "kill": faults_server("kill", db, ["--workers", "2"]),
        "slow": faults_server("slow", db),
        "soak": faults_server("soak", db),
    }
    results: dict[str, Any] = {"quick": args.quick, "seed": args.seed, "plan": plan.__dict__, "load": quiet,
                               "client_nofile_limit": list(nofile), "max_queue_setting_in_checkout": queue_setting}
    restarted: Server | None = None
    try:
        for s in servers.values():
            s.start()
        payloads = Payloads(args.seed)
        for s in servers.values():
            s.wait_ready()
        results["startup_s"] = round(time.monotonic() - t0, 1)
        print(f"servers ready after {results['startup_s']}s", flush=True)
        print("1. overload", flush=True)
        results["overload"] = overload(servers["overload"], plan, payloads)
        servers["overload"].stop()
        gc.unfreeze()
        print("2. kill -9", flush=True)
        results["kill"], restarted = kill_and_restart(servers["kill"], plan, payloads)
        restarted.stop()
        gc.unfreeze()
        print("3. slow connections", flush=True)
        results["slow"] = slow_connections(servers["slow"], plan, payloads)
        servers["slow"].stop()
        gc.unfreeze()
        print(f"4. soak for {plan.soak_s:.0f}s", flush=True)
        results["soak"] = soak(servers["soak"], plan, payloads, results["overload"]["capacity"]["rps"])
    finally:
        for s in [*servers.values(), *([restarted] if restarted else [])]:
            s.stop()
        gc.unfreeze()
    results["targets"] = targets(results)
    results["machine"] = machine_info({**servers, **({"kill-restart": restarted} if restarted else {})})
    results["machine"]["duckapi_tree_changes"] = tree_changes()
    results["total_s"] = round(time.monotonic() - t0, 1)
    return results


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    o, w, k, sl, so = r["overload"], r["kill"]["worker"], r["kill"]["server"], r["slow"], r["soak"]
    out = [
        {"target": "overload: the client offers the target rate (at least 95%)",
         "pass": o["offered"]["rps"] >= 0.95 * o["target_rps"],
         "measured": f"{o['offered']['rps']} of {o['target_rps']} req/s, send lag p99 {o['offered']['send_lag_ms']['p99']} ms"},
        {"target": "overload: rejected (503) within 10 ms (p99), for a client that is not itself overloaded",
         "pass": bool(o["rejected"]["requests"]) and (o["probe"]["503_latency_ms"]["p99"] or 1e9) <= 10,
         "measured": f"independent client: {o['probe']['statuses'].get('503', 0)} rejected, "
                     f"p50 {o['probe']['503_latency_ms']['p50']} / p99 {o['probe']['503_latency_ms']['p99']} / max "
                     f"{o['probe']['503_latency_ms']['max']} ms; the load generator's {o['rejected']['requests']}: "
                     f"p99 {o['rejected']['latency_ms']['p99']} ms (its own send lag p99 {o['offered']['send_lag_ms']['p99']} ms); "
                     f"server side p99 {o['server_side_ms'].get('503', {}).get('p99')} ms"},
        {"target": "overload: no status but 200 and 503, no connection error", "pass": o["other"]["requests"] == 0,
         "measured": f"{o['other']['requests']} other ({o['other']['kinds']})"},
        {"target": "overload: server RSS bounded (last third of the run at most 10% over the first)",
         "pass": o["rss_mib"]["last_third_max"] <= 1.1 * o["rss_mib"]["first_third_max"],
         "measured": f"{o['rss_mib']['first_third_max']} -> {o['rss_mib']['last_third_max']} MiB, peak {o['rss_mib']['peak']}"},
        {"target": "overload: no wrong answer", "pass": o["wrong"] == 0 and o["answers_after"]["wrong"] == 0,
         "measured": f"{o['wrong']} wrong of {o['accepted']['requests']}"},
        {"target": "worker kill -9: the replacement answers", "pass": w["replacement_answered_s"] is not None,
         "measured": f"after {w['replacement_answered_s']} s (spawned after {w['replacement_spawned_s']} s)"},
        {"target": "worker kill -9: throughput back to the pre-kill level (90%)", "pass": w["throughput_back_s"] is not None,
         "measured": f"after {w['throughput_back_s']} s; pre-kill {w['pre_kill_rps']} req/s, lowest 0.5 s "
                     f"{w['lowest_0_5s_after_kill_rps']}"},
        {"target": "worker kill -9: no wrong answer", "pass": w["wrong"] == 0,
         "measured": f"{w['wrong']} wrong; errors {w['errors'] or 'none'}"},
        {"target": "server kill -9 and restart: a 200, then full throughput", "pass": k["full_throughput_s"] is not None,
         "measured": f"first 200 after {k['first_200_s']} s, full throughput after {k['full_throughput_s']} s"},
        {"target": "server kill -9 and restart: no wrong answer", "pass": k["wrong"] == 0, "measured": f"{k['wrong']} wrong"},
        {"target": "slow connections: every normal request answered 200, correctly",
         "pass": sl["with"]["statuses"] == {"200": sl["with"]["requests"]} and sl["with"]["wrong"] == 0
         and sl["without"]["wrong"] == 0,
         "measured": f"{sl['with']['statuses']}, {sl['with']['wrong']} wrong; p50 {sl['with']['latency_ms']['p50']} vs "
                     f"{sl['without']['latency_ms']['p50']} ms, p99 {sl['with']['latency_ms']['p99']} vs "
                     f"{sl['without']['latency_ms']['p99']} ms"},
        {"target": "soak: no error, no wrong answer",
         "pass": so["statuses"] == {"200": so["requests"]} and so["wrong"] == 0 and not so["ran_out_of_payloads"],
         "measured": f"{so['requests']} requests, {so['statuses']}, {so['wrong']} wrong"},
        {"target": "soak: RSS growth after warm-up under 5%",
         "pass": so["rss_mib"]["growth_after_warm_up"] <= 0.05 * so["rss_mib"]["after_warm_up"],
         "measured": f"{so['rss_mib']['after_warm_up']} -> {so['rss_mib']['end']} MiB "
                     f"({so['rss_mib']['growth_after_warm_up']:+} MiB; fit {so['rss_mib']['slope_mib_per_min']} MiB/min)"},
    ]
    return out


# ---------------------------------------------------------------- reporting


def lat(d: dict[str, Any]) -> str:
    return f"{fmt(d['p50'], 2)} / {fmt(d['p99'], 2)} / {fmt(d['max'], 2)}"


def markdown(r: dict[str, Any]) -> str:
    m, load = r["machine"], r["load"]
    o, w, k, sl, so = r["overload"], r["kill"]["worker"], r["kill"]["server"], r["slow"], r["soak"]
    changes = m.get("duckapi_tree_changes") or []
    cap = o["capacity"]
    overload_rows = [
        "| | requests | req/s | latency p50 / p99 / max ms |", "|---|---:|---:|---:|",
        f"| capacity, closed loop c={cap['concurrency']} ({fmt(r['plan']['capacity_s'], 0)} s) | {cap['requests']} "
        f"| {fmt(cap['rps'])} | {lat(cap['latency_ms'])} |",
        f"| offered, open loop ({o['factor']:g}x for {o['duration_s']:g} s; target {fmt(o['target_rps'])} req/s) "
        f"| {o['offered']['requests']} | {fmt(o['offered']['rps'])} | send lag {lat(o['offered']['send_lag_ms'])} |",
        f"| accepted (200) | {o['accepted']['requests']} | {fmt(o['accepted']['rps'])} | {lat(o['accepted']['latency_ms'])} |",
        f"| rejected (503) | {o['rejected']['requests']} | | {lat(o['rejected']['latency_ms'])} |",
        f"| other statuses, connection errors | {o['other']['requests']} | | {o['other']['kinds'] or '-'} |",
        f"| independent client, one POST every {o['probe']['every_s'] * 1000:g} ms meanwhile: rejected (503) "
        f"| {o['probe']['statuses'].get('503', 0)} | | {lat(o['probe']['503_latency_ms'])} |",
        f"| independent client: accepted (200); other | {o['probe']['statuses'].get('200', 0)}; "
        f"{sum(n for k, n in o['probe']['statuses'].items() if k not in ('200', '503'))} | | {lat(o['probe']['200_latency_ms'])} |",
        *(f"| server side ({status}, its request log's duration_ms, every client) | {side['requests']} | | {lat(side)} |"
          for status, side in sorted(o["server_side_ms"].items())),
    ]
    rss = o["rss_mib"]
    series = ", ".join(f"{t:.0f} s {mib:.0f}" for t, mib in rss["series_1s"][::max(1, len(rss["series_1s"]) // 12)])
    slow_rows = ["| normal client, c=1 | requests | statuses | latency p50 / p99 / max ms | server CPU (cores) | wrong |",
                 "|---|---:|---|---:|---:|:-:|"]
    for label, side in (("without slow connections", sl["without"]), ("with them", sl["with"])):
        slow_rows.append(f"| {label} | {side['requests']} | {side['statuses']} | {lat(side['latency_ms'])} "
                         f"| {fmt(side['server_cores'], 2)} | {side['wrong']} |")
    groups = ["| connections | opened | closed by the server | after (s) | open at the end (held s) |",
              "|---|---:|---:|---|---:|"]
    for kind, g in sl["groups"].items():
        after = g["closed_after_s"]
        span = f"{after['min']} - {after['max']}" if after else "-"
        groups.append(f"| {kind} | {g['opened']} | {g['closed_by_server']} | {span} "
                      f"| {g['open_at_end']} ({g['held_open_s']}) |")
    soak_rows = ["| until s | server RSS MiB | requests | req/s | p50 / p99 / max ms | errors |",
                 "|---:|---:|---:|---:|---:|---:|"]
    for row in so["table"]:
        soak_rows.append(f"| {fmt(row['until_s'], 0)} | {fmt(row['rss_mib'], 1)} | {row['requests']} | {fmt(row['rps'])} "
                         f"| {lat(row['latency_ms'])} | {row['errors']} |")
    targets = [f"- {'PASS' if t['pass'] else 'FAIL'}: {t['target']} ({t['measured']})" for t in r["targets"]]
    return "\n".join([
        f"# Faults benchmark{' (quick run)' if r['quick'] else ''}",
        "",
        f"{m['date_utc']}, {m['cpu_count']} CPUs ({m['cpu_affinity']} usable), {m['memory_gib']} GiB, "
        f"Python {m['python']}, uvicorn {m['versions']['uvicorn']}, DuckDB {m['versions']['duckdb']}, "
        f"git {(m['git_head'] or '?')[:7]}"
        + (f" (uncommitted changes to duckapi/: {', '.join(c.split()[-1] for c in changes)})" if changes else "")
        + f". 1-minute load {load_before(load)} before the run (waited for < {load.get('max_load', '-')}: "
        f"{load.get('waited_s', 0)} s), {m['loadavg_at_end'][0]} at the end. Client and server share the cores.",
        "",
        "Bundled project, 9-row POSTs to /analyse_data/, each a distinct seeded payload; every 200 checked after timing "
        "for exact equality with tests/oracle.py. `python -m bench.faults` regenerates this file.",
        "",
        "## Targets",
        "",
        *targets,
        "",
        f"## 1. Overload: {o['factor']:g}x capacity for {o['duration_s']:g} s, DUCKAPI_MAX_QUEUE={o['max_queue']}",
        "",
        "Open loop: request i is due at start + i / rate whatever the answers, sent by an asyncio (uvloop) client on a "
        f"pool of keep-alive connections (up to {o['offered']['pool_limit']}; {o['offered']['connections_opened']} opened, "
        f"at most {o['offered']['most_connections_open']} at once; every {CLOSE_EVERY}th request says `Connection: close` "
        "and its connection closes after the answer). Latency from sending (for a new connection, from "
        "connecting); send lag is how late the client sent after the due time. Meanwhile an independent client in a "
        "process of its own, idle between requests, sends one POST at a time on a keep-alive connection: what a client that "
        "is not itself the overloaded load generator sees. The server's own time per request is its request log's "
        "duration_ms (DUCKAPI_ACCESS_LOG=json), from the app's first sight of the request to its last byte sent.",
        "",
        *overload_rows,
        "",
        f"Accepted latency from the due time: {lat(o['accepted']['latency_from_due_ms'])} ms. Wrong answers: {o['wrong']}. "
        f"CPU: server {o['server_cores']}, client {o['client_cores']}, other processes {o['other_processes_cores']} cores. "
        f"Server RSS: {rss['idle_before']} MiB before, peak {rss['peak']} MiB (20 ms samples), {rss['after_2s_idle']} MiB 2 s "
        f"after; each second (s MiB): {series}. Afterwards: {o['answers_after']}.",
        "",
        f"Accepted req/s each second: {', '.join(f'{x:.0f}' for x in o['throughput_1s'])}. "
        f"Rejected p99 ms each second: {', '.join(fmt(x, 1) for x in o['rejected_p99_ms_1s'])}.",
        "",
        "## 2. kill -9",
        "",
        f"`--workers 2`, closed loop c={w['concurrency']} for {w['load_s']:g} s; worker {w['victim']} killed at "
        f"{w['kill_at_s']} s.",
        "",
        "| | measured |", "|---|---|",
        f"| requests, statuses | {w['requests']}, {w['statuses']} |",
        f"| errors (kinds) | {w['errors'] or 'none'} |",
        f"| wrong answers | {w['wrong']} |",
        f"| replacement worker spawned / answered a 200 itself | {w['replacement_spawned_s']} s / "
        f"{w['replacement_answered_s']} s after the kill ({w['polls']} polls: {w['polls_answered_by']}) |",
        f"| throughput pre-kill / lowest 0.5 s after ({w['lowest_0_5s_at_s']} s after the kill) / from 1 s after the "
        f"replacement answered | {w['pre_kill_rps']} / {w['lowest_0_5s_after_kill_rps']} / {w['after_replacement_rps']} req/s |",
        f"| throughput back to 90% of pre-kill (1 s window, after the lowest one) | {w['throughput_back_s']} s after the kill |",
        f"| whole server killed under load (c={k['kill_under_load_concurrency']}) | {k['in_flight_at_kill']} requests in "
        f"flight failed: {k['in_flight_errors'] or 'none'} |",
        f"| restart on the same port: first 200 | {k['first_200_s']} s ({k['polls_until_first_200']} polls: "
        f"{k['poll_statuses']}) |",
        f"| restart: throughput at 90% of pre-kill | {k['full_throughput_s']} s; {k['rps_after_first_200']} req/s over "
        f"the {r['plan']['restart_load_s']:g} s after the first 200, {k['restart_load_statuses']} |",
        f"| wrong answers (kill and restart) | {k['wrong']} |",
        "",
        f"Throughput every 0.5 s around the worker kill (req/s): {', '.join(f'{x:.0f}' for x in w['throughput_0_5s'])}.",
        f"From the restart: {', '.join(f'{x:.0f}' for x in k['throughput_0_5s_from_restart'])}.",
        "",
        "## 3. Slow connections",
        "",
        f"{sl['groups']['slow']['connections']} connections sending `{SLOW_PREFIX[:20].decode()}...` one byte every "
        f"{sl['byte_every_s']:g} s (at most {sl['groups']['slow']['bytes_sent_max']} bytes each), "
        f"{sl['groups']['idle']['connections']} sending nothing, {sl['groups']['keepalive']['connections']} idle after one "
        f"complete GET /healthz (answers {sl['groups']['keepalive']['first_request']}); opened in {sl['opening_s']} s. "
        f"RLIMIT_NOFILE: client {sl['client_nofile_limit'][0]}, server {sl['server_nofile_limit'][0]}. Server side: "
        f"{sl['server']['held']['established']} established connections and {sl['server']['held']['fds']} fds held "
        f"(before: {sl['server']['before']['fds']} fds; after the client closed them: {sl['server']['after_closing']['fds']}); "
        f"RSS {sl['server']['rss_mib_before']} MiB before, peak {sl['server']['rss_mib_peak_with']} MiB with them.",
        "",
        *slow_rows,
        "",
        f"p50 ratio {sl['p50_ratio']}x, p99 ratio {sl['p99_ratio']}x. Afterwards: {sl['answers_after']}.",
        "",
        *groups,
        "",
        slow_verdict(sl),
        "",
        f"## 4. Soak: c={so['concurrency']} for {so['duration_s']:g} s",
        "",
        f"{so['requests']} requests ({fmt(so['rps'])} req/s), {so['statuses']}, {so['wrong']} wrong, latency "
        f"{lat(so['latency_ms'])} ms. Server RSS every {so['rss_every_s']:g} s: {so['rss_mib']['start']} MiB at the start, "
        f"{so['rss_mib']['after_warm_up']} MiB after warm-up ({so['warm_up_s']:g} s), {so['rss_mib']['end']} MiB at the "
        f"end ({so['rss_mib']['growth_after_warm_up']:+} MiB; {so['rss_mib']['min_after_warm_up']}-"
        f"{so['rss_mib']['max_after_warm_up']} MiB after warm-up; linear fit {so['rss_mib']['slope_mib_per_min']} MiB/min), "
        f"peak {so['rss_mib']['peak']} MiB. CPU: server {so['server_cores']}, client {so['client_cores']}, other "
        f"processes {so['other_processes_cores']} cores.",
        "",
        *soak_rows,
        "",
    ])


def slow_verdict(sl: dict[str, Any]) -> str:
    g = sl["groups"]
    parts = []
    for kind, what in (("slow", "the slow ones"), ("idle", "the silent ones"), ("keepalive", "those idle after a request")):
        x = g[kind]
        if x["closed_by_server"] == 0:
            parts.append(f"{what}: none closed by the server in {x['held_open_s']} s")
        else:
            after = x["closed_after_s"]
            parts.append(f"{what}: {x['closed_by_server']} of {x['opened']} closed by the server "
                         f"{after['min']}-{after['max']} s after {'their answer' if kind == 'keepalive' else 'connecting'} "
                         f"({x['close_kinds']})")
    return ("How uvicorn treated them: " + "; ".join(parts) + ". uvicorn arms its keep-alive timeout (5 s by default) "
            "only once a response is complete; a connection that has not sent a whole request has no timer, so it is "
            "held (one fd and a protocol object each) until the client closes it.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short scenarios: a smoke run of about a minute and a half")
    parser.add_argument("--soak-seconds", type=float, help="soak length (default 600; quick: 30)")
    parser.add_argument("--seed", type=int, default=20261201, help="payload seed")
    results_options(parser, "faults")
    return run_and_write(parser.parse_args(argv), "faults", run, markdown)


if __name__ == "__main__":
    sys.exit(main())
