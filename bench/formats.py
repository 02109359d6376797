"""Format benchmark: every body format at 1M rows against its in-process DuckDB floor (the same
body bytes loaded by DuckDB or pyarrow, the served model's compiled statement run over them), with
peak RSS growth, the server's phases in-process, the original-way baseline and a 9-row c=8 A/B
against the core benchmark's commit. docs/benchmarks.md (Formats) says how each is measured.

    python -m bench.formats                 # full run, ~3-5 min: bench/formats_results.json, bench/FORMATS_RESULTS.md
    python -m bench.formats --quick         # smoke run, about a minute; writes under bench/.work/formats/
    python -m bench.formats --ten-million   # the full run plus one 10M-row NDJSON request (not for CI)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import duckdb
import numpy as np
import orjson
import psutil
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc
import pyarrow.parquet as pq

from bench.harness import (
    BENCH, GIB, MIB, PATH, ROOT, WARMUP, WORK, Result, RssSampler, Scenario, Sent, Server, Usage, analyse, big_values,
    build, clean_env, done, drive, git, group_pool, machine_info, make_workload, md_table, ms, normalise, post,
    serve_cmd, start_all, stop_all, target_lines, tree_of, tree_sum, verify, wait_for_quiet, warm, write_results,
)
from bench.load import FULL, QUICK, baseline_server, copy_db
from duckapi.api.outputs import encode as arrow_bytes
from duckapi.engines.duckdb import DuckDBEngine
from duckapi.pipeline import build_pipelines, input_relation as input_name
from duckapi.rows.formats import RowsReader
from duckapi.rows.parsing import BodyParser
from duckapi.settings import Settings

FWORK = WORK / "formats"
FORMATS = ["json", "ndjson", "csv", "parquet", "arrow"]
CONTENT_TYPES = {"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv",
                 "parquet": "application/vnd.apache.parquet", "arrow": "application/vnd.apache.arrow.stream"}
LABELS = {"json": "JSON array", "ndjson": "NDJSON", "csv": "CSV", "parquet": "Parquet", "arrow": "Arrow IPC stream"}
#: The issue's targets: HTTP p50 at most this many times the floor (none for NDJSON and CSV).
FLOOR_TARGETS = {"json": 1.5, "parquet": 1.3, "arrow": 1.3}
BASELINE_SPEEDUP_TARGET = 10.0
MEMORY_TARGET = 4.0  # peak server RSS growth per body byte
#: A 9-row c=8 throughput this close to the reference's counts as no regression (round-to-round noise).
SMALL_TOLERANCE = 0.90
TYPED = {"group_id": "VARCHAR", "event_value": "BIGINT"}
SCHEMA = pa.schema([("group_id", pa.string()), ("event_value", pa.int64())])
DEFAULT_REFERENCE = "9cafe9e"  # the commit whose bench/results.json is the core benchmark
STATEMENT_PROJECTION = "to_json(o)::varchar"
SELECTED_PART = "group_sums"  # 200 rows: the request path's memory without the analysis's
#: The ways to load each format that the floor takes the fastest of, and the one that loads
#: everything before the statement runs (load and analysis apart).
FLOOR_WAYS = {"json": ["duckdb lazy", "duckdb to arrow"], "ndjson": ["duckdb lazy", "duckdb to arrow"],
              "csv": ["duckdb lazy", "duckdb to arrow"], "parquet": ["pyarrow", "duckdb lazy"], "arrow": ["pyarrow"]}
EAGER_WAY = {"json": "duckdb to arrow", "ndjson": "duckdb to arrow", "csv": "duckdb to arrow", "parquet": "pyarrow",
             "arrow": "pyarrow"}


@dataclass(frozen=True)
class Plan:
    rows: int
    payloads: int
    baseline_requests: int
    small: Scenario
    small_rounds: int


#: bench.load's 9-row c=8 scenario, its first 2000 payloads (the same seed and index: a prefix of its payloads)
FULL_PLAN = Plan(1_000_000, 3, 2, replace(FULL[1], max_requests=2000), 3)
QUICK_PLAN = Plan(120_000, 2, 1, QUICK[1], 1)

# ---------------------------------------------------------------- payloads

#: Short group ids keep the JSON small (about 36 bytes a row: `{"group_id":"","event_value":0},`
#: is already 32), with awkward ones for every format's quoting: empty, blank, quote, comma,
#: tab, backslash, accents (NFC and NFD), CJK, emoji.
AWKWARD_SHORT = ["", " ", 'q"', "a,b", "t\tb", "b\\s", "é", "e\u0301", "ß", "日本", "🦆", "🐇", "🐰"]


def short_pool(size: int = 200) -> pa.Array:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pool = list(dict.fromkeys(AWKWARD_SHORT + letters + [c.upper() for c in letters] + [str(d) for d in range(10)]))
    pool += [a + b for a in letters for b in letters][:size - len(pool)]
    return pa.array(pool, pa.string())


def make_table(rng: np.random.Generator, pool: pa.Array, n: int) -> pa.Table:
    """As harness.big_rows: mostly values 0..499, 1% anywhere in int32, both int32 extremes."""
    gid = rng.integers(0, len(pool), n)
    return pa.table({"group_id": pool.take(pa.array(gid)), "event_value": pa.array(big_values(rng, n), pa.int64())},
                    schema=SCHEMA)


def ndjson_bytes(rows: list[dict[str, Any]]) -> bytes:
    return b"\n".join(map(orjson.dumps, rows)) + b"\n"


def encode(table: pa.Table, rows: list[dict[str, Any]], fmt_: str) -> bytes:
    if fmt_ in ("json", "ndjson"):
        return orjson.dumps(rows) if fmt_ == "json" else ndjson_bytes(rows)
    if fmt_ == "csv":
        sink = io.BytesIO()
        pacsv.write_csv(table, sink)  # quotes every string, so "" stays an empty string
        return sink.getvalue()
    return arrow_bytes(table, fmt_)  # the Parquet / Arrow IPC writers duckapi answers with


@dataclass
class Payloads:
    bodies: dict[str, list[bytes]]  # format -> one body per row set
    expected: list[Any]  # oracle answer per row set


def make_payloads(plan: Plan, seed: int) -> Payloads:
    pool, out = short_pool(), Payloads({f: [] for f in FORMATS}, [])
    for i in range(plan.payloads):
        table = make_table(np.random.default_rng([seed, 7000, i]), pool, plan.rows)
        rows = table.to_pylist()
        out.expected.append(analyse(rows))
        for f in FORMATS:
            out.bodies[f].append(encode(table, rows, f))
    assert all(len(set(out.bodies[f])) == plan.payloads for f in FORMATS), "bodies are not distinct"
    return out

# ---------------------------------------------------------------- the floor, in-process


def _source(cursor: duckdb.DuckDBPyConnection, body: bytes, fmt_: str, way: str) -> Any:
    """The body as something DuckDB can scan: a lazy DuckDB reader or an Arrow table."""
    if fmt_ in ("json", "ndjson"):
        rel = cursor.read_json(io.BytesIO(body), format="array" if fmt_ == "json" else "newline_delimited",
                               columns=TYPED)
    elif fmt_ == "csv":
        rel = cursor.read_csv(io.BytesIO(body), header=True, dtype=TYPED, allow_quoted_nulls=False)
    elif fmt_ == "parquet" and way == "duckdb lazy":
        rel = cursor.read_parquet(io.BytesIO(body))
    elif fmt_ == "parquet":
        return pq.read_table(io.BytesIO(body))
    else:
        with pyarrow.ipc.open_stream(body) as stream:
            return stream.read_all()
    return rel.to_arrow_table() if way == "duckdb to arrow" else rel


def floor_once(con: duckdb.DuckDBPyConnection, statement: str, body: bytes, fmt_: str, way: str,
               input_relation: str = input_name(0)) -> tuple[bytes, float, float]:
    """Load, register, run the statement, fetch: (answer, load seconds, total seconds)."""
    t0 = time.perf_counter()
    cursor = con.cursor()
    try:
        source = _source(cursor, body, fmt_, way)
        t1 = time.perf_counter()
        cursor.register(input_relation, source)
        answer = b"[" + b",".join(r[0].encode() for r in cursor.execute(statement).fetchall()) + b"]"
    finally:
        cursor.close()
    return answer, t1 - t0, time.perf_counter() - t0


def others_cores(usage: Usage, wall: float, extra_cpu: float = 0.0) -> float:
    """CPU the rest of the machine used since `usage` started (minus ours and `extra_cpu`), in cores over `wall`."""
    return round(max(0.0, usage.seconds()[3] - extra_cpu) / max(wall, 1e-9), 2)


def floor_entry(con: duckdb.DuckDBPyConnection, statement: str, body: bytes, f: str, way: str, expected: Any) -> Result:
    usage = Usage()
    answer, load_s, total_s = floor_once(con, statement, body, f, way)
    return {"ms": round(total_s * 1000, 1), "load_ms": round(load_s * 1000, 1),
            "others_cores": others_cores(usage, total_s), "correct": json.loads(answer) == expected}


class InProcess:
    """The floor and the server's own request path, both in this process, without HTTP."""

    def __init__(self, pipeline: Any, statement: str) -> None:
        self.statement, self.pipeline = statement, pipeline
        self.con = duckdb.connect(":memory:")  # DuckDB's defaults: every core
        self.threads = self.con.execute("select current_setting('threads')").fetchall()[0][0]
        self.engine = DuckDBEngine(Settings())  # what the server builds, with the server's defaults
        self.reader = RowsReader(pipeline.inputs[0].columns, BodyParser(self.engine.config))

    def floor(self, body: bytes, f: str, way: str, expected: Any) -> Result:
        return floor_entry(self.con, self.statement, body, f, way, expected)

    def phases(self, body: bytes, f: str, expected: Any) -> Result:
        usage = Usage()
        t0 = time.perf_counter()
        buf = bytearray()  # what duckapi.api.body.read_body does with the streamed chunks
        for i in range(0, len(body), 65536):
            buf += body[i: i + 65536]
        copy = bytes(buf)
        del buf
        t1 = time.perf_counter()
        table = self.reader.read(copy, f)
        t2 = time.perf_counter()
        answer = self.engine.execute_json(self.pipeline, (table,))
        t3 = time.perf_counter()
        return {"body_ms": round((t1 - t0) * 1000, 1), "decode_ms": round((t2 - t1) * 1000, 1),
                "execute_ms": round((t3 - t2) * 1000, 1), "total_ms": round((t3 - t0) * 1000, 1),
                "others_cores": others_cores(usage, t3 - t0), "answer_mb": round(len(answer) / 1e6, 2),
                "correct": json.loads(answer) == expected}

    def decode_detail(self, body: bytes, f: str) -> dict[str, float]:
        """What JSON decoding costs, step by step: DuckDB's typed read (the floor's load), the same read
        with JSON-typed columns (what load_rows reads before checking), and msgspec (the small-body path)."""
        fmt_, cursor, out = "array" if f == "json" else "newline_delimited", self.con.cursor(), {}
        steps = {
            "typed_read_ms": lambda: cursor.read_json(io.BytesIO(body), format=fmt_, columns=TYPED).to_arrow_table(),
            "json_columns_read_ms": lambda: cursor.read_json(
                io.BytesIO(body), format=fmt_, columns={c: "JSON" for c in TYPED}).to_arrow_table(),
            "msgspec_ms": lambda: (self.reader.json.decode if f == "json" else self.reader.json.decode_lines)(body),
        }
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            out[name] = round((time.perf_counter() - t0) * 1000, 1)
        cursor.close()
        return out

    def close(self) -> None:
        self.con.close()
        self.engine.close()


