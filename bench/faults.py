"""Faults benchmark: duckapi on the bundled project under overload (an open loop at 4x capacity,
DUCKAPI_MAX_QUEUE=16), kill -9 of a worker and of the whole server, 1,000 slow connections, and a
soak; each scenario on a server of its own. docs/benchmarks.md (Faults) says how each is measured.

    python -m bench.faults            # full run, ~15 minutes: bench/faults_results.json, bench/FAULTS_RESULTS.md
    python -m bench.faults --quick    # smoke run, ~2 minutes; writes under bench/.work/ unless --out-* given
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import itertools
import os
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
    MIB, PATH, ROOT, WORK, Result, RssSampler, Sent, Server, Usage, analyse, bench_main, build, clean_env, done,
    drive, gc_frozen, group_pool, machine_info, ms, post, quiet_first, report, send, serve_cmd, small_rows, start_all,
    stop_all, target, tree_of, tree_sum, verify,
)

HERE = WORK / "faults"
TITLE = "Faults benchmark"
ABOUT = ("Bundled project, distinct seeded 9-row POSTs to /analyse_data/, every 200 checked against tests/oracle.py; "
         "a server per scenario, sharing the cores with the client. docs/benchmarks.md (Faults) has the details.")
KEEP_ALIVE_REUSE_S = 4.0  # reuse a pooled connection only if idle for less (uvicorn closes them after 5 s)
CLOSE_EVERY = 4  # every CLOSE_EVERY-th open-loop request says `Connection: close`, as urllib does
REQUEST = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
SLOW_PREFIX = REQUEST + b"X-Slow: "  # what a slow connection sends, a byte at a time: headers without end
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
    """Distinct seeded 9-row payloads (harness.small_rows), n at a time; no answers (a soak sends 100,000s)."""
    pool, seen, rng = group_pool(), dict[bytes, None](), np.random.default_rng(seed)

    def make(n: int) -> list[bytes]:
        start = len(seen)
        while len(seen) < start + n:
            seen.setdefault(orjson.dumps(small_rows(rng, pool)))
        return list(itertools.islice(seen, start, None))

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


def answers_after(port: int, payloads: Payloads) -> Result:
    """Five requests after a scenario: the server still answers, correctly."""
    bodies = payloads(5)
    after = [post(port, body, timeout=10) for body in bodies]
    return {**statuses(after), "wrong": check(after, bodies)["wrong"]}


def windows(sent: Iterable[Sent | None], t0: float, width: float, end: float) -> list[list[Sent]]:
    """The responses completed in consecutive `width`-second windows from t0 to end (whole windows only)."""
    out: list[list[Sent]] = [[] for _ in range(max(1, int((end - t0) / width + 1e-6)))]
    for s in done(sent):
        if t0 <= s.at_s < t0 + len(out) * width:
            out[int((s.at_s - t0) / width)].append(s)
    return out


def rates(sent: Iterable[Sent | None], t0: float, width: float, end: float) -> list[float]:
    """200s per second in each window."""
    return [round(sum(s.status == 200 for s in w) / width, 1) for w in windows(sent, t0, width, end)]


def open_loop(port: int, payloads: list[bytes], rate: float, max_connections: int) -> tuple[list[Sent], float]:
    """Send payloads[i] at start + i / rate whatever the answers, from a uvloop event loop on a pool of keep-alive
    connections (the last released is reused first): the responses by index (each sent at at_s - latency_s), start."""
    start, sent = time.perf_counter() + 0.2, [Sent(-1, 0.0, b"")] * len(payloads)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    slots = asyncio.Semaphore(max_connections)

    async def one(i: int) -> None:
        async with slots:
            reader, writer, released = idle.pop() if idle else (None, None, 0.0)
            t0 = time.perf_counter()
            if writer is not None and (reader.at_eof() or t0 - released > KEEP_ALIVE_REUSE_S):
                writer.close()
                writer = None
            status, answer, closing = -1, b"", True
            try:
                async with asyncio.timeout(60):
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(REQUEST + b"Connection: close\r\n" * (i % CLOSE_EVERY == 0)
                                 + b"Content-Length: %d\r\n\r\n" % len(payloads[i]) + payloads[i])
                    head = (await reader.readuntil(b"\r\n\r\n")).lower().split(b"\r\n")  # duckapi: no chunked bodies
                    headers = dict(line.split(b": ", 1) for line in head[1:] if b": " in line)
                    answer = await reader.readexactly(int(headers[b"content-length"]))
                    status, closing = int(head[0].split(b" ", 2)[1]), headers.get(b"connection") == b"close"
            except (OSError, EOFError, ValueError, KeyError, asyncio.LimitOverrunError) as exc:  # TimeoutError is one
                answer = repr(exc).encode()
            t1 = time.perf_counter()
            sent[i] = Sent(status, t1 - t0, answer, t1)
            if not closing:
                idle.append((reader, writer, t1))
            elif writer is not None:
                writer.close()

    async def main() -> None:
        async with asyncio.TaskGroup() as group:
            for i in range(len(payloads)):
                while (wait := start + i / rate - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                group.create_task(one(i))
        for _, writer, _ in idle:
            writer.close()

    uvloop.run(main())
    return sent, start


def probe(port: str, seconds: str, pause: str, body: str) -> None:
    """The independent client, in a process of its own (overload starts it): one POST at a time on a keep-alive
    connection, idle between requests, so its figures carry none of the load generator's own lag."""
    conn, out = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30), []
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:  # send() reconnects after a close
        sent = send(conn, PATH, os.fsencode(body))
        out.append((sent.status, sent.latency_s))
        time.sleep(float(pause))
    sys.stdout.buffer.write(orjson.dumps(out))


