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
from dataclasses import replace
from types import SimpleNamespace
from typing import Callable, Iterable, Sequence

import numpy as np
import orjson
import psutil
import uvloop

from bench.harness import (
    MIB, PATH, WORK, Result, RssSampler, Sent, Server, Usage, analyse, bench_main, build, clean_env, done, drive,
    fmt, gc_frozen, git_and_load, group_pool, machine_info, machine_line, md_table, ms, percentile, post, quiet_first,
    send, serve_cmd, small_rows, start_all, stop_all, target, target_lines, tree_changes, tree_of, tree_sum, verify,
)

HERE = WORK / "faults"
KEEP_ALIVE_REUSE_S = 4.0  # reuse a pooled connection only if idle for less (uvicorn closes them after 5 s)
CLOSE_EVERY = 4  # every CLOSE_EVERY-th open-loop request says `Connection: close`, as urllib does
#: What a slow connection sends, one byte at a time: a request line, then headers without end.
SLOW_PREFIX = b"POST /analyse_data/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: "
#: The full run's plan (max_connections: the open-loop client's pool; probe_every_s: the independent client's pause).
FULL = dict(capacity_s=10.0, capacity_concurrency=8, overload_factor=4.0, overload_s=60.0, max_queue=16,
            max_connections=512, kill_load_s=20.0, kill_at_s=5.0, kill_concurrency=8, restart_load_s=10.0,
            slow_connections=1000, idle_connections=100, keepalive_connections=100, slow_byte_every_s=1.0,
            slow_baseline_s=10.0, slow_s=45.0, soak_s=600.0, soak_concurrency=2, soak_rss_every_s=5.0,
            probe_every_s=0.025)
QUICK = dict(capacity_s=3, overload_s=8, kill_load_s=8, kill_at_s=3, restart_load_s=4, slow_baseline_s=3, slow_s=8,
             soak_s=30)
Plan = SimpleNamespace  # FULL, or QUICK over it, as attributes
Payloads = Callable[[int], list[bytes]]


def payload_maker(seed: int) -> Payloads:
    """Distinct seeded 9-row payloads (harness.small_rows) from one generator, n at a time; answers only when
    checking, as a soak may prepare hundreds of thousands."""
    pool, seen, rng = group_pool(), set[bytes](), np.random.default_rng(seed)

    def make(n: int) -> list[bytes]:
        out: list[bytes] = []
        while len(out) < n:
            if (body := orjson.dumps(small_rows(rng, pool))) not in seen:
                seen.add(body)
                out.append(body)
        return out

    return make


def check(sent: Sequence[Sent | None], payloads: Sequence[bytes]) -> Result:
    """Wrong answers among the 200s (exact equality with tests/oracle.py)."""
    expected = (analyse(orjson.loads(b)) if s is not None and s.status == 200 else None for s, b in zip(sent, payloads))
    return {k: v for k, v in verify(sent, expected).items() if k != "exact_order_matches"}


def statuses(sent: Iterable[Sent | None]) -> dict[str, int]:
    return dict(sorted(Counter(str(s.status) if s.status != -1 else "connection error" for s in done(sent)).items()))


def error_kinds(sent: Iterable[Sent | None]) -> dict[str, int]:
    """Connection errors by exception (the client's repr up to its first parenthesis), other non-200s by status."""
    return dict(Counter(s.body.decode(errors="replace").split("(", 1)[0] if s.status == -1 else f"HTTP {s.status}"
                        for s in done(sent) if s.status != 200))


def closed_loop(server: Server, work: list[bytes], concurrency: int, seconds: float) -> Result:
    """harness.drive, summed up as every closed loop here reports it; `sent` (the responses) is for checking."""
    usage = Usage(server.pid)
    sent, wall = drive(server.port, work, concurrency, seconds)
    n = len(done(sent))
    return {"concurrency": concurrency, "requests": n, "wall_s": round(wall, 2), "rps": round(n / wall, 1),
            "statuses": statuses(sent), "latency_ms": ms(s.latency_s for s in done(sent)), **usage.cores(),
            "sent": sent}


def checked(result: Result, work: list[bytes]) -> Result:
    """A closed loop's result with its responses replaced by the count of wrong answers among them."""
    result.update(check(result.pop("sent"), work))
    return result