def summarise_floor(raw: Result, threads: Any) -> Result:
    """The floor of a format is its way with the lowest median (among ways that answered correctly)."""
    out: Result = {"duckdb_threads": threads}
    for f, by_way in raw.items():
        ways = {way: {"ms": [r["ms"] for r in runs], "median_ms": statistics.median(r["ms"] for r in runs),
                      "load_median_ms": statistics.median(r["load_ms"] for r in runs),
                      "others_cores_max": max(r["others_cores"] for r in runs),
                      "correct": sum(r["correct"] for r in runs), "runs": len(runs)} for way, runs in by_way.items()}
        valid = {w: v for w, v in ways.items() if v["correct"] == v["runs"]}
        best, eager = min(valid or ways, key=lambda w: ways[w]["median_ms"]), EAGER_WAY[f]
        out[f] = {"ms": ways[best]["median_ms"], "way": best, "eager_way": eager,
                  "eager_load_ms": ways[eager]["load_median_ms"],
                  "eager_analysis_ms": round(ways[eager]["median_ms"] - ways[eager]["load_median_ms"], 1),
                  "correct": all(w["correct"] == w["runs"] for w in ways.values()), "ways": ways}
    return out


def summarise_phases(raw: dict[str, list[Result]]) -> Result:
    out = {}
    for f, runs in raw.items():
        keys = [k for k in ("body_ms", "decode_ms", "execute_ms", "total_ms", "typed_read_ms", "json_columns_read_ms",
                            "msgspec_ms") if k in runs[0]]
        out[f] = {k: round(statistics.median(r[k] for r in runs), 1) for k in keys}
        out[f].update(answer_mb=runs[0]["answer_mb"], correct=sum(r["correct"] for r in runs), runs=len(runs),
                      others_cores_max=max(r["others_cores"] for r in runs),
                      each_total_ms=[r["total_ms"] for r in runs])
    return out


