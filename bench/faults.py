"""Faults benchmark: duckapi on the bundled project under overload (an open loop at 4x capacity,
DUCKAPI_MAX_QUEUE=16), kill -9 of a worker and of the whole server, 1,000 slow connections, and a
soak; each scenario on a server of its own. docs/benchmarks.md (Faults) says how each is measured.

    python -m bench.faults            # full run, ~15 minutes: bench/faults_results.json, bench/FAULTS_RESULTS.md
    python -m bench.faults --quick    # smoke run, ~1.5 minutes; writes under bench/.work/ unless --out-* given
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable

import numpy as np
import orjson
import psutil
import uvloop

from bench.harness import (
    HEADERS, INT32_MAX, INT32_MIN, MIB, PATH, WORK, Result, RssSampler, Sent, Server, Usage, analyse, build,
    clean_env, done, drive, fmt, gc_frozen, git_and_load, group_pool, machine_info, machine_line, md_table, ms,
    percentile, post, quiet_first, results_options, run_and_write, serve_cmd, start_all, stop_all, target,
    target_lines, tree_changes, tree_of, tree_sum, verify,
)

HERE = WORK / "faults"
#: Reuse a pooled connection only if idle for less than this (uvicorn closes them after 5 s).
KEEP_ALIVE_REUSE_S = 4.0
#: Every CLOSE_EVERY-th open-loop request says `Connection: close`, as urllib does.
CLOSE_EVERY = 4
#: What a slow connection sends, one byte at a time: a request line, then headers without end.
SLOW_PREFIX = b"POST /analyse_data/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: "


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
QUICK = Plan(capacity_s=3, overload_s=8, kill_load_s=8, kill_at_s=3, restart_load_s=4, slow_baseline_s=3, slow_s=8,
             soak_s=30)


class Payloads:
    """Distinct seeded 9-row payloads made in bulk, as harness.small_rows makes them one by one
    (three groups, values 0..29, 5% with one value anywhere in int32); answers only when checking."""

    def __init__(self, seed: int) -> None:
        self.seed, self.pool, self.seen, self.batches = seed, group_pool(), set[bytes](), 0

    def make(self, n: int) -> list[bytes]:
        rng = np.random.default_rng([self.seed, self.batches])
        self.batches += 1
        out: list[bytes] = []
        while len(out) < n:
            m = int((n - len(out)) * 1.01) + 8
            groups = rng.integers(0, len(self.pool), (m, 3))
            distinct = (groups[:, 0] != groups[:, 1]) & (groups[:, 0] != groups[:, 2]) & (groups[:, 1] != groups[:, 2])
            which, values = rng.integers(0, 3, (m, 9)), rng.integers(0, 30, (m, 9))
            wild = rng.random(m) < 0.05
            values[wild, rng.integers(0, 9, int(wild.sum()))] = rng.integers(INT32_MIN, INT32_MAX + 1, int(wild.sum()))
            gid = np.take_along_axis(groups, which, axis=1)
            for ok, g_row, v_row in zip(distinct.tolist(), gid.tolist(), values.tolist()):
                body = orjson.dumps([{"group_id": self.pool[g], "event_value": v} for g, v in zip(g_row, v_row)])
                if ok and body not in self.seen and len(out) < n:
                    self.seen.add(body)
                    out.append(body)
        return out


def check(sent: list[Sent | None] | list[Sent], payloads: list[bytes]) -> Result:
    """Wrong answers among the 200s (exact equality with tests/oracle.py)."""
    expected = (analyse(orjson.loads(b)) if s is not None and s.status == 200 else None for s, b in zip(sent, payloads))
    out = verify(sent, expected)
    del out["exact_order_matches"]
    return out


def workers(server: Server) -> list[psutil.Process]:
    """The uvicorn workers of a --workers N server (spawned children of the supervisor)."""
    out = []
    for p in psutil.Process(server.pid).children():
        with suppress(psutil.Error):
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline()):
                out.append(p)
    return out


def statuses(sent: Iterable[Sent | None]) -> dict[str, int]:
    return dict(sorted(Counter(str(s.status) if s.status != -1 else "connection error" for s in done(sent)).items()))


def error_kinds(sent: Iterable[Sent | None]) -> dict[str, int]:
    """Connection errors by exception (the client's repr up to its first parenthesis), other non-200s by status."""
    return dict(Counter(s.body.decode(errors="replace").split("(", 1)[0] if s.status == -1 else f"HTTP {s.status}"
                        for s in done(sent) if s.status != 200))


def buckets(sent: Iterable[Sent | None], t0: float, width: float, end: float) -> list[float]:
    """200s per second in consecutive `width`-second buckets from t0 to end (whole buckets only)."""
    counts = [0] * max(1, int((end - t0) / width + 1e-6))
    for s in done(sent):
        if s.status == 200 and t0 <= s.at_s < t0 + len(counts) * width:
            counts[int((s.at_s - t0) / width)] += 1
    return [round(c / width, 1) for c in counts]


def recovered_at(rates: list[float], width: float, level: float, from_s: float,
                 after_dip: bool = False) -> float | None:
    """Seconds (bucket ends) when two consecutive buckets from from_s on first average 90% of `level`;
    with `after_dip`, the first such window after the lowest one (from_s itself if none is below)."""
    first = max(int(np.floor(from_s / width)), 0)
    windows = [(rates[i] + rates[i + 1]) / 2 for i in range(first, len(rates) - 1)]
    start = first
    if after_dip and windows:
        if min(windows) >= 0.9 * level:
            return round(from_s, 2)
        start = first + int(np.argmin(windows))
    return next((round((i + 2) * width, 2) for i in range(start, len(rates) - 1)
                 if (rates[i] + rates[i + 1]) / 2 >= 0.9 * level), None)


def post_attributed(port: int, body: bytes, pids: list[int]) -> tuple[Sent, int | None]:
    """POST on a new connection and name the worker holding its server side (psutil)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    t0 = time.perf_counter()
    try:
        conn.request("POST", PATH, body=body, headers=HEADERS)
        resp = conn.getresponse()
        sent = Sent(resp.status, 0.0, resp.read(), time.perf_counter())
        sent.latency_s = sent.at_s - t0
        local = conn.sock.getsockname()[1] if conn.sock else -1
        for pid in pids:
            with suppress(psutil.Error):
                if any(c.raddr and c.raddr.port == local and c.laddr.port == port
                       for c in psutil.Process(pid).net_connections("tcp")):
                    return sent, pid
        return sent, None
    except (OSError, http.client.HTTPException) as exc:
        now = time.perf_counter()
        return Sent(-1, now - t0, repr(exc).encode(), now), None
    finally:
        conn.close()

# ---------------------------------------------------------------- asyncio HTTP client


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body, and whether the server closes the connection after it."""
    lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {name.strip().lower(): value.strip().lower() for name, _, value in (x.partition(b":") for x in lines[1:])}
    close = headers.get(b"connection") == b"close"
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
        return status, b"".join(parts), close
    if b"content-length" not in headers:
        return status, await reader.read(), True
    return status, await reader.readexactly(int(headers[b"content-length"])), close


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
    live: int = 0


async def _open_loop(port: int, payloads: list[bytes], rate: float, max_connections: int) -> OpenLoop:
    n = len(payloads)
    run = OpenLoop(rate, [None] * n, [0.0] * n, [0.0] * n, time.perf_counter() + 0.2)
    # LIFO: a released connection is reused before a free slot (None) opens a new one.
    pool: asyncio.LifoQueue[tuple[asyncio.StreamReader, asyncio.StreamWriter, float] | None] = asyncio.LifoQueue()
    for _ in range(max_connections):
        pool.put_nowait(None)

    def close(writer: asyncio.StreamWriter) -> None:
        writer.close()
        run.live -= 1

    async def one(i: int) -> None:
        item = await pool.get()
        t0 = run.send[i] = time.perf_counter()
        writer = None
        if item is not None and (item[0].at_eof() or t0 - item[2] > KEEP_ALIVE_REUSE_S):
            close(item[1])
            item = None
        try:
            async with asyncio.timeout(60):
                if item is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    run.connections_opened += 1
                    run.live += 1
                    run.most_open = max(run.most_open, run.live)
                else:
                    reader, writer, _ = item
                body = payloads[i]
                writer.write(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1"
                             + b"\r\nContent-Type: application/json"
                             + b"\r\nConnection: close" * (i % CLOSE_EVERY == 0)
                             + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                status, answer, closing = await read_response(reader)
            t1 = time.perf_counter()
            run.sent[i] = Sent(status, t1 - t0, answer, t1)
            if closing:
                close(writer)
            pool.put_nowait(None if closing else (reader, writer, t1))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError) as exc:
            t1 = time.perf_counter()
            run.sent[i] = Sent(-1, t1 - t0, repr(exc).encode(), t1)
            if writer is not None:
                close(writer)
            pool.put_nowait(None)

    tasks: set[asyncio.Task[None]] = set()
    i = 0
    while i < n:
        while i < n and run.started + i / rate <= time.perf_counter():
            run.due[i] = run.started + i / rate
            task = asyncio.get_running_loop().create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if i < n:
            await asyncio.sleep(max(0.0, run.started + i / rate - time.perf_counter()))
    while tasks:
        await asyncio.gather(*list(tasks))
    while not pool.empty():
        if (item := pool.get_nowait()) is not None:
            item[1].close()
    return run


def open_loop(port: int, payloads: list[bytes], rate: float, max_connections: int) -> OpenLoop:
    """Send payloads[i] at started + i / rate whatever the answers (uvloop event loop)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_open_loop(port, payloads, rate, max_connections))

# ---------------------------------------------------------------- 1. overload

#: An independent client in a process of its own, idle between requests: one POST at a time on a
#: keep-alive connection, so its figures carry none of the load generator's own lag.
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


def server_durations(log: Path, offset: int) -> dict[str, list[float]]:
    """The request log's duration_ms of POSTs by status, from byte `offset` of the server's log."""
    out: dict[str, list[float]] = {}
    with open(log, "rb") as f:
        f.seek(offset)
        for line in f:
            entry = orjson.loads(line) if line.startswith(b"{") and b'"duration_ms"' in line else {}
            if entry.get("method") == "POST":
                out.setdefault(str(entry["status"]), []).append(entry["duration_ms"])
    return out


def answers_after(port: int, payloads: Payloads) -> Result:
    """Five requests after a scenario: the server still answers, correctly."""
    bodies = payloads.make(5)
    after = [post(port, body, timeout=10) for body in bodies]
    return {**statuses(after), "wrong": check(after, bodies)["wrong"]}


def overload(server: Server, plan: Plan, payloads: Payloads) -> Result:
    port = server.port
    drive(port, payloads.make(100), 1, 10)  # warm-up
    cap_payloads = payloads.make(int(plan.capacity_s * 2000))
    gc_frozen()
    usage = Usage(server.pid)
    cap_sent, cap_wall = drive(port, cap_payloads, plan.capacity_concurrency, plan.capacity_s)
    cap_n = len(done(cap_sent))
    capacity = cap_n / cap_wall
    capacity_info = {"concurrency": plan.capacity_concurrency, "requests": cap_n, "wall_s": round(cap_wall, 2),
                     "rps": round(capacity, 1), "latency_ms": ms(s.latency_s for s in done(cap_sent)),
                     "statuses": statuses(cap_sent), **usage.cores(), **check(cap_sent, cap_payloads)}
    print(f"  capacity (c={plan.capacity_concurrency}): {capacity:.1f} req/s", flush=True)
    rate = plan.overload_factor * capacity
    work = payloads.make(int(rate * plan.overload_s))
    gc_frozen()
    time.sleep(1)
    idle_rss = server.rss() / MIB
    sampler = RssSampler(server.pid, every_s=1.0)
    usage = Usage(server.pid)
    log_offset = server.log.stat().st_size
    sampler.start()
    (HERE / "probe-body.json").write_bytes(payloads.make(1)[0])
    probe = subprocess.Popen([sys.executable, "-c", PROBE, str(port), str(plan.overload_s), str(plan.probe_every_s),
                              str(HERE / "probe-body.json")], stdout=subprocess.PIPE)
    run = open_loop(port, work, rate, plan.max_connections)
    probed = [(str(status), latency) for status, latency in orjson.loads(probe.communicate(timeout=120)[0])]
    peak_rss = sampler.stop() / MIB
    points, cores = sampler.points, usage.cores()
    time.sleep(2)
    after = answers_after(port, payloads)
    rss_after = server.rss() / MIB
    print(f"  open loop at {rate:.0f} req/s for {plan.overload_s:.0f}s: {statuses(run.sent)}", flush=True)

    finished, t0 = done(run.sent), run.started
    ok = [s for s in finished if s.status == 200]
    busy = [s for s in finished if s.status == 503]
    end = max(s.at_s for s in finished)
    # RSS bounded: the last third of the run against the first third after its first 10 s.
    tail = [mib for t, mib in points if t >= plan.overload_s * 2 / 3]
    head = [mib for t, mib in points if min(10.0, plan.overload_s / 4) <= t <= plan.overload_s / 3] or tail
    return {
        "capacity": capacity_info, "max_queue": plan.max_queue, "factor": plan.overload_factor,
        "duration_s": plan.overload_s, "target_rps": round(rate, 1),
        "offered": {"requests": len(work), "rps": round(len(work) / max(max(run.send) - t0, 1e-9), 1),
                    "send_lag_ms": ms(s - d for s, d in zip(run.send, run.due)),
                    "connections_opened": run.connections_opened, "most_connections_open": run.most_open,
                    "pool_limit": plan.max_connections},
        "statuses": statuses(run.sent),
        "accepted": {"requests": len(ok), "rps": round(len(ok) / max(end - t0, 1e-9), 1),
                     "latency_ms": ms(s.latency_s for s in ok),
                     "latency_from_due_ms": ms(s.at_s - d for s, d in zip(run.sent, run.due) if s and s.status == 200)},
        "rejected": {"requests": len(busy), "latency_ms": ms(s.latency_s for s in busy),
                     "examples": sorted({s.body[:200].decode(errors="replace") for s in busy})[:1]},
        "probe": {"every_s": plan.probe_every_s, "statuses": dict(Counter(status for status, _ in probed)),
                  **{f"{status}_latency_ms": ms(latency / 1000 for s, latency in probed if s == status)
                     for status in ("200", "503")}},
        "server_side_ms": {status: {"requests": len(durations), **ms(d / 1000 for d in durations)}
                           for status, durations in server_durations(server.log, log_offset).items()},
        "other": {"requests": len(finished) - len(ok) - len(busy),
                  "kinds": error_kinds(s for s in finished if s.status != 503),
                  "examples": sorted({f"{s.status}: {s.body[:160].decode(errors='replace')}" for s in finished
                                      if s.status not in (200, 503)})[:3]},
        "rss_mib": {"idle_before": round(idle_rss, 1), "peak": round(peak_rss, 1), "series_1s": points,
                    "first_third_max": max(head), "last_third_max": max(tail), "after_2s_idle": round(rss_after, 1)},
        "throughput_1s": buckets(run.sent, t0, 1.0, end),
        "rejected_p99_ms_1s": [ms(s.latency_s for s in busy if t0 + k <= s.at_s < t0 + k + 1)["p99"]
                               for k in range(int(end - t0))],
        "answers_after": after, **cores, **check(run.sent, work),
    }

# ---------------------------------------------------------------- 2. kill -9


def kill_worker_later(server: Server, at: float, bodies: list[bytes], out: Result) -> None:
    """At perf_counter `at`, kill -9 one worker; then poll (new connections, one POST each)
    until the replacement worker answers a 200 itself."""
    time.sleep(max(0.0, at - time.perf_counter()))
    before = workers(server)
    victim = before[0]
    out.update(victim_pid=victim.pid, workers_before=[p.pid for p in before], killed_at=time.perf_counter(),
               polls=[], poll_payloads=[], answered_by=[])
    victim.send_signal(signal.SIGKILL)
    old = {p.pid for p in before}
    while time.perf_counter() < out["killed_at"] + 60:
        if new := [p.pid for p in workers(server) if p.pid not in old]:
            if "spawned_at" not in out:
                out["spawned_at"], out["replacement_pid"] = time.perf_counter(), new[0]
            body = bodies[len(out["polls"])]
            sent, pid = post_attributed(server.port, body, [*new, *(old - {victim.pid})])
            out["polls"].append(sent)
            out["poll_payloads"].append(body)
            out["answered_by"].append(pid)
            if pid == new[0] and sent.status == 200:
                out["answered_at"] = sent.at_s
                return
        time.sleep(0.02)


def since(end: float | None, start: float) -> float | None:
    return None if end is None else round(end - start, 2)


def kill_worker(server: Server, plan: Plan, payloads: Payloads, width: float) -> tuple[Result, float]:
    """One of two workers killed under load: when its replacement answers, when throughput is back."""
    deadline = time.monotonic() + 120
    while len(workers(server)) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: 2 workers never came up")
        time.sleep(0.1)
    drive(server.port, payloads.make(400), plan.kill_concurrency, 3)  # warm-up: both workers
    worker_pids = [p.pid for p in workers(server)]
    work, poll_bodies = payloads.make(int(plan.kill_load_s * 1500)), payloads.make(3000)
    gc_frozen()
    info: Result = {}
    t0 = time.perf_counter()
    killer = threading.Thread(target=kill_worker_later, args=(server, t0 + plan.kill_at_s, poll_bodies, info),
                              daemon=True)
    killer.start()
    sent, wall = drive(server.port, work, plan.kill_concurrency, plan.kill_load_s)
    killer.join()
    rates = buckets(sent, t0, width, t0 + wall)
    kill_s = info["killed_at"] - t0
    pre = [r for i, r in enumerate(rates) if 1.0 <= i * width and (i + 1) * width <= kill_s]
    level = float(np.mean(pre)) if pre else float("nan")
    after_kill = [r for i, r in enumerate(rates) if i * width >= kill_s]
    recovered = recovered_at(rates, width, level, kill_s, after_dip=True)
    dip_at = (int(np.floor(kill_s / width)) + int(np.argmin(after_kill))) * width if after_kill else None
    answered = info["answered_at"] - info["killed_at"] if "answered_at" in info else None
    post_ = [r for i, r in enumerate(rates) if answered is not None and i * width >= kill_s + answered + 1]
    polls_check = check(info["polls"], info["poll_payloads"])
    result = {
        "workers": worker_pids, "victim": info["victim_pid"], "replacement": info.get("replacement_pid"),
        "concurrency": plan.kill_concurrency, "load_s": plan.kill_load_s, "kill_at_s": round(kill_s, 2),
        "requests": len(done(sent)), "statuses": statuses(sent), "errors": error_kinds(sent),
        "replacement_spawned_s": since(info.get("spawned_at"), info["killed_at"]),
        "replacement_answered_s": since(info.get("answered_at"), info["killed_at"]),
        "polls": len(info["polls"]), "poll_statuses": statuses(info["polls"]),
        "polls_answered_by": dict(Counter("replacement" if p == info.get("replacement_pid") else
                                          "other worker" if p else "unknown" for p in info["answered_by"])),
        "pre_kill_rps": round(level, 1),
        "lowest_0_5s_after_kill_rps": min(after_kill) if after_kill else None,
        "lowest_0_5s_at_s": since(dip_at, kill_s),
        "throughput_back_s": since(recovered, kill_s),
        "after_replacement_rps": round(float(np.mean(post_)), 1) if post_ else None,
        "throughput_0_5s": rates, **check(sent, work),
    }
    result["wrong"] += polls_check["wrong"]
    result["wrong_examples"] += polls_check["wrong_examples"]
    print(f"  worker kill: {result['statuses']}, replacement answered after {result['replacement_answered_s']} s, "
          f"throughput back after {result['throughput_back_s']} s", flush=True)
    return result, level


def kill_and_restart(server: Server, plan: Plan, payloads: Payloads) -> tuple[Result, Server]:
    port, c, width = server.port, plan.kill_concurrency, 0.5
    worker_kill, level = kill_worker(server, plan, payloads, width)
    # The whole server (supervisor and workers) under the same load, then a restart on the same port.
    work2 = payloads.make(int(4 * 1500))
    stop = threading.Event()
    box: Result = {}
    loader = threading.Thread(target=lambda: box.update(zip(("sent", "wall"), drive(port, work2, c, 30, stop=stop))),
                              daemon=True)
    loader.start()
    time.sleep(2)
    procs = tree_of(server.pid)
    stop.set()  # no new requests: the ones in flight meet the kill
    for p in procs:  # supervisor first, so that it replaces nobody
        with suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    killed_at = time.perf_counter()
    psutil.wait_procs(procs, timeout=10)
    server.proc.wait(10)  # type: ignore[union-attr]
    loader.join()
    in_flight = [s for s in done(box["sent"]) if s.at_s >= killed_at]
    restart_bodies = payloads.make(int(plan.restart_load_s * 1500) + 2000)
    again = replace(server, name=server.name + "-restart", proc=None)
    t_restart = time.perf_counter()
    again.start()
    polls, k = [], 0
    while True:
        if again.proc.poll() is not None:  # type: ignore[union-attr]
            raise RuntimeError(f"{again.name} exited; see {again.log}")
        polls.append(s := post(port, restart_bodies[k], timeout=10))
        k += s.status != -1  # a payload is used up once the server has answered it
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
    wrong = [check(box["sent"], work2), check([s for s in polls if s.status != -1], restart_bodies[:k]),
             check(sent3, rest)]
    restart = {
        "kill_under_load_concurrency": c, "requests_before_kill": len(done(box["sent"])),
        "statuses_before_kill": statuses(box["sent"]),
        "in_flight_at_kill": len(in_flight), "in_flight_errors": error_kinds(in_flight),
        "first_200_s": round(first_200, 2), "polls_until_first_200": len(polls), "poll_statuses": statuses(polls),
        "full_throughput_s": full, "pre_kill_rps": round(level, 1),
        "rps_after_first_200": round(len(done(sent3)) / wall3, 1), "throughput_0_5s_from_restart": rates3,
        "restart_load_statuses": statuses(sent3), "workers_after": len(workers(again)),
        "wrong": sum(w["wrong"] for w in wrong), "wrong_examples": [e for w in wrong for e in w["wrong_examples"]][:3],
    }
    print(f"  whole server killed ({len(in_flight)} requests in flight); restart: first 200 after {first_200:.2f} s, "
          f"full throughput after {full} s", flush=True)
    return {"worker": worker_kill, "server": restart}, again

# ---------------------------------------------------------------- 3. slow connections


class SlowClients(threading.Thread):
    """Connections held open in an event loop of their own: `slow` send SLOW_PREFIX (then "a"s) a
    byte every `every_s`; `idle` send nothing; `keepalive` send one GET /healthz, then nothing."""

    def __init__(self, port: int, plan: Plan) -> None:
        super().__init__(daemon=True)
        self.port, self.every_s = port, plan.slow_byte_every_s
        self.kinds = (["slow"] * plan.slow_connections + ["idle"] * plan.idle_connections
                      + ["keepalive"] * plan.keepalive_connections)
        self.records: list[Result] = [{"kind": k, "sent": 0, "received": b""} for k in self.kinds]
        self.opened = threading.Event()
        self.loop = uvloop.new_event_loop()
        self.stopping = asyncio.Event()

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.main())

    async def main(self) -> None:
        conns = []
        for lo in range(0, len(self.records), 50):
            conns += await asyncio.gather(*(self.connect(r) for r in self.records[lo:lo + 50]))
        self.opened.set()
        tasks = [asyncio.create_task(self.hold(r, *c)) for r, c in zip(self.records, conns) if c is not None]
        await self.stopping.wait()
        for t in tasks:
            t.cancel()
        for c in conns:
            if c is not None:
                c[1].close()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def connect(self, rec: Result) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            conn = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError as exc:
            rec["error"] = repr(exc)
            return None
        rec["opened"] = time.perf_counter()
        return conn

    async def hold(self, rec: Result, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
                writer.write(SLOW_PREFIX[rec["sent"]:rec["sent"] + 1] or b"a")
                rec["sent"] += 1
                await asyncio.sleep(self.every_s)
        await watcher

    async def watch(self, reader: asyncio.StreamReader, rec: Result) -> None:
        try:
            while data := await reader.read(4096):
                rec["received"] += data[:200]
            rec["closed"], rec["how"] = time.perf_counter(), "EOF"
        except OSError as exc:
            rec["closed"], rec["how"] = time.perf_counter(), type(exc).__name__

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.join(30)

    def summary(self, at: float) -> Result:
        out: Result = {}
        for kind in dict.fromkeys(self.kinds):
            recs = [r for r in self.records if r["kind"] == kind]
            opened = [r for r in recs if "opened" in r]
            closed = [r for r in opened if "closed" in r and r["closed"] <= at]
            after = sorted(r["closed"] - r.get("idle_from", r["opened"]) for r in closed)
            out[kind] = {
                "connections": len(recs), "opened": len(opened), "connect_errors": len(recs) - len(opened),
                "closed_by_server": len(closed), "open_at_end": len(opened) - len(closed),
                "held_open_s": round(at - min((r["opened"] for r in opened), default=at), 1),
                "closed_after_s": {"min": round(after[0], 2), "p50": round(percentile(after, 0.5), 2),
                                   "max": round(after[-1], 2)} if after else None,
                "close_kinds": dict(Counter(r["how"] for r in closed)),
                "answers_to_them": sorted({r["received"][:40].decode(errors="replace") for r in opened
                                           if r["received"]})[:3],
            }
            if kind == "slow":
                out[kind]["bytes_sent_max"] = max((r["sent"] for r in opened), default=0)
            if kind == "keepalive":
                out[kind]["first_request"] = dict(Counter(str(r.get("answered")) for r in opened))
        return out


def server_connections(server: Server) -> dict[str, int]:
    """Open file descriptors and established connections on the port of the server tree."""
    procs = tree_of(server.pid)
    return {"fds": int(tree_sum(procs, lambda p: p.num_fds())),
            "established": int(tree_sum(procs, lambda p: sum(c.laddr.port == server.port and
                                                             c.status == psutil.CONN_ESTABLISHED
                                                             for c in p.net_connections("tcp"))))}


def slow_connections(server: Server, plan: Plan, payloads: Payloads) -> Result:
    port = server.port
    drive(port, payloads.make(100), 1, 10)  # warm-up
    base_work, slow_work = payloads.make(int(plan.slow_baseline_s * 800)), payloads.make(int(plan.slow_s * 800))
    gc_frozen()
    limit = psutil.Process(server.pid).rlimit(psutil.RLIMIT_NOFILE)
    before_conns = server_connections(server)

    def side(work: list[bytes], seconds: float) -> Result:
        usage = Usage(server.pid)
        sent, wall = drive(port, work, 1, seconds)
        return {"requests": len(done(sent)), "rps": round(len(done(sent)) / wall, 1), "statuses": statuses(sent),
                "latency_ms": ms(s.latency_s for s in done(sent)), "sent": sent, **usage.cores()}

    without = side(base_work, plan.slow_baseline_s)
    rss_before = server.rss() / MIB
    clients = SlowClients(port, plan)
    t_open = time.perf_counter()
    clients.start()
    if not clients.opened.wait(120):
        raise RuntimeError("slow connections not opened in 120 s")
    opened_s = time.perf_counter() - t_open
    time.sleep(0.5)
    held_conns = server_connections(server)
    peak = RssSampler(server.pid)
    peak.start()
    with_slow = side(slow_work, plan.slow_s)
    at = time.perf_counter()
    end_conns = server_connections(server)
    peak_rss = peak.stop() / MIB
    groups = clients.summary(at)
    clients.stop()
    time.sleep(1)
    after_conns = server_connections(server)
    after = answers_after(port, payloads)
    for work, result in ((base_work, without), (slow_work, with_slow)):
        result.update(check(result.pop("sent"), work))
    print(f"  c=1 p50/p99 without {without['latency_ms']['p50']}/{without['latency_ms']['p99']} ms, with "
          f"{sum(g['opened'] for g in groups.values())} slow/idle connections "
          f"{with_slow['latency_ms']['p50']}/{with_slow['latency_ms']['p99']} ms; "
          f"closed by the server: { {k: g['closed_by_server'] for k, g in groups.items()} }", flush=True)
    return {
        "server_nofile_limit": list(limit), "client_nofile_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "byte_every_s": plan.slow_byte_every_s, "opening_s": round(opened_s, 2), "without": without, "with": with_slow,
        "p50_ratio": round(with_slow["latency_ms"]["p50"] / without["latency_ms"]["p50"], 2),
        "p99_ratio": round(with_slow["latency_ms"]["p99"] / without["latency_ms"]["p99"], 2),
        "groups": groups,
        "server": {"before": before_conns, "held": held_conns, "at_end": end_conns, "after_closing": after_conns,
                   "rss_mib_before": round(rss_before, 1), "rss_mib_peak_with": round(peak_rss, 1)},
        "answers_after": after,
    }

# ---------------------------------------------------------------- 4. soak


def soak(server: Server, plan: Plan, payloads: Payloads, capacity: float) -> Result:
    drive(server.port, payloads.make(100), 1, 10)  # warm-up
    work = payloads.make(int(max(capacity, 300) * plan.soak_s * 1.6) + 1000)
    gc_frozen()
    time.sleep(1)
    sampler = RssSampler(server.pid, interval=0.1, every_s=plan.soak_rss_every_s)
    usage = Usage(server.pid)
    sampler.start()
    t0 = time.perf_counter()
    sent, wall = drive(server.port, work, plan.soak_concurrency, plan.soak_s)
    peak_rss = sampler.stop() / MIB
    points, cores, n = sampler.points, usage.cores(), len(done(sent))
    # RSS settles about two minutes into steady load (docs/benchmarks.md, Faults).
    warm_up = min(120.0, plan.soak_s / 3)
    mark = max(10.0, min(60.0, plan.soak_s / 6))  # table rows every minute (quick: every 10 s)
    table = []
    for k in range(max(1, int(wall / mark + 1e-6))):  # whole marks
        lo, hi = t0 + k * mark, t0 + (k + 1) * mark
        part = [s for s in done(sent) if lo <= s.at_s < hi]
        rss_at = [mib for t, mib in points if t <= (k + 1) * mark + 0.5]
        table.append({"until_s": round(min((k + 1) * mark, wall), 1), "rss_mib": rss_at[-1] if rss_at else None,
                      "requests": len(part), "rps": round(len(part) / (min(hi, t0 + wall) - lo), 1),
                      "latency_ms": ms(s.latency_s for s in part), "errors": sum(s.status != 200 for s in part)})
    at_warm = [mib for t, mib in points if t <= warm_up + 0.5][-1]
    after_warm = [(t, mib) for t, mib in points if t >= warm_up]
    slope = round(float(np.polyfit(*zip(*after_warm), 1)[0]) * 60, 2) if len(after_warm) >= 3 else None
    warm_mib = [mib for _, mib in after_warm]
    result = {
        "concurrency": plan.soak_concurrency, "duration_s": plan.soak_s, "wall_s": round(wall, 1),
        "requests": n, "payloads_prepared": len(work), "ran_out_of_payloads": n >= len(work),
        "rps": round(n / wall, 1), "statuses": statuses(sent), "errors": error_kinds(sent),
        "latency_ms": ms(s.latency_s for s in done(sent)),
        "rss_every_s": plan.soak_rss_every_s, "rss_series": points, "warm_up_s": warm_up, "mark_s": mark,
        "rss_mib": {"start": points[0][1], "after_warm_up": at_warm, "end": points[-1][1], "peak": round(peak_rss, 1),
                    "min_after_warm_up": min(warm_mib), "max_after_warm_up": max(warm_mib),
                    "growth_after_warm_up": round(points[-1][1] - at_warm, 1), "slope_mib_per_min": slope},
        "table": table, **cores, **check(sent, work),
    }
    print(f"  soak: {n} requests in {wall:.0f}s, RSS {at_warm} MiB after warm-up -> {points[-1][1]} MiB at the end; "
          f"{result['statuses']}", flush=True)
    return result

# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> Result:
    plan = QUICK if args.quick else FULL
    if args.soak_seconds:
        plan = replace(plan, soak_s=args.soak_seconds)
    HERE.mkdir(parents=True, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # servers started later inherit it
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    quiet = quiet_first(args)
    t0 = time.monotonic()
    from duckapi.settings import Settings  # the checkout's code, as the servers will run it

    db = HERE / "dev.duckdb"
    print("building the bundled project into", db, flush=True)
    build(db, clean_env(DUCKAPI_TARGET_PATH=str(HERE / "target-build")), log_name="faults-build.log")

    def server(name: str, *args: str, **env: str) -> Server:
        return Server(f"faults-{name}", serve_cmd(db, *args),
                      clean_env(DUCKAPI_TARGET_PATH=str(HERE / f"target-{name}"), DUCKAPI_DRAIN_SECONDS="0", **env))

    servers = {"overload": server("overload", DUCKAPI_MAX_QUEUE=str(plan.max_queue), DUCKAPI_ACCESS_LOG="json"),
               "kill": server("kill", "--workers", "2"), "slow": server("slow"), "soak": server("soak")}
    results: Result = {"quick": args.quick, "seed": args.seed, "plan": asdict(plan), "load": quiet,
                       "client_nofile_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
                       "max_queue_setting_in_checkout": "max_queue" in Settings.__dataclass_fields__}
    restarted: Server | None = None
    try:
        start_all(servers.values())
        payloads = Payloads(args.seed)
        for s in servers.values():
            s.wait_ready()
        results["startup_s"] = round(time.monotonic() - t0, 1)
        print(f"servers ready after {results['startup_s']}s\n1. overload", flush=True)
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
        stop_all([*servers.values(), restarted])
        gc.unfreeze()
    results["targets"] = targets(results)
    results["machine"] = machine_info({**servers, **({"kill-restart": restarted} if restarted else {})})
    results["machine"]["duckapi_tree_changes"] = tree_changes()
    results["total_s"] = round(time.monotonic() - t0, 1)
    return results


def targets(r: Result) -> list[Result]:
    o, w, k, sl, so = r["overload"], r["kill"]["worker"], r["kill"]["server"], r["slow"], r["soak"]
    lag, probe, rss, orss = o["offered"]["send_lag_ms"], o["probe"]["503_latency_ms"], so["rss_mib"], o["rss_mib"]
    return [
        target("overload: the client offers the target rate (at least 95%)",
               o["offered"]["rps"] >= 0.95 * o["target_rps"],
               f"{o['offered']['rps']} of {o['target_rps']} req/s, send lag p99 {lag['p99']} ms"),
        target("overload: rejected (503) within 10 ms (p99), for a client that is not itself overloaded",
               bool(o["rejected"]["requests"]) and (probe["p99"] or 1e9) <= 10,
               f"independent client: {o['probe']['statuses'].get('503', 0)} rejected, p50 {probe['p50']} / p99 "
               f"{probe['p99']} / max {probe['max']} ms; the load generator's {o['rejected']['requests']}: p99 "
               f"{o['rejected']['latency_ms']['p99']} ms (its own send lag p99 {lag['p99']} ms); "
               f"server side p99 {o['server_side_ms'].get('503', {}).get('p99')} ms"),
        target("overload: no status but 200 and 503, no connection error", o["other"]["requests"] == 0,
               f"{o['other']['requests']} other ({o['other']['kinds']})"),
        target("overload: server RSS bounded (last third of the run at most 10% over the first)",
               orss["last_third_max"] <= 1.1 * orss["first_third_max"],
               f"{orss['first_third_max']} -> {orss['last_third_max']} MiB, peak {orss['peak']}"),
        target("overload: no wrong answer", o["wrong"] == 0 and o["answers_after"]["wrong"] == 0,
               f"{o['wrong']} wrong of {o['accepted']['requests']}"),
        target("worker kill -9: the replacement answers", w["replacement_answered_s"] is not None,
               f"after {w['replacement_answered_s']} s (spawned after {w['replacement_spawned_s']} s)"),
        target("worker kill -9: throughput back to the pre-kill level (90%)", w["throughput_back_s"] is not None,
               f"after {w['throughput_back_s']} s; pre-kill {w['pre_kill_rps']} req/s, lowest 0.5 s "
               f"{w['lowest_0_5s_after_kill_rps']}"),
        target("worker kill -9: no wrong answer", w["wrong"] == 0,
               f"{w['wrong']} wrong; errors {w['errors'] or 'none'}"),
        target("server kill -9 and restart: a 200, then full throughput", k["full_throughput_s"] is not None,
               f"first 200 after {k['first_200_s']} s, full throughput after {k['full_throughput_s']} s"),
        target("server kill -9 and restart: no wrong answer", k["wrong"] == 0, f"{k['wrong']} wrong"),
        target("slow connections: every normal request answered 200, correctly",
               sl["with"]["statuses"] == {"200": sl["with"]["requests"]} and sl["with"]["wrong"] == 0
               and sl["without"]["wrong"] == 0,
               f"{sl['with']['statuses']}, {sl['with']['wrong']} wrong; p50 {sl['with']['latency_ms']['p50']} vs "
               f"{sl['without']['latency_ms']['p50']} ms, p99 {sl['with']['latency_ms']['p99']} vs "
               f"{sl['without']['latency_ms']['p99']} ms"),
        target("soak: no error, no wrong answer",
               so["statuses"] == {"200": so["requests"]} and so["wrong"] == 0 and not so["ran_out_of_payloads"],
               f"{so['requests']} requests, {so['statuses']}, {so['wrong']} wrong"),
        target("soak: RSS growth after warm-up under 5%", rss["growth_after_warm_up"] <= 0.05 * rss["after_warm_up"],
               f"{rss['after_warm_up']} -> {rss['end']} MiB ({rss['growth_after_warm_up']:+} MiB; fit "
               f"{rss['slope_mib_per_min']} MiB/min)"),
    ]

# ---------------------------------------------------------------- reporting


def lat(d: Result) -> str:
    return f"{fmt(d['p50'], 2)} / {fmt(d['p99'], 2)} / {fmt(d['max'], 2)}"


def listed(values: Iterable[float]) -> str:
    return ", ".join(f"{x:.0f}" for x in values)


REPORT = """\
# Faults benchmark{quick}

{machine}{git_and_load} Client and server share the cores.

Bundled project, distinct seeded 9-row POSTs to /analyse_data/, every 200 checked against tests/oracle.py. \
`python -m bench.faults` regenerates this file; docs/benchmarks.md (Faults) says how each scenario is measured.

## Targets

{targets}

## 1. Overload: {o[factor]:g}x capacity for {o[duration_s]:g} s, DUCKAPI_MAX_QUEUE={o[max_queue]}

Open-loop client: {o[offered][connections_opened]} connections opened, at most {o[offered][most_connections_open]} \
at once (pool of {o[offered][pool_limit]}; every {close_every}th request says `Connection: close`).

{overload_rows}

Accepted latency from the due time: {due} ms. Wrong answers: {o[wrong]}. CPU: server {o[server_cores]}, \
client {o[client_cores]}, other processes {o[other_processes_cores]} cores. Server RSS: {rss[idle_before]} MiB before, \
peak {rss[peak]} MiB, {rss[after_2s_idle]} MiB 2 s after; each second (s MiB): {series}. Afterwards: {o[answers_after]}.

Accepted req/s each second: {throughput}. Rejected p99 ms each second: {rejected_p99}.

## 2. kill -9

`--workers 2`, closed loop c={w[concurrency]} for {w[load_s]:g} s; worker {w[victim]} killed at {w[kill_at_s]} s.

{kill_rows}

Throughput every 0.5 s around the worker kill (req/s): {worker_rates}.
From the restart: {restart_rates}.

## 3. Slow connections

{g[slow][connections]} connections sending `{slow_prefix}...` one byte every {sl[byte_every_s]:g} s (at most \
{g[slow][bytes_sent_max]} bytes each), {g[idle][connections]} sending nothing, {g[keepalive][connections]} idle after \
one GET /healthz (answers {g[keepalive][first_request]}); opened in {sl[opening_s]} s. RLIMIT_NOFILE: client \
{sl[client_nofile_limit][0]}, server {sl[server_nofile_limit][0]}. Server side: {srv[held][established]} established \
connections and {srv[held][fds]} fds held (before: {srv[before][fds]} fds; after the client closed them: \
{srv[after_closing][fds]}); RSS {srv[rss_mib_before]} MiB before, peak {srv[rss_mib_peak_with]} MiB with them.

{slow_rows}

p50 ratio {sl[p50_ratio]}x, p99 ratio {sl[p99_ratio]}x. Afterwards: {sl[answers_after]}.

{groups}

## 4. Soak: c={so[concurrency]} for {so[duration_s]:g} s

{so[requests]} requests ({soak_rps} req/s), {so[statuses]}, {so[wrong]} wrong, latency {soak_latency} ms. Server RSS \
every {so[rss_every_s]:g} s: {srss[start]} MiB at the start, {srss[after_warm_up]} MiB after warm-up \
({so[warm_up_s]:g} s), {srss[end]} MiB at the end ({growth} MiB; {srss[min_after_warm_up]}-{srss[max_after_warm_up]} \
MiB after warm-up; linear fit {srss[slope_mib_per_min]} MiB/min), peak {srss[peak]} MiB. CPU: server \
{so[server_cores]}, client {so[client_cores]}, other processes {so[other_processes_cores]} cores.

{soak_rows}
"""


def markdown(r: Result) -> str:
    m, o, w, k, sl, so = r["machine"], r["overload"], r["kill"]["worker"], r["kill"]["server"], r["slow"], r["soak"]
    cap, rss, probe = o["capacity"], o["rss_mib"], o["probe"]
    overload_rows = md_table("| | requests | req/s | latency p50 / p99 / max ms |", "lrrr", [
        (f"capacity, closed loop c={cap['concurrency']} ({fmt(r['plan']['capacity_s'], 0)} s)", cap["requests"],
         fmt(cap["rps"]), lat(cap["latency_ms"])),
        (f"offered, open loop ({o['factor']:g}x for {o['duration_s']:g} s; target {fmt(o['target_rps'])} req/s)",
         o["offered"]["requests"], fmt(o["offered"]["rps"]), f"send lag {lat(o['offered']['send_lag_ms'])}"),
        ("accepted (200)", o["accepted"]["requests"], fmt(o["accepted"]["rps"]), lat(o["accepted"]["latency_ms"])),
        ("rejected (503)", o["rejected"]["requests"], "", lat(o["rejected"]["latency_ms"])),
        ("other statuses, connection errors", o["other"]["requests"], "", o["other"]["kinds"] or "-"),
        (f"independent client, one POST every {probe['every_s'] * 1000:g} ms meanwhile: rejected (503)",
         probe["statuses"].get("503", 0), "", lat(probe["503_latency_ms"])),
        ("independent client: accepted (200); other", f"{probe['statuses'].get('200', 0)}; "
         f"{sum(n for s, n in probe['statuses'].items() if s not in ('200', '503'))}", "",
         lat(probe["200_latency_ms"])),
        *((f"server side ({status}, its request log's duration_ms, every client)", side["requests"], "", lat(side))
          for status, side in sorted(o["server_side_ms"].items())),
    ])
    kill_rows = md_table("| | measured |", "ll", [
        ("requests, statuses", f"{w['requests']}, {w['statuses']}"),
        ("errors (kinds)", w["errors"] or "none"),
        ("wrong answers", w["wrong"]),
        ("replacement worker spawned / answered a 200 itself", f"{w['replacement_spawned_s']} s / "
         f"{w['replacement_answered_s']} s after the kill ({w['polls']} polls: {w['polls_answered_by']})"),
        (f"throughput pre-kill / lowest 0.5 s after ({w['lowest_0_5s_at_s']} s after the kill) / from 1 s after the "
         "replacement answered", f"{w['pre_kill_rps']} / {w['lowest_0_5s_after_kill_rps']} / "
         f"{w['after_replacement_rps']} req/s"),
        ("throughput back to 90% of pre-kill (1 s window, after the lowest one)",
         f"{w['throughput_back_s']} s after the kill"),
        (f"whole server killed under load (c={k['kill_under_load_concurrency']})",
         f"{k['in_flight_at_kill']} requests in flight failed: {k['in_flight_errors'] or 'none'}"),
        ("restart on the same port: first 200",
         f"{k['first_200_s']} s ({k['polls_until_first_200']} polls: {k['poll_statuses']})"),
        ("restart: throughput at 90% of pre-kill", f"{k['full_throughput_s']} s; {k['rps_after_first_200']} req/s "
         f"over the {r['plan']['restart_load_s']:g} s after the first 200, {k['restart_load_statuses']}"),
        ("wrong answers (kill and restart)", k["wrong"]),
    ])
    slow_rows = md_table("| normal client, c=1 | requests | statuses | latency p50 / p99 / max ms | server CPU (cores) "
                         "| wrong |", "lrlrrc",
                         [(label, x["requests"], x["statuses"], lat(x["latency_ms"]), fmt(x["server_cores"], 2),
                           x["wrong"]) for label, x in (("without slow connections", sl["without"]),
                                                        ("with them", sl["with"]))])
    groups = md_table("| connections | opened | closed by the server | after (s) | open at the end (held s) |", "lrrlr",
                      [(kind, g["opened"], g["closed_by_server"],
                        f"{g['closed_after_s']['min']} - {g['closed_after_s']['max']}" if g["closed_after_s"] else "-",
                        f"{g['open_at_end']} ({g['held_open_s']})") for kind, g in sl["groups"].items()])
    soak_rows = md_table("| until s | server RSS MiB | requests | req/s | p50 / p99 / max ms | errors |", "rrrrrr",
                         [(fmt(x["until_s"], 0), fmt(x["rss_mib"], 1), x["requests"], fmt(x["rps"]),
                           lat(x["latency_ms"]), x["errors"]) for x in so["table"]])
    series = rss["series_1s"]
    return REPORT.format(
        quick=" (quick run)" if r["quick"] else "", machine=machine_line(m, "uvicorn", "duckdb"),
        git_and_load=git_and_load(m, r["load"]), targets="\n".join(target_lines(r["targets"])), o=o, w=w, sl=sl,
        so=so, rss=rss, g=sl["groups"], srv=sl["server"], srss=so["rss_mib"], close_every=CLOSE_EVERY,
        overload_rows=overload_rows, due=lat(o["accepted"]["latency_from_due_ms"]), kill_rows=kill_rows,
        series=", ".join(f"{t:.0f} s {mib:.0f}" for t, mib in series[::max(1, len(series) // 12)]),
        throughput=listed(o["throughput_1s"]), rejected_p99=", ".join(fmt(x, 1) for x in o["rejected_p99_ms_1s"]),
        worker_rates=listed(w["throughput_0_5s"]), restart_rates=listed(k["throughput_0_5s_from_restart"]),
        slow_prefix=SLOW_PREFIX[:20].decode(), slow_rows=slow_rows, groups=groups,
        soak_rps=fmt(so["rps"]), soak_latency=lat(so["latency_ms"]),
        growth=f"{so['rss_mib']['growth_after_warm_up']:+}", soak_rows=soak_rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soak-seconds", type=float, help="soak length (default 600; quick: 30)")
    parser.add_argument("--seed", type=int, default=20261201, help="payload seed")
    results_options(parser, "faults", "short scenarios: a smoke run of about a minute and a half")
    return run_and_write(parser.parse_args(argv), "faults", run, markdown)


if __name__ == "__main__":
    sys.exit(main())