def answers_after(port: int, payloads: Payloads) -> Result:
    """Five requests after a scenario: the server still answers, correctly."""
    bodies = payloads(5)
    after = [post(port, body, timeout=10) for body in bodies]
    return {**statuses(after), "wrong": check(after, bodies)["wrong"]}


def buckets(sent: Iterable[Sent | None], t0: float, width: float, end: float) -> list[float]:
    """200s per second in consecutive `width`-second buckets from t0 to end (whole buckets only)."""
    counts = [0] * max(1, int((end - t0) / width + 1e-6))
    for s in done(sent):
        if s.status == 200 and t0 <= s.at_s < t0 + len(counts) * width:
            counts[int((s.at_s - t0) / width)] += 1
    return [round(c / width, 1) for c in counts]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body, and whether the server closes the connection after it (duckapi sends no chunked bodies)."""
    lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {name.strip().lower(): value.strip().lower() for name, _, value in (x.partition(b":") for x in lines[1:])}
    if b"content-length" not in headers:
        return status, await reader.read(), True
    return status, await reader.readexactly(int(headers[b"content-length"])), headers.get(b"connection") == b"close"


def open_loop(port: int, payloads: list[bytes], rate: float, max_connections: int) -> SimpleNamespace:
    """Send payloads[i] at started + i / rate whatever the answers, from a uvloop event loop on a pool of keep-alive
    connections (the last released is reused first): responses by index, when each was due and sent."""
    n, started = len(payloads), time.perf_counter() + 0.2
    run = SimpleNamespace(sent=[None] * n, due=[started + i / rate for i in range(n)], send=[0.0] * n,
                          started=started, opened=0, most_open=0, live=0)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    slots = asyncio.Semaphore(max_connections)

    async def one(i: int) -> None:
        async with slots:
            reader, writer, released = idle.pop() if idle else (None, None, 0.0)
            t0 = run.send[i] = time.perf_counter()
            if writer is not None and (reader.at_eof() or t0 - released > KEEP_ALIVE_REUSE_S):
                writer.close()
                run.live, writer = run.live - 1, None
            status, answer, closing = -1, b"", True
            try:
                async with asyncio.timeout(60):
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                        run.opened, run.live = run.opened + 1, run.live + 1
                        run.most_open = max(run.most_open, run.live)
                    writer.write(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                 b"application/json" + b"\r\nConnection: close" * (i % CLOSE_EVERY == 0)
                                 + b"\r\nContent-Length: %d\r\n\r\n" % len(payloads[i]) + payloads[i])
                    status, answer, closing = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError) as exc:
                answer = repr(exc).encode()
            t1 = time.perf_counter()
            run.sent[i] = Sent(status, t1 - t0, answer, t1)
            if not closing:
                idle.append((reader, writer, t1))
            elif writer is not None:
                writer.close()
                run.live -= 1

    async def main() -> None:
        tasks: set[asyncio.Task[None]] = set()
        for i in range(n):
            while (wait := run.due[i] - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            tasks.add(task := asyncio.create_task(one(i)))
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        for _, writer, _ in idle:
            writer.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    return run


#: An independent client in a process of its own, idle between requests: one POST at a time on a
#: keep-alive connection, so its figures carry none of the load generator's own lag.
PROBE = r"""
import http.client, json, os, sys, time
port, seconds, pause, body = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), os.fsencode(sys.argv[4])
out, end, con = [], time.monotonic() + seconds, http.client.HTTPConnection("127.0.0.1", port, timeout=30)
while time.monotonic() < end:  # con reconnects after a close (the server's, or ours after an error)
    started = time.perf_counter()
    try:
        con.request("POST", "/analyse_data/", body, {"Content-Type": "application/json"})
        response = con.getresponse()
        response.read()
        status = response.status
    except Exception as exc:
        status = type(exc).__name__
        con.close()
    out.append((status, (time.perf_counter() - started) * 1000))
    time.sleep(pause)