def memory_floor_child(statement_path: str, body_path: str, f: str, way: str) -> None:
    """Child side: warm up on nine rows, say ready, then on a line from stdin read the body and run the floor."""
    statement = Path(statement_path).read_text()
    con = duckdb.connect(":memory:")
    tiny = pa.table({"group_id": ["a", "b", "a"] * 3, "event_value": list(range(9))}, schema=SCHEMA)
    floor_once(con, statement, encode(tiny, tiny.to_pylist(), f), f, way)
    gc.collect()
    print("ready", flush=True)
    sys.stdin.readline()
    answer, _, total_s = floor_once(con, statement, Path(body_path).read_bytes(), f, way)
    print(f"done {total_s * 1000:.1f} {len(answer)}", flush=True)
    sys.stdin.readline()


def memory_floor(statement: str, payloads: Payloads, f: str, way: str) -> Result:
    """Peak RSS growth of a fresh process that does only the floor, reading the body from a file."""
    body_path, statement_path = FWORK / f"body-0.{f}", FWORK / "statement.sql"
    body_path.write_bytes(payloads.bodies[f][0])
    statement_path.write_text(statement)
    child = subprocess.Popen([sys.executable, "-m", "bench.formats", "--memory-floor-child", str(statement_path),
                              str(body_path), f, way], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdin is not None and child.stdout is not None

    def say(line: str) -> None:
        child.stdin.write(line)  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]

    try:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"memory floor child for {f} did not start")
        time.sleep(0.3)
        sampler = RssSampler(child.pid, interval=0.005)
        idle = sampler.rss()
        sampler.start()
        say("go\n")
        finished = child.stdout.readline().split()
        peak = max(sampler.stop(), idle)
        say("exit\n")
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
        body_path.unlink(missing_ok=True)
    n = len(payloads.bodies[f][0])
    return {"way": way, "idle_rss_mib": round(idle / MIB, 1), "peak_rss_mib": round(peak / MIB, 1),
            "growth_mib": round((peak - idle) / MIB, 1), "growth_per_body_byte": round((peak - idle) / n, 2),
            "ms": float(finished[1]) if len(finished) > 1 else None}

# ---------------------------------------------------------------- over HTTP


def measured_post(server: Server, body: bytes, content_type: str, idle: int, path: str = PATH) -> Result:
    """One request with the server's RSS sampled every 5 ms and everyone's CPU accounted."""
    sampler = RssSampler(server.pid, interval=0.005)
    before, usage = sampler.rss(), Usage(server.pid)
    sampler.start()
    sent = post(server.port, body, path, content_type=content_type)
    peak = max(sampler.stop(), before)
    server_cpu = usage.seconds()[1]
    return {
        "sent": sent, "status": sent.status, "ms": round(sent.latency_s * 1000, 1),
        "rss_before_mib": round(before / MIB, 1), "rss_peak_mib": round(peak / MIB, 1),
        "growth_mib": round((peak - idle) / MIB, 1), "growth_vs_just_before_mib": round((peak - before) / MIB, 1),
        "server_cpu_ms": round(server_cpu * 1000), "others_cores": others_cores(usage, sent.latency_s),
    }


def idle_rss(server: Server, warmup: list[bytes], pause: float = 0.5) -> int:
    """The server's RSS after 9-row warm-up requests and a pause."""
    warm(server, warmup)
    time.sleep(pause)
    return server.rss()


def measure_format(server: Server, f: str, payloads: Payloads, warmup: list[bytes], local: InProcess,
                   floor_raw: Result, phases_raw: Result) -> Result:
    """One format, interleaved so that all three see the same machine: per body, the HTTP request,
    the floor (every way) and the server's path in-process.

    The server is fresh, warmed with 9-row requests only; its first large body is the memory
    measurement (the cost of one request on a server that has not seen a large body before)."""
    idle = idle_rss(server, warmup)
    cold = measured_post(server, payloads.bodies[f][0], CONTENT_TYPES[f], idle)
    print(f"  {f:8} first HTTP {cold['status']} {cold['ms']:7.1f} ms, peak RSS {cold['rss_peak_mib']:.0f} MiB "
          f"(+{cold['growth_mib']:.0f} over idle)", flush=True)
    for way in FLOOR_WAYS[f]:  # warm-ups, not timed
        local.floor(payloads.bodies[f][0], f, way, payloads.expected[0])
    local.phases(payloads.bodies[f][0], f, payloads.expected[0])
    floor_raw[f], phases_raw[f], requests = {way: [] for way in FLOOR_WAYS[f]}, [], []
    for body, expected in zip(payloads.bodies[f], payloads.expected):
        gc.collect()
        time.sleep(0.2)
        requests.append(r := measured_post(server, body, CONTENT_TYPES[f], idle))
        for way in FLOOR_WAYS[f]:
            floor_raw[f][way].append(local.floor(body, f, way, expected))
        phases_raw[f].append(local.phases(body, f, expected))
        if f in ("json", "ndjson"):
            phases_raw[f][-1].update(local.decode_detail(body, f))
        print(f"  {f:8} HTTP {r['status']} {r['ms']:7.1f} ms (peak RSS {r['rss_peak_mib']:.0f} MiB); floor "
              + ", ".join(f"{way} {floor_raw[f][way][-1]['ms']:.1f}" for way in FLOOR_WAYS[f])
              + f" ms; in-process server path {phases_raw[f][-1]['total_ms']:.1f} ms", flush=True)
    return {"idle_rss_mib": round(idle / MIB, 1), "cold": cold, "requests": requests}


def measure_small(servers: list[tuple[str, Server]], scenario: Scenario, work: Any, rounds: int) -> list[Result]:
    """9-row requests at the core benchmark's concurrency, rounds alternating between servers."""
    out = []
    for rnd in range(rounds):
        for name, server in servers:
            usage = Usage(server.pid)
            sent, wall = drive(server.port, work.payloads, scenario.concurrency, scenario.time_limit_s)
            server_cpu, finished = usage.seconds()[1], done(sent)
            lat = ms((s.latency_s for s in finished), {"p50_ms": 0.5, "p95_ms": 0.95}, float("nan"))
            out.append({
                "server": name, "round": rnd, "requests": len(finished), "wall_s": round(wall, 3),
                "throughput_rps": round(len(finished) / wall, 1) if wall else 0.0, **lat,
                "server_cpu_ms_per_request": round(server_cpu * 1000 / max(len(finished), 1), 2),
                "others_cores": others_cores(usage, wall), "errors": sum(s.status != 200 for s in finished),
                "wrong": verify(sent, work.expected)["wrong"],
            })
            print(f"  9 rows c={scenario.concurrency} {name:10} round {rnd}: {out[-1]['throughput_rps']:7.1f} req/s, "
                  f"p50 {out[-1]['p50_ms']} ms", flush=True)
            time.sleep(0.5)
    return out