def overload(server: Server, plan: Plan, payloads: Payloads) -> Result:
    """Capacity in a closed loop, then an open loop at overload_factor times it: are the excess requests
    rejected fast (503, for an independent client too), the rest answered right, and is RSS bounded?"""
    cap_work = payloads(int(plan.capacity_s * 2000))
    gc_frozen()
    capacity = closed_loop(server, cap_work, plan.capacity_concurrency, plan.capacity_s)
    capacity.update(check(capacity.pop("sent"), cap_work))
    rate = plan.overload_factor * capacity["requests"] / capacity["wall_s"]
    work = payloads(int(rate * plan.overload_s))
    gc_frozen()
    time.sleep(1)
    sampler, usage, log_offset = RssSampler(server.pid, every_s=1.0), Usage(server.pid), server.log.stat().st_size
    sampler.start()
    prober = subprocess.Popen([sys.executable, "-c", "import sys; from bench.faults import probe; probe(*sys.argv[1:])",
                               str(server.port), str(plan.overload_s), str(plan.probe_every_s),
                               payloads(1)[0].decode()], cwd=ROOT, stdout=subprocess.PIPE)
    sent, t0 = open_loop(server.port, work, rate, plan.max_connections)
    probed = [Sent(status, latency, b"") for status, latency in orjson.loads(prober.communicate(timeout=120)[0])]
    peak_rss, points, cores = sampler.stop() / MIB, sampler.points, usage.cores()
    ok, busy = [s for s in sent if s.status == 200], [s for s in sent if s.status == 503]
    end, sends = max(s.at_s for s in sent), [s.at_s - s.latency_s for s in sent]
    logged = [orjson.loads(line) for line in server.log.read_bytes()[log_offset:].splitlines()
              if line.startswith(b"{") and b'"duration_ms"' in line]  # the request log (DUCKAPI_ACCESS_LOG=json)
    server_side = {c: [e["duration_ms"] / 1000 for e in logged if e.get("method") == "POST" and e["status"] == c]
                   for c in (200, 503)}
    # RSS bounded: the last third of the run against the first third after its first 10 s.
    tail = [mib for t, mib in points if t >= plan.overload_s * 2 / 3]
    head = [mib for t, mib in points if min(10.0, plan.overload_s / 4) <= t <= plan.overload_s / 3] or tail
    return {
        "capacity": capacity, "target_rps": round(rate, 1), "statuses": statuses(sent),
        "offered": {"requests": len(work), "rps": round(len(work) / max(max(sends) - t0, 1e-9), 1),
                    "send_lag_ms": ms(x - t0 - i / rate for i, x in enumerate(sends))},
        "accepted": {"requests": len(ok), "rps": round(len(ok) / max(end - t0, 1e-9), 1),
                     "latency_ms": ms(s.latency_s for s in ok)},
        "rejected": {"requests": len(busy), "latency_ms": ms(s.latency_s for s in busy)},
        "probe": {"statuses": statuses(probed), **{f"{c}_latency_ms": ms(s.latency_s for s in probed if s.status == c)
                                                   for c in (200, 503)}},
        "server_side_ms": {str(c): {"requests": len(d), **ms(d)} for c, d in server_side.items()},
        "other": {"requests": len(sent) - len(ok) - len(busy),
                  "kinds": error_kinds(s for s in sent if s.status != 503)},
        "rss_mib": {"idle_before": points[0][1], "peak": round(peak_rss, 1), "first_third_max": max(head),
                    "last_third_max": max(tail), "series_1s": points},
        "throughput_1s": rates(sent, t0, 1.0, end),
        "rejected_p99_ms_1s": [ms(s.latency_s for s in w)["p99"] for w in windows(busy, t0, 1.0, end)],
        "answers_after": answers_after(server.port, payloads), **cores, **check(sent, work),
    }