json.dump(out, sys.stdout)
"""


def overload(server: Server, plan: Plan, payloads: Payloads) -> Result:
    """Capacity in a closed loop, then an open loop at overload_factor times it: are the excess requests
    rejected fast (503, for an independent client too), the rest answered right, and is RSS bounded?"""
    port = server.port
    drive(port, payloads(100), 1, 10)  # warm-up
    cap_work = payloads(int(plan.capacity_s * 2000))
    gc_frozen()
    capacity = checked(closed_loop(server, cap_work, plan.capacity_concurrency, plan.capacity_s), cap_work)
    print(f"  capacity (c={plan.capacity_concurrency}): {capacity['rps']} req/s", flush=True)
    rate = plan.overload_factor * capacity["requests"] / capacity["wall_s"]
    work = payloads(int(rate * plan.overload_s))
    gc_frozen()
    time.sleep(1)
    idle_rss = server.rss() / MIB
    sampler, usage, log_offset = RssSampler(server.pid, every_s=1.0), Usage(server.pid), server.log.stat().st_size
    sampler.start()
    probe = subprocess.Popen([sys.executable, "-c", PROBE, str(port), str(plan.overload_s), str(plan.probe_every_s),
                              payloads(1)[0].decode()], stdout=subprocess.PIPE)
    run = open_loop(port, work, rate, plan.max_connections)
    probed = [(str(status), latency) for status, latency in orjson.loads(probe.communicate(timeout=120)[0])]
    peak_rss, points, cores = sampler.stop() / MIB, sampler.points, usage.cores()
    time.sleep(2)
    after, rss_after = answers_after(port, payloads), server.rss() / MIB
    print(f"  open loop at {rate:.0f} req/s for {plan.overload_s:.0f}s: {statuses(run.sent)}", flush=True)
    finished, t0 = done(run.sent), run.started
    ok, busy = [s for s in finished if s.status == 200], [s for s in finished if s.status == 503]
    end = max(s.at_s for s in finished)
    server_side: dict[str, list[float]] = {}  # the request log's duration_ms of the POSTs, by status
    with open(server.log, "rb") as log:
        log.seek(log_offset)
        for entry in (orjson.loads(line) for line in log if line.startswith(b"{") and b'"duration_ms"' in line):
            if entry.get("method") == "POST":
                server_side.setdefault(str(entry["status"]), []).append(entry["duration_ms"] / 1000)
    # RSS bounded: the last third of the run against the first third after its first 10 s.
    tail = [mib for t, mib in points if t >= plan.overload_s * 2 / 3]
    head = [mib for t, mib in points if min(10.0, plan.overload_s / 4) <= t <= plan.overload_s / 3] or tail
    return {
        "capacity": capacity, "max_queue": plan.max_queue, "factor": plan.overload_factor,
        "duration_s": plan.overload_s, "target_rps": round(rate, 1),
        "offered": {"requests": len(work), "rps": round(len(work) / max(max(run.send) - t0, 1e-9), 1),
                    "send_lag_ms": ms(s - d for s, d in zip(run.send, run.due)),
                    "connections_opened": run.opened, "most_connections_open": run.most_open,
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
        "server_side_ms": {status: {"requests": len(d), **ms(d)} for status, d in server_side.items()},
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


def workers(server: Server) -> list[psutil.Process]:
    """The uvicorn workers of a --workers N server (spawned children of the supervisor)."""
    out = []
    for p in psutil.Process(server.pid).children():
        with suppress(psutil.Error):
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline()):
                out.append(p)
    return out


def post_attributed(port: int, body: bytes, pids: list[int]) -> tuple[Sent, int | None]:
    """POST on a new connection and name the worker (of `pids`) holding its server side (psutil)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sent, local = send(conn, PATH, body), conn.sock.getsockname()[1] if conn.sock else None
    try:
        for pid in pids if sent.status != -1 else ():
            with suppress(psutil.Error):
                if any(c.raddr and c.raddr.port == local and c.laddr.port == port
                       for c in psutil.Process(pid).net_connections("tcp")):
                    return sent, pid
        return sent, None
    finally:
        conn.close()