def measure_ten_million(server: Server, args: argparse.Namespace, statement: str, floor_way: str,
                        warmup: list[bytes]) -> Result:
    """One 10M-row NDJSON body, streamed to a file in 1M-row chunks (the oracle consumes them on the way)."""
    path, pool, chunk = FWORK / f"ndjson-{args.ten_million_rows}.ndjson", short_pool(), 1_000_000
    t0 = time.monotonic()
    print(f"10M: writing {path} and computing its oracle answer", flush=True)

    def generate(out: Any) -> Iterator[dict[str, Any]]:
        for k in range(0, args.ten_million_rows, chunk):
            part = make_table(np.random.default_rng([args.seed, 9000, k]), pool,
                              min(chunk, args.ten_million_rows - k)).to_pylist()
            out.write(ndjson_bytes(part))
            yield from part

    with open(path, "wb") as out:
        expected = analyse(generate(out))
    body = path.read_bytes()
    path.unlink()  # 10M rows are ~360 MB on disk: regenerated (same seed) on every run
    print(f"10M: {len(body) / 1e6:.0f} MB ready after {time.monotonic() - t0:.0f}s", flush=True)
    gc.collect()
    server.wait_ready()
    idle = idle_rss(server, warmup)
    result = measured_post(server, body, CONTENT_TYPES["ndjson"], idle)
    sent = result.pop("sent")
    print(f"10M: {sent.status} in {result['ms']:.0f} ms, peak RSS {result['rss_peak_mib']:.0f} MiB", flush=True)
    server.stop()
    with duckdb.connect(":memory:") as con:
        floor = floor_entry(con, statement, body, "ndjson", floor_way, expected)
    return {
        "rows": args.ten_million_rows, "body_mb": round(len(body) / 1e6, 1), "status": sent.status,
        "correct": sent.status == 200 and json.loads(sent.body) == expected,
        "error": None if sent.status == 200 else sent.body[:300].decode(errors="replace"),
        "idle_rss_mib": round(idle / MIB, 1), **result,
        "growth_per_body_byte": round((result["rss_peak_mib"] * MIB - idle) / len(body), 2),
        "floor": {"ms": floor["ms"], "load_ms": floor["load_ms"], "way": floor_way, "correct": floor["correct"],
                  "others_cores": floor["others_cores"]},
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }

# ---------------------------------------------------------------- machine state


def wait_others_idle(servers: dict[str, Server], limit_s: float, threshold: float = 0.1,
                     window_s: float = 10.0) -> Result:
    """Right before timing: wait until everything but this benchmark used < threshold cores for a window."""
    start, windows = time.monotonic(), 0
    while True:
        usage, ours = Usage(), sum(s.cpu_s() for s in servers.values())
        time.sleep(window_s)
        others = max(0.0, usage.seconds()[3] - (sum(s.cpu_s() for s in servers.values()) - ours)) / window_s
        windows += 1
        waited = time.monotonic() - start
        if others < threshold or waited >= limit_s:
            return {"threshold_cores": threshold, "window_s": window_s, "waited_s": round(waited),
                    "quiet": others < threshold, "last_window_cores": round(others, 2), "windows": windows}
        if windows % 3 == 1:
            print(f"waiting for other processes to go idle: {others:.2f} cores over the last {window_s:.0f}s, "
                  f"{waited:.0f}s so far", flush=True)


def busiest_others(exclude: set[int], sample_s: float = 1.0) -> list[Result]:
    """Other processes using CPU right now (name, pid, percent of one core)."""
    procs = [p for p in psutil.process_iter(["name"]) if p.pid not in exclude]
    tree_sum(procs, lambda p: p.cpu_percent(None))
    time.sleep(sample_s)
    cpu = {p: tree_sum([p], lambda p: p.cpu_percent(None)) for p in procs}
    return sorted(({"pid": p.pid, "name": p.info["name"], "cpu_percent": round(c)} for p, c in cpu.items() if c >= 5),
                  key=lambda x: -x["cpu_percent"])[:5]


class CpuLedger:
    """Machine-wide CPU over the timed part, split into ours (client, servers) and everyone else's."""

    def __init__(self, servers: dict[str, Server]) -> None:
        self.servers, self.usage = servers, Usage()
        self.start = {k: s.cpu_s() for k, s in servers.items()}
        self.used: dict[str, float] = {}

    def stop(self, server: Server) -> None:
        key = next(k for k, s in self.servers.items() if s is server)
        self.used[key] = server.cpu_s() - self.start[key]
        server.stop()

    def summary(self, exclude: str = "") -> Result:
        servers = sum(self.used.get(k, s.cpu_s() - self.start[k]) for k, s in self.servers.items() if k != exclude)
        wall, _, own, others = self.usage.seconds()
        others = max(0.0, others - servers)
        return {"wall_s": round(wall, 1), "client_cpu_s": round(own, 1), "servers_cpu_s": round(servers, 1),
                "others_cpu_s": round(others, 1), "others_cores": round(others / max(wall, 1e-9), 2)}


def our_pids(servers: dict[str, Server]) -> set[int]:
    alive = [s for s in servers.values() if s.proc is not None and s.proc.poll() is None]
    return {os.getpid(), *(p.pid for s in alive for p in tree_of(s.pid))}

# ---------------------------------------------------------------- the run


def export_reference(commit: str) -> Path:
    """`git archive` of the reference commit into bench/.work/formats/ (read-only for the repo)."""
    full = git("rev-parse", "--verify", f"{commit}^{{commit}}")
    dest = FWORK / f"reference-{full[:12]}"
    if not (dest / "duckapi" / "cli.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", "--format=tar", full], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")
    return dest