def workers(server: Server) -> list[psutil.Process]:
    """The uvicorn workers of a --workers N server (spawned children of the supervisor)."""
    out = []
    for p in psutil.Process(server.pid).children():
        with suppress(psutil.Error):
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline()):
                out.append(p)
    return out


def recovered_at(rps: list[float], width: float, level: float, from_s: float, after_dip: bool = False) -> float | None:
    """Seconds (window ends) when two consecutive windows from from_s on first average 90% of `level`;
    with `after_dip`, the first such pair after the lowest one (from_s itself if none is below)."""
    first = max(int(from_s / width), 0)
    pairs = [(a + b) / 2 for a, b in zip(rps[first:], rps[first + 1:])]
    if after_dip and pairs and min(pairs) >= 0.9 * level:
        return round(from_s, 2)
    start = int(np.argmin(pairs)) if after_dip and pairs else 0
    return next((round((first + i + 2) * width, 2) for i in range(start, len(pairs)) if pairs[i] >= 0.9 * level), None)


def kill(server: Server, plan: Plan, payloads: Payloads) -> Result:
    """Under a closed loop, one of two workers killed -9 and polled for until its replacement answers a 200 itself;
    then the whole server, restarted on the same port: what the requests in flight get, when throughput is back."""
    port, c, width, at, polls = server.port, plan.kill_concurrency, 0.5, {}, []
    if len(workers(server)) < 2:  # started long before, and warmed up
        raise RuntimeError(f"{server.name}: not 2 workers")
    work, poll_bodies = payloads(int(plan.kill_load_s * 1500)), payloads(3000)
    gc_frozen()

    def kill_worker() -> None:
        """Kill one, then POST on new connections until the replacement holds one's server side (psutil)."""
        victim, *others = workers(server)
        at.update(victim=victim.pid, killed=time.perf_counter())
        victim.send_signal(signal.SIGKILL)
        old = {victim.pid, *(p.pid for p in others)}
        while "answered_s" not in at and time.perf_counter() < at["killed"] + 60:
            if new := [p.pid for p in workers(server) if p.pid not in old]:
                at.setdefault("spawned_s", round(time.perf_counter() - at["killed"], 2))
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                sent = send(conn, PATH, poll_bodies[len(polls)])
                polls.append(sent)
                local = conn.sock.getsockname()[1] if conn.sock else None
                with suppress(psutil.Error):
                    if sent.status == 200 and any(x.raddr and (x.laddr.port, x.raddr.port) == (port, local)
                                                  for x in psutil.Process(new[0]).net_connections("tcp")):
                        at["answered_s"] = round(sent.at_s - at["killed"], 2)
                conn.close()
            time.sleep(0.02)

    t0, killer = time.perf_counter(), threading.Timer(plan.kill_at_s, kill_worker)
    killer.start()
    sent, wall = drive(port, work, c, plan.kill_load_s)
    killer.join()
    per_05s, kill_s = rates(sent, t0, width, t0 + wall), at["killed"] - t0
    pre_kill = [r for i, r in enumerate(per_05s) if 1.0 <= i * width and (i + 1) * width <= kill_s]
    level = float(np.mean(pre_kill)) if pre_kill else float("nan")
    back = recovered_at(per_05s, width, level, kill_s, after_dip=True)
    worker = {"victim": at["victim"], "kill_at_s": round(kill_s, 2), "requests": len(done(sent)),
              "statuses": statuses(sent), "errors": error_kinds(sent), "replacement_spawned_s": at.get("spawned_s"),
              "replacement_answered_s": at.get("answered_s"), "polls": len(polls), "pre_kill_rps": round(level, 1),
              "lowest_0_5s_after_kill_rps": min((r for i, r in enumerate(per_05s) if i * width >= kill_s),
                                                default=None),
              "throughput_back_s": None if back is None else round(back - kill_s, 2), "throughput_0_5s": per_05s,
              **check(sent + polls, work + poll_bodies[:len(polls)])}
    work, stop, poll_bodies = payloads(4 * 1500), threading.Event(), payloads(9000)  # polls: 20 ms apart, 180 s
    loader = threading.Thread(target=lambda: at.update(loaded=drive(port, work, c, 30, stop=stop)[0]))
    loader.start()
    time.sleep(2)
    procs = tree_of(server.pid)
    stop.set()  # no new requests: the ones in flight meet the kill
    for p in procs:  # supervisor first, so that it replaces nobody
        with suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    killed_at = time.perf_counter()
    loader.join()
    psutil.wait_procs(procs, timeout=10)
    server.proc.wait(10)  # type: ignore[union-attr]
    in_flight = [s for s in done(at["loaded"]) if s.at_s >= killed_at]
    bodies, polls = payloads(int(plan.restart_load_s * 1500)), []
    again, t_restart = replace(server, name=server.name + "-restart", proc=None), time.perf_counter()
    again.start()
    try:
        while not polls or polls[-1].status != 200:
            if again.proc.poll() is not None or time.perf_counter() - t_restart > 180:  # type: ignore[union-attr]
                raise RuntimeError(f"{again.name} exited or gave no 200 in 180 s; see {again.log}")
            time.sleep(0.02)
            polls.append(post(port, poll_bodies[len(polls)], timeout=10))
        restart = closed_loop(again, bodies, c, plan.restart_load_s)
        per_05s = rates(restart["sent"], t_restart, width, time.perf_counter())
    finally:
        again.stop()
    first_200 = polls[-1].at_s - t_restart
    return {"worker": worker, "server": {
        "in_flight_at_kill": len(in_flight), "in_flight_errors": error_kinds(in_flight),
        "first_200_s": round(first_200, 2), "polls_until_first_200": len(polls),
        "full_throughput_s": recovered_at(per_05s, width, level, first_200),
        "rps_after_first_200": restart["rps"], "restart_load_statuses": restart["statuses"],
        "throughput_0_5s_from_restart": per_05s,
        **check(at["loaded"] + polls + restart["sent"], work + poll_bodies[:len(polls)] + bodies)}}