def recovered_at(rates: list[float], width: float, level: float, from_s: float,
                 after_dip: bool = False) -> float | None:
    """Seconds (bucket ends) when two consecutive buckets from from_s on first average 90% of `level`;
    with `after_dip`, the first such window after the lowest one (from_s itself if none is below)."""
    start = first = max(int(np.floor(from_s / width)), 0)
    windows = [(rates[i] + rates[i + 1]) / 2 for i in range(first, len(rates) - 1)]
    if after_dip and windows and min(windows) >= 0.9 * level:
        return round(from_s, 2)
    if after_dip and windows:
        start = first + int(np.argmin(windows))
    return next((round((i + 2) * width, 2) for i in range(start, len(rates) - 1)
                 if (rates[i] + rates[i + 1]) / 2 >= 0.9 * level), None)


def since(end: float | None, start: float) -> float | None:
    return None if end is None else round(end - start, 2)


def kill_worker(server: Server, plan: Plan, payloads: Payloads, width: float) -> tuple[Result, float]:
    """One of two workers killed under load, then polled for (new connections, one POST each) until its
    replacement answers a 200 itself: when it does, when throughput is back. Also the pre-kill throughput."""
    deadline = time.monotonic() + 120
    while len(workers(server)) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: 2 workers never came up")
        time.sleep(0.1)
    drive(server.port, payloads(400), plan.kill_concurrency, 3)  # warm-up: both workers
    worker_pids = [p.pid for p in workers(server)]
    work, poll_bodies = payloads(int(plan.kill_load_s * 1500)), payloads(3000)
    gc_frozen()
    t0, polls, answered_by, at = time.perf_counter(), [], [], {}

    def kill_later() -> None:
        time.sleep(max(0.0, t0 + plan.kill_at_s - time.perf_counter()))
        victim, *others = workers(server)
        at.update(victim=victim.pid, killed=time.perf_counter())
        victim.send_signal(signal.SIGKILL)
        others = [p.pid for p in others]
        while time.perf_counter() < at["killed"] + 60:
            if new := [p.pid for p in workers(server) if p.pid != victim.pid and p.pid not in others]:
                at.setdefault("spawned", time.perf_counter())
                at.setdefault("replacement", new[0])
                sent, pid = post_attributed(server.port, poll_bodies[len(polls)], [*new, *others])
                polls.append(sent)
                answered_by.append(pid)
                if pid == new[0] and sent.status == 200:
                    at["answered"] = sent.at_s
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_later, daemon=True)
    killer.start()
    sent, wall = drive(server.port, work, plan.kill_concurrency, plan.kill_load_s)
    killer.join()
    rates, kill_s = buckets(sent, t0, width, t0 + wall), at["killed"] - t0
    answered = since(at.get("answered"), at["killed"])
    pre = [r for i, r in enumerate(rates) if 1.0 <= i * width and (i + 1) * width <= kill_s]
    level = float(np.mean(pre)) if pre else float("nan")
    after_kill = [r for i, r in enumerate(rates) if i * width >= kill_s]
    dip_at = (int(np.floor(kill_s / width)) + int(np.argmin(after_kill))) * width if after_kill else None
    post_ = [r for i, r in enumerate(rates) if answered is not None and i * width >= kill_s + answered + 1]
    result = {
        "workers": worker_pids, "victim": at["victim"], "replacement": at.get("replacement"),
        "concurrency": plan.kill_concurrency, "load_s": plan.kill_load_s, "kill_at_s": round(kill_s, 2),
        "requests": len(done(sent)), "statuses": statuses(sent), "errors": error_kinds(sent),
        "replacement_spawned_s": since(at.get("spawned"), at["killed"]), "replacement_answered_s": answered,
        "polls": len(polls), "poll_statuses": statuses(polls),
        "polls_answered_by": dict(Counter("replacement" if p == at.get("replacement") else
                                          "other worker" if p else "unknown" for p in answered_by)),
        "pre_kill_rps": round(level, 1), "lowest_0_5s_after_kill_rps": min(after_kill) if after_kill else None,
        "lowest_0_5s_at_s": since(dip_at, kill_s),
        "throughput_back_s": since(recovered_at(rates, width, level, kill_s, after_dip=True), kill_s),
        "after_replacement_rps": round(float(np.mean(post_)), 1) if post_ else None,
        "throughput_0_5s": rates, **check(sent + polls, work + poll_bodies[:len(polls)]),
    }
    print(f"  worker kill: {result['statuses']}, replacement answered after {answered} s, "
          f"throughput back after {result['throughput_back_s']} s", flush=True)
    return result, level