def run(args: argparse.Namespace) -> Result:
    plan = QUICK_PLAN if args.quick else FULL_PLAN
    if args.rows:
        plan = replace(plan, rows=args.rows)
    FWORK.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if args.wait_quiet > 0:
        seen = wait_for_quiet(0.5, args.wait_quiet, every_s=5)
        quiet = {"threshold": 0.5, "waited_s": seen["waited_s"], "quiet": seen["quiet"],
                 "loadavg": seen["loadavg_at_start"]}
    else:
        quiet = {"waited_s": 0, "quiet": None, "loadavg": [round(x, 2) for x in os.getloadavg()]}
    print(f"machine load {quiet['loadavg']} after waiting {quiet['waited_s']}s", flush=True)
    env = clean_env()  # the servers run with their defaults

    def duckapi_server(name: str, db: Path, *extra: str) -> Server:
        # each server compiles into its own target dir: they start side by side
        target_env = {**env, "DUCKAPI_TARGET_PATH": str(FWORK / f"target-{name}")}
        return Server(f"formats-{name}", serve_cmd(db, *extra), target_env)

    ours_db = FWORK / "duckapi" / "dev.duckdb"
    servers = {f: duckapi_server(f, ours_db) for f in FORMATS}
    servers["json_select"] = duckapi_server("json-select", ours_db)
    if args.ten_million:
        servers["ten_million"] = duckapi_server("10m", ours_db, "--max-body", str(GIB))
    if plan.baseline_requests and not args.no_baseline:
        servers["baseline"] = baseline_server("formats-baseline", FWORK / "baseline" / "dev.duckdb", env)
    reference = args.reference if args.reference is not None else (None if args.quick else DEFAULT_REFERENCE)
    reference = None if reference and reference.lower() == "none" else reference
    results: Result = {"quick": args.quick, "seed": args.seed, "rows": plan.rows, "payloads_per_format": plan.payloads,
                       "wait_quiet": quiet}
    try:
        if "baseline" in servers:
            print("building the dbt project (the baseline serves from it)", flush=True)
            build(ours_db, {**env, "DUCKAPI_TARGET_PATH": str(FWORK / "target")})
            copy_db(ours_db, FWORK / "baseline" / "dev.duckdb")
        if reference:
            ref_dir = export_reference(reference)
            ref_db = ref_dir / ".bench" / "dev.duckdb"
            ref_env = {**env, "DUCKAPI_TARGET_PATH": str(ref_dir / ".bench" / "target")}
            print(f"building the reference {reference} in {ref_dir}", flush=True)
            build(ref_db, ref_env, ref_dir, "formats-reference-build.log")
            servers["reference"] = Server("formats-reference", serve_cmd(ref_db), ref_env, cwd=ref_dir)
            results["reference"] = {"commit": reference, "dir": str(ref_dir.relative_to(ROOT))}
        start_all(servers.values())
        print(f"generating {plan.payloads} x {plan.rows:,}-row payloads in {len(FORMATS)} formats and their "
              "oracle answers (servers start meanwhile)", flush=True)
        payloads = make_payloads(plan, args.seed)
        pool, seen_bodies = group_pool(), set[bytes]()
        small_work = make_workload(plan.small, args.seed, 1, pool, seen_bodies)  # bench.load's 9-row c=8 payloads
        warmup = make_workload(WARMUP, args.seed, 1000, pool, seen_bodies).payloads
        del seen_bodies
        results["core_numbers"] = core_numbers(reference)
        results["body_mb"] = {f: round(statistics.mean(map(len, payloads.bodies[f])) / 1e6, 2) for f in FORMATS}
        results["body_bytes"] = {f: [len(b) for b in payloads.bodies[f]] for f in FORMATS}
        for s in servers.values():
            s.wait_ready()
        manifest = json.loads((FWORK / "target-json" / "manifest.json").read_bytes())  # what the JSON server compiled
        pipeline = build_pipelines(manifest)[PATH]
        statement = pipeline.select_sql(STATEMENT_PROJECTION)
        results["statement_sha1"] = hashlib.sha1(statement.encode()).hexdigest()
        results["uncommitted"] = git(  # read-only: what differs from git HEAD in what we measure
            "status", "--porcelain", "--", "duckapi", "duckapi_dbt", "bench/load.py", "bench/harness.py",
            "bench/baseline_server.py", check=False).splitlines()
        gc.collect()
        gc.freeze()  # keep the collector from walking the stored answers while we time
        if args.wait_quiet > 0:
            results["wait_others_idle"] = wait_others_idle(servers, args.wait_quiet)
        print(f"ready after {time.monotonic() - t0:.0f}s; timing", flush=True)
        results["loadavg_at_timing_start"] = [round(x, 2) for x in os.getloadavg()]
        results["others_at_timing_start"] = busiest_others(our_pids(servers))
        ledger = CpuLedger(servers)
        local = InProcess(pipeline, statement)
        floor_raw: Result = {}
        phases_raw: Result = {}
        http_raw: Result = {}
        try:
            for f in FORMATS:
                if f == "json":
                    small_servers = [("duckapi", servers[f])]
                    small_servers += [("reference", servers["reference"])] if reference else []
                    for _, srv in small_servers:
                        warm(srv, warmup)
                    results["small"] = measure_small(small_servers, plan.small, small_work, plan.small_rounds)
                    if reference:
                        ledger.stop(servers["reference"])
                http_raw[f] = measure_format(servers[f], f, payloads, warmup, local, floor_raw, phases_raw)
                ledger.stop(servers[f])
        finally:
            threads = local.threads
            local.close()
        results["floor"] = summarise_floor(floor_raw, threads)
        results["phases"] = summarise_phases(phases_raw)
        if "baseline" in servers:
            b = servers["baseline"]
            idle = idle_rss(b, warmup, 0.3)
            base = []
            for body in payloads.bodies["json"][: plan.baseline_requests]:
                base.append(measured_post(b, body, CONTENT_TYPES["json"], idle))
                print(f"  baseline json {base[-1]['status']} {base[-1]['ms']:8.1f} ms", flush=True)
            ledger.stop(b)
            http_raw["baseline"] = {"idle_rss_mib": round(idle / MIB, 1), "requests": base}
        # Memory of the request path itself: the same first JSON body, but only the 200-row part
        # group_sums computed, so the analysis's working memory and its 15 MB answer drop out.
        sel = servers["json_select"]
        sel_idle = idle_rss(sel, warmup)
        sel_raw = measured_post(sel, payloads.bodies["json"][0], CONTENT_TYPES["json"], sel_idle,
                                f"{PATH}?select={SELECTED_PART}")
        ledger.stop(sel)
        results["loadavg_at_timing_end"] = [round(x, 2) for x in os.getloadavg()]
        results["timing"] = ledger.summary(exclude="ten_million")
        print("memory floor: a fresh process that only loads and analyses one body", flush=True)
        results["memory_floor"] = {}
        for f in FORMATS:
            mf = results["memory_floor"][f] = memory_floor(statement, payloads, f, results["floor"][f]["way"])
            print(f"  {f:8} {mf['way']:16} growth {mf['growth_mib']:.0f} MiB ({mf['growth_per_body_byte']:.2f}x the "
                  f"body)",
                  flush=True)
        schemas = DuckDBEngine(Settings()).describe(pipeline)
        sel_statement = pipeline.select([SELECTED_PART], schemas).select_sql(STATEMENT_PROJECTION)
        sel_sent = sel_raw.pop("sent")
        results["selected"] = {
            "part": SELECTED_PART, **sel_raw, "idle_rss_mib": round(sel_idle / MIB, 1),
            "growth_per_body_byte": round(sel_raw["growth_mib"] * MIB / len(payloads.bodies["json"][0]), 2),
            "problem": problem(sel_sent, [{SELECTED_PART: payloads.expected[0][0][SELECTED_PART]}], False),
            "memory_floor": memory_floor(sel_statement, payloads, "json", results["floor"]["json"]["way"]),
        }
        print(f"  json ?select={SELECTED_PART}: growth {sel_raw['growth_mib']:.0f} MiB, floor's "
              f"{results['selected']['memory_floor']['growth_mib']:.0f} MiB", flush=True)
        if args.ten_million:
            results["ten_million"] = measure_ten_million(servers["ten_million"], args, statement,
                                                         results["floor"]["ndjson"]["way"], warmup)
    finally:
        stop_all(servers.values())
        gc.unfreeze()
    print("verifying answers", flush=True)
    results["http"] = summarise_http(http_raw, payloads)
    results["machine"] = machine_info(servers)
    results["targets"] = targets(results)
    results["total_s"] = round(time.monotonic() - t0, 1)
    return results