def server_connections(server: Server) -> dict[str, int]:
    """Open file descriptors and established connections on the port of the server tree."""
    procs, established = tree_of(server.pid), psutil.CONN_ESTABLISHED
    return {"fds": int(tree_sum(procs, lambda p: p.num_fds())), "established": int(tree_sum(procs, lambda p: sum(
        c.laddr.port == server.port and c.status == established for c in p.net_connections("tcp"))))}


def slow_connections(server: Server, plan: Plan, payloads: Payloads) -> Result:
    """A normal client (c=1) without, then with slow (a byte a second), silent and idle (after a GET) connections held
    open by an event loop: is it still answered, how much slower, and which of them does the server close, how soon?"""
    base_work, slow_work = payloads(int(plan.slow_baseline_s * 800)), payloads(int(plan.slow_s * 800))
    gc_frozen()
    conns, kinds = {"before": server_connections(server)}, ("slow", "idle", "keepalive")
    without = closed_loop(server, base_work, 1, plan.slow_baseline_s)
    without.update(check(without.pop("sent"), base_work))
    rss_before, sampler = server.rss() / MIB, RssSampler(server.pid)
    records = [{"kind": kind, "sent": 0} for kind in kinds for _ in range(getattr(plan, f"{kind}_connections"))]

    async def drip(rec: Result, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(random.random() * plan.slow_byte_every_s)
        while "closed" not in rec and not writer.is_closing():
            writer.write(SLOW_PREFIX[rec["sent"]:rec["sent"] + 1] or b"a")
            rec["sent"] += 1
            await asyncio.sleep(plan.slow_byte_every_s)

    async def hold(rec: Result, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if rec["kind"] == "keepalive":
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        with suppress(OSError):  # until the server closes it
            while data := await reader.read(4096):
                rec.setdefault("answered", data[9:12].decode(errors="replace"))  # the status of its first answer
                rec.setdefault("idle_from", time.perf_counter())
        rec["closed"] = time.perf_counter()

    async def with_them() -> tuple[Result, float]:
        """Open the connections (50 at a time), hold them while the normal client runs, close them."""
        held: list[tuple[Result, asyncio.StreamReader, asyncio.StreamWriter]] = []
        for lo in range(0, len(records), 50):
            batch = records[lo:lo + 50]
            opened = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", server.port) for _ in batch),
                                          return_exceptions=True)
            for rec, conn in zip(batch, opened):
                if not isinstance(conn, BaseException):
                    rec["opened"] = time.perf_counter()
                    held.append((rec, *conn))
        tasks = [asyncio.create_task(hold(*h)) for h in held]
        tasks += [asyncio.create_task(drip(rec, writer)) for rec, _, writer in held if rec["kind"] == "slow"]
        await asyncio.sleep(0.5)
        conns["held"] = server_connections(server)
        result = await asyncio.to_thread(closed_loop, server, slow_work, 1, plan.slow_s)
        at, conns["at_end"] = time.perf_counter(), server_connections(server)
        for _, _, writer in held:  # its reader sees EOF, its drip stops
            writer.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        return result, at

    sampler.start()
    with_slow, at = uvloop.run(with_them())
    time.sleep(1)
    conns["after_closing"], after = server_connections(server), answers_after(server.port, payloads)
    with_slow.update(check(with_slow.pop("sent"), slow_work))
    groups: Result = {}
    for kind in kinds:
        up = [r for r in records if r["kind"] == kind and "opened" in r]
        closed = [r for r in up if r.get("closed", at + 1) <= at]
        after_s = [r["closed"] - r.get("idle_from", r["opened"]) for r in closed]
        groups[kind] = {"opened": len(up), "closed_by_server": len(closed),
                        "held_open_s": round(at - min((r["opened"] for r in up), default=at), 1),
                        "closed_after_min_s": round(min(after_s), 2) if after_s else None,
                        "closed_after_max_s": round(max(after_s), 2) if after_s else None,
                        "answers": dict(Counter(r["answered"] for r in up if "answered" in r))}
    return {"server_nofile_limit": list(psutil.Process(server.pid).rlimit(psutil.RLIMIT_NOFILE)),
            "without": without, "with": with_slow, "groups": groups, "answers_after": after,
            "server": {**conns, "rss_mib_before": round(rss_before, 1),
                       "rss_mib_peak_with": round(sampler.stop() / MIB, 1)}}


def soak(server: Server, plan: Plan, payloads: Payloads, capacity: float) -> Result:
    """A closed loop at soak_concurrency for soak_s: no error, no wrong answer, and RSS flat after warm-up?"""
    work = payloads(int(max(capacity, 300) * plan.soak_s * 1.6) + 1000)
    gc_frozen()
    time.sleep(1)
    sampler = RssSampler(server.pid, interval=0.1, every_s=plan.soak_rss_every_s)
    sampler.start()  # its points are (seconds since sampler.t0, MiB)
    result = closed_loop(server, work, plan.soak_concurrency, plan.soak_s)
    peak_rss, points, sent, wall = sampler.stop() / MIB, sampler.points, done(result["sent"]), result["wall_s"]
    warm_up = min(120.0, plan.soak_s / 3)  # RSS settles about two minutes into steady load (docs/benchmarks.md)
    mark = max(10.0, min(60.0, plan.soak_s / 6))  # table rows every minute (quick: every 10 s)
    table = []
    for k, part in enumerate(windows(sent, sampler.t0, mark, sampler.t0 + wall)):
        rss = [mib for t, mib in points if t <= (k + 1) * mark + 0.5]
        table.append({"until_s": (k + 1) * mark, "rss_mib": rss[-1] if rss else None, "requests": len(part),
                      "rps": round(len(part) / mark, 1), "latency_ms": ms(s.latency_s for s in part),
                      "errors": sum(s.status != 200 for s in part)})
    at_warm = [mib for t, mib in points if t <= warm_up + 0.5][-1]
    after_warm = [(t, mib) for t, mib in points if t >= warm_up]
    slope = round(float(np.polyfit(*zip(*after_warm), 1)[0]) * 60, 2) if len(after_warm) >= 3 else None
    result.update(check(result.pop("sent"), work))
    return {**result, "ran_out_of_payloads": len(sent) >= len(work), "errors": error_kinds(sent), "warm_up_s": warm_up,
            "rss_mib": {"start": points[0][1], "after_warm_up": at_warm, "end": points[-1][1],
                        "peak": round(peak_rss, 1), "growth_after_warm_up": round(points[-1][1] - at_warm, 1),
                        "slope_mib_per_min": slope}, "table": table, "rss_series": points}


def run(args: argparse.Namespace) -> Result:
    """Build the bundled project, start a server per scenario, then run the scenarios one after another."""
    plan = Plan(**{**FULL, **(QUICK if args.quick else {})})
    plan.soak_s = args.soak_seconds or plan.soak_s
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # servers started later inherit it
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    quiet, t0, db = quiet_first(args), time.monotonic(), HERE / "dev.duckdb"
    print("building the bundled project into", db, flush=True)
    build(db, clean_env(DUCKAPI_TARGET_PATH=str(HERE / "target-build")), log_name="faults-build.log")

    def server(name: str, *args: str, **env: str) -> Server:
        return Server(f"faults-{name}", serve_cmd(db, *args),
                      clean_env(DUCKAPI_TARGET_PATH=str(HERE / f"target-{name}"), DUCKAPI_DRAIN_SECONDS="0", **env))

    servers = {"overload": server("overload", DUCKAPI_MAX_QUEUE=str(plan.max_queue), DUCKAPI_ACCESS_LOG="json"),
               "kill": server("kill", "--workers", "2"), "slow": server("slow"), "soak": server("soak")}
    results: Result = {"quick": args.quick, "seed": args.seed, "plan": vars(plan), "load": quiet}
    scenarios: dict[str, Callable[[Server, Plan, Payloads], Result]] = {
        "overload": overload, "kill": kill, "slow": slow_connections,
        "soak": lambda *a: soak(*a, results["overload"]["capacity"]["rps"])}
    try:
        start_all(servers.values())
        payloads = payload_maker(args.seed)
        for s in servers.values():
            s.wait_ready()
        results["startup_s"] = round(time.monotonic() - t0, 1)
        for name, scenario in scenarios.items():
            print(f"{name} ({time.monotonic() - t0:.0f}s)", flush=True)
            drive(servers[name].port, payloads(400), 8, 3)  # warm-up (both workers of the kill server)
            results[name] = scenario(servers[name], plan, payloads)
            servers[name].stop()
            gc.unfreeze()
    finally:
        stop_all(servers.values())
        gc.unfreeze()
    results["targets"] = targets(results)
    results["machine"] = machine_info(servers)
    results["total_s"] = round(time.monotonic() - t0, 1)
    return results


def targets(r: Result) -> list[Result]:
    """The pass/fail rules, each with what was measured (the tables below have the rest)."""
    o, w, k, slow, so = r["overload"], r["kill"]["worker"], r["kill"]["server"], r["slow"]["with"], r["soak"]
    offered, p503, orss, srss = o["offered"], o["probe"]["503_latency_ms"], o["rss_mib"], so["rss_mib"]
    return [
        target("overload: the client offers the target rate (at least 95%)", offered["rps"] >= 0.95 * o["target_rps"],
               f"{offered['rps']} of {o['target_rps']} req/s, send lag p99 {offered['send_lag_ms']['p99']} ms"),
        target("overload: rejected (503) within 10 ms (p99), for a client that is not itself overloaded",
               bool(o["rejected"]["requests"]) and (p503["p99"] or 1e9) <= 10,
               f"independent client p99 {p503['p99']} ms, load generator {o['rejected']['latency_ms']['p99']} ms"),
        target("overload: no status but 200 and 503, no connection error", o["other"]["requests"] == 0,
               f"{o['other']['requests']} other {o['other']['kinds']}"),
        target("overload: server RSS bounded (last third of the run at most 10% over the first)",
               orss["last_third_max"] <= 1.1 * orss["first_third_max"],
               f"{orss['first_third_max']} -> {orss['last_third_max']} MiB"),
        target("overload: no wrong answer", o["wrong"] == 0 and o["answers_after"]["wrong"] == 0,
               f"{o['wrong']} wrong of {o['accepted']['requests']}"),
        target("worker kill -9: the replacement answers", w["replacement_answered_s"] is not None,
               f"after {w['replacement_answered_s']} s"),
        target("worker kill -9: throughput back to the pre-kill level (90%)", w["throughput_back_s"] is not None,
               f"after {w['throughput_back_s']} s"),
        target("worker kill -9: no wrong answer", w["wrong"] == 0, f"{w['wrong']} wrong; errors {w['errors']}"),
        target("server kill -9 and restart: a 200, then full throughput", k["full_throughput_s"] is not None,
               f"first 200 after {k['first_200_s']} s, full throughput after {k['full_throughput_s']} s"),
        target("server kill -9 and restart: no wrong answer", k["wrong"] == 0, f"{k['wrong']} wrong"),
        target("slow connections: every normal request answered 200, correctly",
               slow["statuses"] == {"200": slow["requests"]} and slow["wrong"] == r["slow"]["without"]["wrong"] == 0,
               f"{slow['statuses']}"),
        target("soak: no error, no wrong answer",
               so["statuses"] == {"200": so["requests"]} and so["wrong"] == 0 and not so["ran_out_of_payloads"],
               f"{so['statuses']}, {so['wrong']} wrong"),
        target("soak: RSS growth after warm-up under 5%", srss["growth_after_warm_up"] <= 0.05 * srss["after_warm_up"],
               f"{srss['after_warm_up']} -> {srss['end']} MiB"),
    ]


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, "faults", run, lambda r: report(TITLE, r, ABOUT), "short scenarios: a smoke run of "
                      "about two minutes", argv, 20261201, lambda p: p.add_argument(
                          "--soak-seconds", type=float, help="soak length (default 600; quick: 30)"))


if __name__ == "__main__":
    sys.exit(main())