def kill_and_restart(server: Server, plan: Plan, payloads: Payloads) -> Result:
    """kill_worker, then the whole server killed under the same load and restarted on the same port:
    what the requests in flight get, when the first 200 comes, when throughput is back."""
    port, c, width = server.port, plan.kill_concurrency, 0.5
    worker_kill, level = kill_worker(server, plan, payloads, width)
    work, stop, box = payloads(4 * 1500), threading.Event(), {}
    loader = threading.Thread(target=lambda: box.update(sent=drive(port, work, c, 30, stop=stop)[0]), daemon=True)
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
    bodies = payloads(int(plan.restart_load_s * 1500) + 2000)
    again = replace(server, name=server.name + "-restart", proc=None)
    t_restart, polls = time.perf_counter(), []
    again.start()
    try:
        while not polls or polls[-1].status != 200:
            if again.proc.poll() is not None or time.perf_counter() - t_restart > 180:  # type: ignore[union-attr]
                raise RuntimeError(f"{again.name} exited or gave no 200 in 180 s; see {again.log}")
            time.sleep(0.02)
            # A payload is used up once the server has answered it.
            polls.append(post(port, bodies[sum(s.status != -1 for s in polls)], timeout=10))
        answered = [s for s in polls if s.status != -1]
        loaded = closed_loop(again, bodies[len(answered):], c, plan.restart_load_s)
        rates, workers_after = buckets(loaded["sent"], t_restart, width, time.perf_counter()), len(workers(again))
    finally:
        again.stop()
    first_200 = polls[-1].at_s - t_restart
    full = recovered_at(rates, width, level, first_200)
    print(f"  whole server killed ({len(in_flight)} requests in flight); restart: first 200 after {first_200:.2f} s, "
          f"full throughput after {full} s", flush=True)
    return {"worker": worker_kill, "server": {
        "kill_under_load_concurrency": c, "requests_before_kill": len(done(box["sent"])),
        "statuses_before_kill": statuses(box["sent"]),
        "in_flight_at_kill": len(in_flight), "in_flight_errors": error_kinds(in_flight),
        "first_200_s": round(first_200, 2), "polls_until_first_200": len(polls), "poll_statuses": statuses(polls),
        "full_throughput_s": full, "pre_kill_rps": round(level, 1), "rps_after_first_200": loaded["rps"],
        "throughput_0_5s_from_restart": rates, "restart_load_statuses": loaded["statuses"],
        "workers_after": workers_after, **check(box["sent"] + answered + loaded["sent"], work + bodies)}}