def problem(sent: Sent, expected: Any, baseline: bool) -> str | None:
    """None when the answer is the oracle's (exactly; the baseline after normalising), else why not."""
    if sent.status != 200:
        return f"{sent.status}: {sent.body[:200].decode(errors='replace')}"
    got = json.loads(sent.body)
    return None if got == expected or (baseline and normalise(got) == normalise(expected)) else \
        f"wrong answer ({len(sent.body)} bytes)"


def summarise_http(raw: Result, payloads: Payloads) -> Result:
    out: Result = {}
    for key, entry in raw.items():
        baseline = key == "baseline"
        bodies = payloads.bodies["json" if baseline else key]
        checked = [(r, payloads.expected[i], len(bodies[i])) for i, r in enumerate(entry["requests"])]
        if (cold := entry.get("cold")) is not None:
            checked.append((cold, payloads.expected[0], len(bodies[0])))
        problems = []
        for r, exp, _ in checked:
            sent = r.pop("sent")
            r["response_mb"] = round(len(sent.body) / 1e6, 2)
            if r.setdefault("problem", problem(sent, exp, baseline)):
                problems.append(r["problem"])
        reqs = entry["requests"]
        out[key] = {
            "ms": [r["ms"] for r in reqs], "p50_ms": statistics.median(r["ms"] for r in reqs),
            "answers": len(checked), "correct": len(checked) - len(problems), "problems": problems[:3],
            "idle_rss_mib": entry["idle_rss_mib"], "peak_rss_mib": max(r["rss_peak_mib"] for r, _, _ in checked),
            # the whole visit: peak over every request minus the idle server (memory kept between requests counts)
            "growth_any_mib": max(r["growth_mib"] for r, _, _ in checked),
            "growth_any_per_body_byte": round(max(r["growth_mib"] * MIB / n for r, _, n in checked), 2),
            "others_cores_max": max(r["others_cores"] for r, _, _ in checked), "requests": reqs,
        }
        if cold is not None:  # one request's cost: the first large body on a server that has seen only 9-row requests
            out[key].update(cold=cold, growth_mib=cold["growth_mib"],
                            growth_per_body_byte=round(cold["growth_mib"] * MIB / len(bodies[0]), 2))
    return out


def targets(results: Result) -> list[Result]:
    out = []
    floor, http_ = results["floor"], results["http"]
    for f, limit in FLOOR_TARGETS.items():
        if f in http_:
            ratio = http_[f]["p50_ms"] / floor[f]["ms"]
            out.append({"target": f"{LABELS[f]}: HTTP p50 <= {limit}x its floor", "pass": ratio <= limit,
                        "measured": f"{ratio:.2f}x ({http_[f]['p50_ms']:.0f} ms vs floor {floor[f]['ms']:.0f} ms; "
                                    f"{limit}x is {floor[f]['ms'] * limit:.0f} ms)"})
    if "json" in http_ and "baseline" in http_:
        speedup = http_["baseline"]["p50_ms"] / http_["json"]["p50_ms"]
        out.append({"target": f"JSON: at least {BASELINE_SPEEDUP_TARGET:.0f}x faster than the original-way baseline",
                    "pass": speedup >= BASELINE_SPEEDUP_TARGET,
                    "measured": f"{speedup:.1f}x ({http_['json']['p50_ms']:.0f} ms vs "
                                f"{http_['baseline']['p50_ms']:.0f} ms, "
                                "same bodies, same run)"})
    out += [{"target": f"{LABELS[f]}: peak server RSS growth during a request <= {MEMORY_TARGET:.0f}x the body",
             "pass": http_[f]["growth_per_body_byte"] <= MEMORY_TARGET,
             "measured": f"{http_[f]['growth_per_body_byte']:.2f}x ({http_[f]['growth_mib']:.0f} MiB for a "
                         f"{results['body_mb'][f]:.1f} MB body)"} for f in FORMATS if f in http_]
    small = results.get("small") or []
    ours = [r["throughput_rps"] for r in small if r["server"] == "duckapi"]
    refs = [r["throughput_rps"] for r in small if r["server"] == "reference"]
    if ours:
        mine = statistics.median(ours)
        if refs:
            theirs = statistics.median(refs)
            out.append({"target": f"9 rows c=8: no regression against the core benchmark's duckapi "
                                  f"({results['reference']['commit']}, same run; >= {SMALL_TOLERANCE:.0%} of its "
                                  f"req/s)",
                        "pass": mine >= SMALL_TOLERANCE * theirs,
                        "measured": f"{mine:.0f} vs {theirs:.0f} req/s ({mine / theirs:.2f}x)"})
        if committed := (results.get("core_numbers") or {}).get("committed", {}).get("throughput_rps"):
            out.append({"target": f"9 rows c=8: no regression against the core benchmark's committed "
                                  f"bench/results.json "
                                  f"({results['core_numbers']['committed']['commit']}; a separate run; "
                                  f">= {SMALL_TOLERANCE:.0%} of its req/s)",
                        "pass": mine >= SMALL_TOLERANCE * committed,
                        "measured": f"{mine:.0f} vs {committed:.0f} req/s ({mine / committed:.2f}x)"})
    bad = [f"HTTP {k}: {v['correct']}/{v['answers']} ({'; '.join(v['problems'])})"
           for k, v in http_.items() if v["correct"] != v["answers"]]
    bad += [f"floor {f}" for f in FORMATS if not floor[f]["correct"]]
    bad += [f"in-process {f}: {p['correct']}" for f, p in results["phases"].items()
            if p["correct"] != results["payloads_per_format"]]
    bad += [f"9 rows {r['server']} round {r['round']}: {r['errors']} errors, {r['wrong']} wrong"
            for r in small if r["errors"] or r["wrong"]]
    if (ten := results.get("ten_million")) and not ten.get("carried_over") and not ten["correct"]:
        bad.append("10M NDJSON")
    return out + [{"target": "every answer exactly the oracle's", "pass": not bad,
                   "measured": "; ".join(bad) or "all correct"}]


def core_numbers(reference: str | None) -> Result:
    """bench.load's 9-row c=8 duckapi throughput: as committed with the core benchmark, and as in the tree now."""
    def small(data: Result) -> Result | None:
        return next(({"throughput_rps": sc["duckapi"]["throughput_rps"], "date_utc": data["machine"]["date_utc"],
                      "server_ms_per_request": sc["duckapi"].get("cpu", {}).get("server_ms_per_request")}
                     for sc in data.get("scenarios", []) if sc["name"] == "9 rows c=8"), None)

    out: Result = {}
    commit = reference or DEFAULT_REFERENCE
    if shown := git("show", f"{commit}:bench/results.json", check=False):
        out["committed"] = {"commit": commit, **(small(json.loads(shown)) or {})}
    try:
        out["working_tree"] = small(json.loads((BENCH / "results.json").read_text()))
    except (OSError, ValueError):
        pass
    return out

# ---------------------------------------------------------------- reporting


REPORT = """\
# Formats benchmark: {rows:,} rows in every body format against its in-process floor{quick}

{m[date_utc]}, {m[cpu_count]} CPUs, {m[memory_gib]} GiB, Python {m[python]}, DuckDB {m[versions][duckdb]}, \
pyarrow {m[versions][pyarrow]}. `python -m bench.formats` regenerates this file; docs/benchmarks.md (Formats) \
says what the floor and the HTTP side measure. {r[payloads_per_format]} distinct bodies per format, every answer \
checked.

**Machine load.** 1-min load {wq[loadavg][0]} at the start{waited}{not_quiet}; {r[loadavg_at_timing_start][0]} when \
timing started, {r[loadavg_at_timing_end][0]} at the end. Other processes: {timing[others_cores]} cores on average \
over the {timing[wall_s]} s timed, at most {others_max:.2f} during one measurement; busiest when timing started: \
{busiest}.

## Results

{table}

{selected}## Targets

{targets}

{gaps}## Where the time goes

{where}

{decode}## Floor, every way measured

{ways}

## Against the original-way baseline

{base}

## 9 rows, concurrency 8 (no regression)

{small_text}

{small_rows}

## 10M rows NDJSON

{ten}

## Every request

{detail}
"""


def markdown(results: Result) -> str:
    floor, http_, phases, rows_n = results["floor"], results["http"], results["phases"], results["rows"]
    shown = [f for f in FORMATS if f in http_]

    def mem_floor(f: str) -> str:
        mf = (results.get("memory_floor") or {}).get(f)
        return f"{mf['growth_mib']:.0f} ({mf['growth_per_body_byte']:.2f}x)" if mf else "-"

    def verdict(passed: bool) -> str:
        return "PASS" if passed else "FAIL"

    table = md_table("| format | body MB | floor ms | HTTP p50 ms | ratio to floor | target | pass | peak RSS growth "
                     "MiB "
                     "| growth / body | <= 4x | floor's growth MiB (x body) | correct |", "lrrrrrcrrcrc", [
                         (LABELS[f], f"{results['body_mb'][f]:.1f}", f"{floor[f]['ms']:.0f}", f"{h['p50_ms']:.0f}",
                          f"{ratio:.2f}x", f"<= {limit}x" if limit else "-", verdict(ratio <= limit) if limit else "-",
                          f"{h['growth_mib']:.0f}", f"{h['growth_per_body_byte']:.2f}x",
                          verdict(h["growth_per_body_byte"] <= MEMORY_TARGET), mem_floor(f),
                          f"{h['correct']}/{h['answers']}")
                         for f, h, limit in ((f, http_[f], FLOOR_TARGETS.get(f)) for f in shown)
                         for ratio in [h["p50_ms"] / floor[f]["ms"]]])
    where = md_table("| format | body copy ms | decode ms | execute_json ms | in-process total ms | HTTP p50 ms "
                     "| HTTP rest ms | floor ms | eager floor: load ms | eager floor: analysis ms | answer MB |",
                     "lrrrrrrrrrr", [
                         (LABELS[f], *(f"{x:.0f}" for x in (p["body_ms"], p["decode_ms"], p["execute_ms"],
                                                             p["total_ms"], http_[f]["p50_ms"],
                                                             http_[f]["p50_ms"] - p["total_ms"], fl["ms"],
                                                             fl["eager_load_ms"], fl["eager_analysis_ms"])),
                          p["answer_mb"]) for f, p, fl in ((f, phases[f], floor[f]) for f in shown)])
    decode = "".join(
        f"{LABELS[f]} decoding, medians: DuckDB's typed read {p['typed_read_ms']:.0f} ms, with JSON-typed columns "
        f"{p['json_columns_read_ms']:.0f} ms, `RowsReader.read` {p['decode_ms']:.0f} ms (checks and conversions about "
        f"{p['decode_ms'] - p['json_columns_read_ms']:.0f} ms), msgspec {p['msgspec_ms']:.0f} ms.\n\n"
        for f, p in ((f, phases.get(f, {})) for f in ("json", "ndjson")) if "typed_read_ms" in p)
    ways = md_table("| format | way | median ms | load ms (median) | each payload ms | correct |", "llrrlc", [
        (LABELS[f], way + (" (floor)" if way == floor[f]["way"] else ""), f"{w['median_ms']:.0f}",
         f"{w['load_median_ms']:.0f}", ", ".join(f"{x:.0f}" for x in w["ms"]), f"{w['correct']}/{w['runs']}")
        for f in FORMATS for way, w in floor[f]["ways"].items()])
    detail = md_table("| server | request | status | ms | RSS before MiB | peak MiB | growth over idle MiB "
                      "| growth over just before MiB | server CPU ms | other procs' CPU (cores) | answer |",
                      "llrrrrrrrrl", [
                          (key, label, r["status"], *(f"{r[k]:.0f}" for k in (
                              "ms", "rss_before_mib", "rss_peak_mib", "growth_mib", "growth_vs_just_before_mib")),
                           r["server_cpu_ms"], f"{r['others_cores']:.2f}", r["problem"] or "exact")
                          for key, h in http_.items()
                          for label, r in ([("first (memory)", h["cold"])] if "cold" in h else [])
                          + [(f"timed {i}", r) for i, r in enumerate(h["requests"])]])
    small = results.get("small") or []
    small_rows = md_table("| server | round | requests | req/s | p50 ms | p95 ms | server CPU ms/req "
                          "| other procs' CPU (cores) | errors | wrong |", "lrrrrrrrrr", [
                              (r["server"], r["round"], r["requests"], f"{r['throughput_rps']:.0f}", r["p50_ms"],
                               r["p95_ms"], r["server_cpu_ms_per_request"], f"{r['others_cores']:.2f}", r["errors"],
                               r["wrong"]) for r in small])
    core = results.get("core_numbers") or {}
    committed = core.get("committed", {}).get("throughput_rps")
    tree, ref = core.get("working_tree") or {}, results.get("reference")
    small_text = (
        f"bench.load's 9-row c=8 payloads ({small[0]['requests'] if small else 0} requests) on the JSON server before "
        "it saw a large body" + (f", alternating with duckapi at {ref['commit']} ({ref['dir']})" if ref else "")
        + (f". The committed bench/results.json ({core['committed']['commit']}, {core['committed']['date_utc']}) "
           f"has {committed} req/s" if committed else "")
        + (f"; the one in the tree ({tree['date_utc']}) {tree['throughput_rps']} req/s"
           if tree and tree.get("throughput_rps") != committed else "") + ".")
    base_text = "Not run."
    if (base := http_.get("baseline")) and "json" in http_:
        base_text = (
            f"bench/baseline_server.py on the first {len(base['requests'])} JSON bodies: p50 {base['p50_ms']:.0f} ms "
            f"(each: {', '.join(f'{x:.0f}' for x in base['ms'])} ms), correct {base['correct']}/{base['answers']}, "
            f"peak RSS {base['peak_rss_mib']:.0f} MiB. duckapi's JSON p50 {http_['json']['p50_ms']:.0f} ms: "
            f"{base['p50_ms'] / http_['json']['p50_ms']:.1f}x faster.")
    ten_text = "Not run (`python -m bench.formats --ten-million` adds it)."
    if ten := results.get("ten_million"):
        ten_text = (
            f"{'(Carried over from ' + ten['date_utc'] + '.) ' if ten.get('carried_over') else ''}"
            f"{ten['rows']:,} rows, {ten['body_mb']:.0f} MB, one request to a fresh server (`--max-body {GIB}`): "
            f"status {ten['status']}, {ten['ms'] / 1000:.2f} s, peak RSS {ten['rss_peak_mib']:.0f} MiB (growth "
            f"{ten['growth_mib']:.0f} MiB = {ten['growth_per_body_byte']:.2f}x the body), server CPU "
            f"{ten['server_cpu_ms'] / 1000:.1f} s, answer {'exact' if ten['correct'] else 'WRONG or missing'}, other "
            f"processes {ten['others_cores']:.2f} cores. Floor ({ten['floor']['way']}): "
            f"{ten['floor']['ms'] / 1000:.2f} "
            f"s, so HTTP is {ten['ms'] / ten['floor']['ms']:.2f}x the floor." + (f" Error: {ten['error']}" if ten.get(
                "error") else ""))
    selected = ""
    if sel := results.get("selected"):
        selected = (
            f"`?select={sel['part']}` on the first JSON body (another fresh server): growth {sel['growth_mib']:.0f} "
            f"MiB = {sel['growth_per_body_byte']:.2f}x the body ({sel['ms']:.0f} ms, answer "
            f"{sel['problem'] or 'exact'})"
            f"; the floor's fresh process for that statement grows {sel['memory_floor']['growth_mib']:.0f} MiB "
            f"({sel['memory_floor']['growth_per_body_byte']:.2f}x).\n\n")
    wq, idle_wait, gaps = results["wait_quiet"], results.get("wait_others_idle"), gap_notes(results)
    not_quiet = "; it did NOT drop below the threshold" if wq.get("quiet") is False else ""
    if idle_wait:
        not_quiet += (f", then {idle_wait['waited_s']} s for other processes to use < {idle_wait['threshold_cores']} "
                      f"cores" + ("" if idle_wait["quiet"] else f" (they never did: {idle_wait['last_window_cores']})"))
    return REPORT.format(
        rows=rows_n, quick=" (quick run)" if results["quick"] else "", m=results["machine"], wq=wq, r=results,
        waited=f" after waiting {wq['waited_s']} s for < {wq.get('threshold')}" if wq.get("waited_s") else "",
        not_quiet=not_quiet, timing=results["timing"],
        others_max=max([h["others_cores_max"] for h in http_.values()] + [r["others_cores"] for r in small]
                       + [w["others_cores_max"] for f in FORMATS for w in floor[f]["ways"].values()] + [0.0]),
        busiest=", ".join(f"{p['name']} {p['cpu_percent']}%" for p in results["others_at_timing_start"]) or "none",
        table=table, selected=selected, targets="\n".join(target_lines(results["targets"], ": ", "")),
        gaps="## Gaps\n\n" + "\n".join(gaps) + "\n\n" if gaps else "", where=where, decode=decode,
        ways=ways, base=base_text, small_text=small_text, small_rows=small_rows, ten=ten_text, detail=detail)