def hold_connections(port: int, every_s: float, records: list[Result], opened: threading.Event,
                     stop: threading.Event) -> None:
    """A connection per record, held in an event loop of its own until `stop`: kind `slow` sends SLOW_PREFIX
    (then "a"s) a byte every `every_s`, `idle` nothing, `keepalive` one GET /healthz, then nothing."""

    async def watch(reader: asyncio.StreamReader, rec: Result) -> None:
        try:
            while data := await reader.read(4096):
                rec["received"] += data[:200]
            rec["closed"], rec["how"] = time.perf_counter(), "EOF"
        except OSError as exc:
            rec["closed"], rec["how"] = time.perf_counter(), type(exc).__name__

    async def hold(rec: Result, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if rec["kind"] == "keepalive":
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                rec["answered"] = (await read_response(reader))[0]
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                rec["answered"] = repr(exc)
            rec["idle_from"] = time.perf_counter()
        watcher = asyncio.create_task(watch(reader, rec))
        if rec["kind"] == "slow":
            await asyncio.sleep(random.random() * every_s)
            while "closed" not in rec and not writer.is_closing():
                writer.write(SLOW_PREFIX[rec["sent"]:rec["sent"] + 1] or b"a")
                rec["sent"] += 1
                await asyncio.sleep(every_s)
        await watcher

    async def connect(rec: Result) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        with suppress(OSError):
            conn = await asyncio.open_connection("127.0.0.1", port)
            rec["opened"] = time.perf_counter()
            return conn
        return None

    async def main() -> None:
        conns = []
        for lo in range(0, len(records), 50):
            conns += await asyncio.gather(*(connect(r) for r in records[lo:lo + 50]))
        opened.set()
        tasks = [asyncio.create_task(hold(r, *c)) for r, c in zip(records, conns) if c is not None]
        await asyncio.to_thread(stop.wait)
        for task in tasks:
            task.cancel()
        for _, writer in filter(None, conns):
            writer.close()
        await asyncio.gather(*tasks, return_exceptions=True)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def server_connections(server: Server) -> dict[str, int]:
    """Open file descriptors and established connections on the port of the server tree."""
    procs = tree_of(server.pid)
    return {"fds": int(tree_sum(procs, lambda p: p.num_fds())),
            "established": int(tree_sum(procs, lambda p: sum(c.laddr.port == server.port and
                                                             c.status == psutil.CONN_ESTABLISHED
                                                             for c in p.net_connections("tcp"))))}


def slow_connections(server: Server, plan: Plan, payloads: Payloads) -> Result:
    """A normal client (c=1) without, then with slow, silent and idle connections held open: is it still
    answered, how much slower, and which of them does the server close, how soon?"""
    drive(server.port, payloads(100), 1, 10)  # warm-up
    base_work, slow_work = payloads(int(plan.slow_baseline_s * 800)), payloads(int(plan.slow_s * 800))
    gc_frozen()
    limit, conns = psutil.Process(server.pid).rlimit(psutil.RLIMIT_NOFILE), {"before": server_connections(server)}
    without = closed_loop(server, base_work, 1, plan.slow_baseline_s)
    rss_before = server.rss() / MIB
    records = [{"kind": kind, "sent": 0, "received": b""} for kind, n in (
        ("slow", plan.slow_connections), ("idle", plan.idle_connections), ("keepalive", plan.keepalive_connections))
        for _ in range(n)]
    opened, stop, t_open = threading.Event(), threading.Event(), time.perf_counter()
    holder = threading.Thread(target=hold_connections, args=(server.port, plan.slow_byte_every_s, records, opened,
                                                              stop), daemon=True)
    holder.start()
    if not opened.wait(120):
        raise RuntimeError("slow connections not opened in 120 s")
    opened_s = time.perf_counter() - t_open
    time.sleep(0.5)
    conns["held"], peak = server_connections(server), RssSampler(server.pid)
    peak.start()
    with_slow = closed_loop(server, slow_work, 1, plan.slow_s)
    at, conns["at_end"], peak_rss = time.perf_counter(), server_connections(server), peak.stop() / MIB
    groups: Result = {}
    for kind in dict.fromkeys(r["kind"] for r in records):
        recs = [r for r in records if r["kind"] == kind]
        up = [r for r in recs if "opened" in r]
        closed = [r for r in up if "closed" in r and r["closed"] <= at]
        after = sorted(r["closed"] - r.get("idle_from", r["opened"]) for r in closed)
        groups[kind] = {
            "connections": len(recs), "opened": len(up), "connect_errors": len(recs) - len(up),
            "closed_by_server": len(closed), "open_at_end": len(up) - len(closed),
            "held_open_s": round(at - min((r["opened"] for r in up), default=at), 1),
            "closed_after_s": {"min": round(after[0], 2), "p50": round(percentile(after, 0.5), 2),
                               "max": round(after[-1], 2)} if after else None,
            "close_kinds": dict(Counter(r["how"] for r in closed)),
            "answers_to_them": sorted({r["received"][:40].decode(errors="replace") for r in up if r["received"]})[:3],
            **({"bytes_sent_max": max((r["sent"] for r in up), default=0)} if kind == "slow" else {}),
            **({"first_request": dict(Counter(str(r.get("answered")) for r in up))} if kind == "keepalive" else {}),
        }
    stop.set()
    holder.join(30)
    time.sleep(1)
    conns["after_closing"], after = server_connections(server), answers_after(server.port, payloads)
    checked(without, base_work)
    checked(with_slow, slow_work)
    print(f"  c=1 p50/p99 without {without['latency_ms']['p50']}/{without['latency_ms']['p99']} ms, with "
          f"{sum(g['opened'] for g in groups.values())} slow/idle connections "
          f"{with_slow['latency_ms']['p50']}/{with_slow['latency_ms']['p99']} ms; "
          f"closed by the server: { {k: g['closed_by_server'] for k, g in groups.items()} }", flush=True)
    return {
        "server_nofile_limit": list(limit), "client_nofile_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "byte_every_s": plan.slow_byte_every_s, "opening_s": round(opened_s, 2), "without": without, "with": with_slow,
        "p50_ratio": round(with_slow["latency_ms"]["p50"] / without["latency_ms"]["p50"], 2),
        "p99_ratio": round(with_slow["latency_ms"]["p99"] / without["latency_ms"]["p99"], 2), "groups": groups,
        "server": {**conns, "rss_mib_before": round(rss_before, 1), "rss_mib_peak_with": round(peak_rss, 1)},
        "answers_after": after,
    }


def soak(server: Server, plan: Plan, payloads: Payloads, capacity: float) -> Result:
    """A closed loop at soak_concurrency for soak_s: no error, no wrong answer, and RSS flat after warm-up?"""
    drive(server.port, payloads(100), 1, 10)  # warm-up
    work = payloads(int(max(capacity, 300) * plan.soak_s * 1.6) + 1000)
    gc_frozen()
    time.sleep(1)
    sampler = RssSampler(server.pid, interval=0.1, every_s=plan.soak_rss_every_s)
    sampler.start()
    t0 = time.perf_counter()
    result = closed_loop(server, work, plan.soak_concurrency, plan.soak_s)
    peak_rss, points, sent, wall = sampler.stop() / MIB, sampler.points, done(result["sent"]), result["wall_s"]
    # RSS settles about two minutes into steady load (docs/benchmarks.md, Faults).
    warm_up = min(120.0, plan.soak_s / 3)
    mark = max(10.0, min(60.0, plan.soak_s / 6))  # table rows every minute (quick: every 10 s)
    table = []
    for k in range(max(1, int(wall / mark + 1e-6))):  # whole marks
        lo, hi = t0 + k * mark, t0 + (k + 1) * mark
        part = [s for s in sent if lo <= s.at_s < hi]
        rss_at = [mib for t, mib in points if t <= (k + 1) * mark + 0.5]
        table.append({"until_s": round(min((k + 1) * mark, wall), 1), "rss_mib": rss_at[-1] if rss_at else None,
                      "requests": len(part), "rps": round(len(part) / (min(hi, t0 + wall) - lo), 1),
                      "latency_ms": ms(s.latency_s for s in part), "errors": sum(s.status != 200 for s in part)})
    at_warm = [mib for t, mib in points if t <= warm_up + 0.5][-1]
    after_warm = [(t, mib) for t, mib in points if t >= warm_up]
    slope = round(float(np.polyfit(*zip(*after_warm), 1)[0]) * 60, 2) if len(after_warm) >= 3 else None
    print(f"  soak: {len(sent)} requests in {wall:.0f}s, RSS {at_warm} MiB after warm-up -> {points[-1][1]} MiB at "
          f"the end; {result['statuses']}", flush=True)
    return {
        **checked(result, work), "duration_s": plan.soak_s, "payloads_prepared": len(work),
        "ran_out_of_payloads": len(sent) >= len(work), "errors": error_kinds(sent),
        "rss_every_s": plan.soak_rss_every_s, "rss_series": points, "warm_up_s": warm_up, "mark_s": mark,
        "rss_mib": {"start": points[0][1], "after_warm_up": at_warm, "end": points[-1][1], "peak": round(peak_rss, 1),
                    "min_after_warm_up": min(mib for _, mib in after_warm),
                    "max_after_warm_up": max(mib for _, mib in after_warm),
                    "growth_after_warm_up": round(points[-1][1] - at_warm, 1), "slope_mib_per_min": slope},
        "table": table,
    }


def run(args: argparse.Namespace) -> Result:
    """Build the bundled project, start a server per scenario, then run the scenarios one after another."""
    plan = Plan(**{**FULL, **(QUICK if args.quick else {})})
    plan.soak_s = args.soak_seconds or plan.soak_s
    HERE.mkdir(parents=True, exist_ok=True)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # servers started later inherit it
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    quiet, t0 = quiet_first(args), time.monotonic()
    from duckapi.settings import Settings  # the checkout's code, as the servers will run it

    db = HERE / "dev.duckdb"
    print("building the bundled project into", db, flush=True)
    build(db, clean_env(DUCKAPI_TARGET_PATH=str(HERE / "target-build")), log_name="faults-build.log")

    def server(name: str, *args: str, **env: str) -> Server:
        return Server(f"faults-{name}", serve_cmd(db, *args),
                      clean_env(DUCKAPI_TARGET_PATH=str(HERE / f"target-{name}"), DUCKAPI_DRAIN_SECONDS="0", **env))

    servers = {"overload": server("overload", DUCKAPI_MAX_QUEUE=str(plan.max_queue), DUCKAPI_ACCESS_LOG="json"),
               "kill": server("kill", "--workers", "2"), "slow": server("slow"), "soak": server("soak")}
    results: Result = {"quick": args.quick, "seed": args.seed, "plan": vars(plan), "load": quiet,
                       "client_nofile_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
                       "max_queue_setting_in_checkout": "max_queue" in Settings.__dataclass_fields__}
    scenarios: list[tuple[str, str, Callable[[Server, Plan, Payloads], Result]]] = [
        ("overload", "1. overload", overload), ("kill", "2. kill -9", kill_and_restart),
        ("slow", "3. slow connections", slow_connections),
        ("soak", f"4. soak for {plan.soak_s:.0f}s", lambda *a: soak(*a, results["overload"]["capacity"]["rps"]))]
    try:
        start_all(servers.values())
        payloads = payload_maker(args.seed)
        for s in servers.values():
            s.wait_ready()
        results["startup_s"] = round(time.monotonic() - t0, 1)
        print(f"servers ready after {results['startup_s']}s", flush=True)
        for name, title, scenario in scenarios:
            print(title, flush=True)
            results[name] = scenario(servers[name], plan, payloads)
            servers[name].stop()
            gc.unfreeze()
    finally:
        stop_all(servers.values())
        gc.unfreeze()
    results["targets"] = targets(results)
    results["machine"] = {**machine_info({**servers, "kill-restart": servers["kill"]}),
                          "duckapi_tree_changes": tree_changes()}
    results["total_s"] = round(time.monotonic() - t0, 1)
    return results


def targets(r: Result) -> list[Result]:
    """The pass/fail rules, each with what was measured."""
    o, w, k, sl, so = r["overload"], r["kill"]["worker"], r["kill"]["server"], r["slow"], r["soak"]
    lag, probe, rss, orss = o["offered"]["send_lag_ms"], o["probe"]["503_latency_ms"], so["rss_mib"], o["rss_mib"]
    slw, sl0 = sl["with"], sl["without"]
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
               slw["statuses"] == {"200": slw["requests"]} and slw["wrong"] == 0 and sl0["wrong"] == 0,
               f"{slw['statuses']}, {slw['wrong']} wrong; p50 {slw['latency_ms']['p50']} vs "
               f"{sl0['latency_ms']['p50']} ms, p99 {slw['latency_ms']['p99']} vs {sl0['latency_ms']['p99']} ms"),
        target("soak: no error, no wrong answer",
               so["statuses"] == {"200": so["requests"]} and so["wrong"] == 0 and not so["ran_out_of_payloads"],
               f"{so['requests']} requests, {so['statuses']}, {so['wrong']} wrong"),
        target("soak: RSS growth after warm-up under 5%", rss["growth_after_warm_up"] <= 0.05 * rss["after_warm_up"],
               f"{rss['after_warm_up']} -> {rss['end']} MiB ({rss['growth_after_warm_up']:+} MiB; fit "
               f"{rss['slope_mib_per_min']} MiB/min)"),
    ]

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
    """The Markdown report of a run's results."""
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
    return bench_main(__doc__, "faults", run, markdown, "short scenarios: a smoke run of about a minute and a half",
                      argv, 20261201, lambda p: p.add_argument("--soak-seconds", type=float,
                                                               help="soak length (default 600; quick: 30)"))


if __name__ == "__main__":
    sys.exit(main())