def gap_notes(results: Result) -> list[str]:
    """For each target missed: the measured gap, and which phase it sits in."""
    notes = []
    floor, http_, phases = results["floor"], results["http"], results["phases"]
    for f, limit in FLOOR_TARGETS.items():
        if f in http_ and (h := http_[f])["p50_ms"] > limit * (fl := floor[f])["ms"]:
            notes.append(f"- {LABELS[f]}: HTTP p50 {h['p50_ms'] - limit * fl['ms']:.0f} ms over {limit}x the floor; "
                         f"the "
                         f"in-process path is {phases[f]['total_ms'] - fl['ms']:+.0f} ms against the floor, HTTP adds "
                         f"{h['p50_ms'] - phases[f]['total_ms']:.0f} ms.")
    if "json" in http_ and "baseline" in http_:
        need = http_["baseline"]["p50_ms"] / BASELINE_SPEEDUP_TARGET
        if http_["json"]["p50_ms"] > need:
            notes.append(f"- JSON against the baseline: 10x needs a JSON p50 of {need:.0f} ms; the floor itself is "
                         f"{http_['baseline']['p50_ms'] / floor['json']['ms']:.1f}x faster than the baseline.")
    for f in FORMATS:
        mf = (results.get("memory_floor") or {}).get(f)
        if f in http_ and http_[f]["growth_per_body_byte"] > MEMORY_TARGET and mf:
            notes.append(f"- {LABELS[f]} memory: the floor alone grows {mf['growth_per_body_byte']:.2f}x the body "
                         f"(the server {http_[f]['growth_per_body_byte']:.2f}x): the analysis's own memory.")
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="120k rows, fewer requests: a smoke run of about a minute")
    parser.add_argument("--ten-million", action="store_true",
                        help="also post one 10M-row NDJSON body (~360 MB; not for CI)")
    parser.add_argument("--ten-million-rows", type=int, default=10_000_000, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help="rows per payload (default 1,000,000; quick 200,000)")
    parser.add_argument("--seed", type=int, default=20240521, help="payload seed")
    parser.add_argument("--reference", help=f"commit of the core benchmark's duckapi for the 9-row A/B "
                                            f"(default {DEFAULT_REFERENCE}; quick: none; 'none' to skip)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the original-way baseline")
    parser.add_argument("--wait-quiet", type=float,
                        help="seconds to wait for 1-min load < 0.5 first (default 600; quick 0)")
    parser.add_argument("--out-json", type=Path,
                        help="default bench/formats_results.json (quick: bench/.work/formats/)")
    parser.add_argument("--out-md", type=Path, help="default bench/FORMATS_RESULTS.md (quick: bench/.work/formats/)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the Markdown from the JSON results (--out-json) without measuring")
    parser.add_argument("--memory-floor-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_floor_child:
        memory_floor_child(*args.memory_floor_child)
        return 0
    if args.wait_quiet is None:
        args.wait_quiet = 0 if args.quick else 600
    folder = Path(os.environ.get("DUCKAPI_BENCH_OUT") or (FWORK if args.quick else BENCH))
    suffix = "-quick" * args.quick
    out_json = args.out_json or folder / f"formats_results{suffix}.json"
    out_md = args.out_md or folder / f"FORMATS_RESULTS{suffix}.md"
    if args.report_only:
        results = json.loads(out_json.read_text())
        results["targets"] = targets(results)
        out_md.write_text(markdown(results))
        print(f"wrote {out_md} from {out_json}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind through `finally`: servers stopped
    results = run(args)
    if "ten_million" not in results and out_json.exists():
        try:  # keep an earlier 10M measurement, marked as such
            if old := json.loads(out_json.read_text()).get("ten_million"):
                results["ten_million"] = {**old, "carried_over": True}
        except ValueError:
            pass
    return write_results(results, out_json, out_md, markdown, args.strict)


if __name__ == "__main__":
    sys.exit(main())
