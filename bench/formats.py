"""Format benchmark: every body format at 1M rows against its in-process DuckDB floor (the same
body bytes loaded by DuckDB or pyarrow, the served model's compiled statement run over them), with
peak RSS growth, the server's phases in-process, the original-way baseline and a 9-row c=8 A/B
against the core benchmark's commit. docs/benchmarks.md (Formats) says how each is measured.

    python -m bench.formats                 # full run, ~3-5 min: bench/formats_results.json, bench/FORMATS_RESULTS.md
    python -m bench.formats --quick         # smoke run, a few minutes; writes under bench/.work/
    python -m bench.formats --ten-million   # the full run plus one 10M-row NDJSON request (not for CI)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import replace
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
    build, clean_env, done, drive, gc_frozen, git, group_pool, machine_info, make_workload, md_table, ms, normalise,
    post, results_options, results_paths, run_and_write, serve_cmd, start_all, stop_all, target, target_lines,
    tree_changes, tree_of, tree_sum, verify, wait_for_quiet, warm,
)
from bench.load import FULL, QUICK, baseline_server, copy_db
from duckapi.api.outputs import encode as arrow_bytes
from duckapi.engines.duckdb import DuckDBEngine
from duckapi.pipeline import build_pipelines, input_relation
from duckapi.rows.formats import RowsReader
from duckapi.rows.parsing import BodyParser
from duckapi.settings import Settings

FWORK = WORK / "formats"
FORMATS = ["json", "ndjson", "csv", "parquet", "arrow"]
CONTENT_TYPES = {"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv",
                 "parquet": "application/vnd.apache.parquet", "arrow": "application/vnd.apache.arrow.stream"}
LABELS = {"json": "JSON array", "ndjson": "NDJSON", "csv": "CSV", "parquet": "Parquet", "arrow": "Arrow IPC stream"}
#: The issue's targets: HTTP p50 at most this many times the floor (none for NDJSON and CSV); JSON this many times
#: faster than the baseline; peak server RSS growth per body byte; a 9-row c=8 throughput this close to the
#: reference's counts as no regression (round-to-round noise).
FLOOR_TARGETS = {"json": 1.5, "parquet": 1.3, "arrow": 1.3}
BASELINE_SPEEDUP_TARGET, MEMORY_TARGET, SMALL_TOLERANCE = 10.0, 4.0, 0.90
TYPED = {"group_id": "VARCHAR", "event_value": "BIGINT"}
SCHEMA = pa.schema([("group_id", pa.string()), ("event_value", pa.int64())])
DEFAULT_REFERENCE = "9cafe9e"  # the commit whose bench/results.json is the core benchmark
STATEMENT_PROJECTION = "to_json(o)::varchar"
SELECTED_PART = "group_sums"  # 200 rows: the request path's memory without the analysis's
#: The ways to load each format that the floor takes the fastest of; "pyarrow", else "duckdb to arrow", loads
#: everything before the statement runs (the eager floor: load and analysis apart).
DUCKDB_WAYS = ["duckdb lazy", "duckdb to arrow"]
FLOOR_WAYS = {"json": DUCKDB_WAYS, "ndjson": DUCKDB_WAYS, "csv": DUCKDB_WAYS, "parquet": ["pyarrow", "duckdb lazy"],
              "arrow": ["pyarrow"]}
#: By --quick: rows per body, bodies per format, baseline requests, and bench.load's 9-row c=8 scenario (full: its
#: first 2000 payloads, the same seed and index) with its rounds.
PLANS = {False: (1_000_000, 3, 2, replace(FULL[1], max_requests=2000), 3), True: (120_000, 2, 1, QUICK[1], 1)}
#: Short group ids keep the JSON small (about 36 bytes a row: `{"group_id":"","event_value":0},`
#: is already 32), with awkward ones for every format's quoting: empty, blank, quote, comma,
#: tab, backslash, accents (NFC and NFD), CJK, emoji.
AWKWARD_SHORT = ["", " ", 'q"', "a,b", "t\tb", "b\\s", "é", "e\u0301", "ß", "日本", "🦆", "🐇", "🐰"]
LETTERS = list("abcdefghijklmnopqrstuvwxyz")
SINGLES = list(dict.fromkeys(AWKWARD_SHORT + LETTERS + [c.upper() for c in LETTERS] + [str(d) for d in range(10)]))
POOL = pa.array(SINGLES + [a + b for a in LETTERS for b in LETTERS][:200 - len(SINGLES)], pa.string())  # 200 ids

# ---------------------------------------------------------------- payloads


def make_table(rng: np.random.Generator, n: int) -> pa.Table:
    """As harness.big_rows: mostly values 0..499, 1% anywhere in int32, both int32 extremes."""
    gid = pa.array(rng.integers(0, len(POOL), n))
    return pa.table({"group_id": POOL.take(gid), "event_value": pa.array(big_values(rng, n), pa.int64())},
                    schema=SCHEMA)


def encode(table: pa.Table | None, rows: list[dict[str, Any]], fmt_: str) -> bytes:
    """The same rows as a body in `fmt_`; Parquet and Arrow IPC by the writers duckapi answers with."""
    if fmt_ == "csv":
        sink = io.BytesIO()
        pacsv.write_csv(table, sink)  # quotes every string, so "" stays an empty string
        return sink.getvalue()
    if fmt_ == "ndjson":
        return b"\n".join(map(orjson.dumps, rows)) + b"\n"
    return orjson.dumps(rows) if fmt_ == "json" else arrow_bytes(table, fmt_)


def make_payloads(rows: int, n: int, seed: int) -> tuple[dict[str, list[bytes]], list[Any]]:
    """`n` distinct seeded row sets, each in every format (format -> bodies), and their oracle answers."""
    bodies, expected = {f: [] for f in FORMATS}, []
    for i in range(n):
        table = make_table(np.random.default_rng([seed, 7000, i]), rows)
        row_dicts = table.to_pylist()
        expected.append(analyse(row_dicts))
        for f in FORMATS:
            bodies[f].append(encode(table, row_dicts, f))
    assert all(len(set(bodies[f])) == n for f in FORMATS), "bodies are not distinct"
    return bodies, expected

# ---------------------------------------------------------------- the floor, in-process


def _source(cursor: duckdb.DuckDBPyConnection, body: bytes, fmt_: str, way: str, columns: dict[str, str] = TYPED
            ) -> Any:
    """The body as something DuckDB can scan: a lazy DuckDB reader or an Arrow table."""
    if fmt_ in ("json", "ndjson"):
        kind = "array" if fmt_ == "json" else "newline_delimited"
        rel = cursor.read_json(io.BytesIO(body), format=kind, columns=columns)
    elif fmt_ == "csv":
        rel = cursor.read_csv(io.BytesIO(body), header=True, dtype=columns, allow_quoted_nulls=False)
    elif fmt_ == "parquet" and way == "duckdb lazy":
        rel = cursor.read_parquet(io.BytesIO(body))
    elif fmt_ == "parquet":
        return pq.read_table(io.BytesIO(body))
    else:
        with pyarrow.ipc.open_stream(body) as stream:
            return stream.read_all()
    return rel.to_arrow_table() if way == "duckdb to arrow" else rel


def others_cores(usage: Usage, wall: float) -> float:
    """CPU the rest of the machine used since `usage` started (minus ours), in cores over `wall`."""
    return round(usage.seconds()[3] / max(wall, 1e-9), 2)


def floor_run(con: duckdb.DuckDBPyConnection, statement: str, body: bytes, f: str, way: str, expected: Any = None
              ) -> Result:
    """Load, register, run the statement, fetch; the answer is checked (given `expected`) after the clock stopped."""
    usage, t0 = Usage(), time.perf_counter()
    with con.cursor() as cursor:
        source = _source(cursor, body, f, way)
        t1 = time.perf_counter()
        cursor.register(input_relation(0), source)
        answer = b"[" + b",".join(r[0].encode() for r in cursor.execute(statement).fetchall()) + b"]"
    t2 = time.perf_counter()
    return {"ms": round((t2 - t0) * 1000, 1), "load_ms": round((t1 - t0) * 1000, 1),
            "others_cores": others_cores(usage, t2 - t0),
            "correct": expected is not None and json.loads(answer) == expected}


class InProcess:
    """The floor and the server's own request path, both in this process, without HTTP."""

    def __init__(self, pipeline: Any, statement: str) -> None:
        self.statement, self.pipeline = statement, pipeline
        self.con = duckdb.connect(":memory:")  # DuckDB's defaults: every core
        self.threads = self.con.execute("select current_setting('threads')").fetchall()[0][0]
        self.engine = DuckDBEngine(Settings())  # what the server builds, with the server's defaults
        self.reader = RowsReader(pipeline.inputs[0].columns, BodyParser(self.engine.config))

    def phases(self, body: bytes, f: str, expected: Any) -> Result:
        """The server's path timed step by step (body copy, decode, execute and serialise); for JSON, then what
        decoding costs: DuckDB's typed read (the eager floor's load), the same read with JSON-typed columns (what
        load_rows reads before checking), and msgspec (the small-body path)."""
        usage, t0 = Usage(), time.perf_counter()
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
        out = {k: round((b - a) * 1000, 1) for k, a, b in (("body_ms", t0, t1), ("decode_ms", t1, t2),
                                                           ("execute_ms", t2, t3), ("total_ms", t0, t3))}
        out |= {"others_cores": others_cores(usage, t3 - t0), "answer_mb": round(len(answer) / 1e6, 2),
                "correct": json.loads(answer) == expected}
        if f in ("json", "ndjson"):
            cursor = self.con.cursor()
            decode = self.reader.json.decode if f == "json" else self.reader.json.decode_lines
            for key, step in (("typed_read_ms", lambda: _source(cursor, body, f, "duckdb to arrow")),
                              ("json_columns_read_ms",
                               lambda: _source(cursor, body, f, "duckdb to arrow", dict.fromkeys(TYPED, "JSON"))),
                              ("msgspec_ms", lambda: decode(body))):
                t4 = time.perf_counter()
                step()
                out[key] = round((time.perf_counter() - t4) * 1000, 1)
            cursor.close()
        return out


def summarise_floor(by_way: dict[str, list[Result]]) -> Result:
    """The floor of a format is its way with the lowest median (among ways that answered correctly)."""
    ways = {way: {"ms": [r["ms"] for r in runs], "median_ms": statistics.median(r["ms"] for r in runs),
                  "load_median_ms": statistics.median(r["load_ms"] for r in runs),
                  "others_cores_max": max(r["others_cores"] for r in runs),
                  "correct": sum(r["correct"] for r in runs), "runs": len(runs)} for way, runs in by_way.items()}
    valid = [w for w, v in ways.items() if v["correct"] == v["runs"]]
    best = min(valid or ways, key=lambda w: ways[w]["median_ms"])
    eager_way = "pyarrow" if "pyarrow" in ways else "duckdb to arrow"
    eager_load, eager_ms = ways[eager_way]["load_median_ms"], ways[eager_way]["median_ms"]
    return {"ms": ways[best]["median_ms"], "way": best, "eager_way": eager_way, "eager_load_ms": eager_load,
            "eager_analysis_ms": round(eager_ms - eager_load, 1), "correct": len(valid) == len(ways), "ways": ways}


def memory_floor(statement: str, body: bytes, f: str, way: str) -> Result:
    """Peak RSS growth of a fresh process that does only the floor, reading the body from a file: what the
    analysis itself needs, without a server."""
    body_path, statement_path = FWORK / f"body-0.{f}", FWORK / "statement.sql"
    body_path.write_bytes(body)
    statement_path.write_text(statement)
    child = subprocess.Popen([sys.executable, "-m", "bench.formats", "--memory-floor-child", str(statement_path),
                              str(body_path), f, way], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"memory floor child for {f} did not start")
        time.sleep(0.3)
        sampler = RssSampler(child.pid, interval=0.005)
        idle = sampler.rss()
        sampler.start()
        print("go", file=child.stdin, flush=True)
        finished = child.stdout.readline().split()
        peak = max(sampler.stop(), idle)
        print("exit", file=child.stdin, flush=True)
        child.wait(30)
    finally:
        child.kill()  # nothing if it exited
        child.wait(5)
        body_path.unlink(missing_ok=True)
    print(f"  {f:8} {way:16} growth {(peak - idle) / MIB:.0f} MiB ({(peak - idle) / len(body):.2f}x the body)")
    return {"way": way, "idle_rss_mib": round(idle / MIB, 1), "peak_rss_mib": round(peak / MIB, 1),
            "growth_mib": round((peak - idle) / MIB, 1), "growth_per_body_byte": round((peak - idle) / len(body), 2),
            "ms": float(finished[1]) if len(finished) > 1 else None}

# ---------------------------------------------------------------- over HTTP


def measured_post(server: Server, body: bytes, content_type: str, idle: int, path: str = PATH) -> Result:
    """One request with the server's RSS sampled every 5 ms and everyone's CPU accounted."""
    sampler = RssSampler(server.pid, interval=0.005)
    before, usage = sampler.rss(), Usage(server.pid)
    sampler.start()
    sent = post(server.port, body, path, content_type=content_type)
    peak = max(sampler.stop(), before)
    return {
        "sent": sent, "status": sent.status, "ms": round(sent.latency_s * 1000, 1),
        "rss_before_mib": round(before / MIB, 1), "rss_peak_mib": round(peak / MIB, 1),
        "growth_mib": round((peak - idle) / MIB, 1), "growth_vs_just_before_mib": round((peak - before) / MIB, 1),
        "server_cpu_ms": round(usage.seconds()[1] * 1000), "others_cores": others_cores(usage, sent.latency_s),
    }


def visit(server: Server, warmup: list[bytes], bodies: list[bytes], content_type: str = CONTENT_TYPES["json"],
          path: str = PATH, pause: float = 0.5) -> tuple[int, list[Result]]:
    """9-row warm-up requests and a pause (the idle RSS that growth counts from), then each body posted once."""
    warm(server, warmup)
    time.sleep(pause)
    idle = server.rss()
    return idle, [measured_post(server, body, content_type, idle, path) for body in bodies]


def measure_format(server: Server, f: str, bodies: list[bytes], expected: list[Any], warmup: list[bytes],
                   local: InProcess) -> tuple[Result, dict[str, list[Result]], list[Result]]:
    """One format, interleaved so that all three see the same machine: per body, the HTTP request,
    the floor (every way) and the server's path in-process.

    The server is fresh, warmed with 9-row requests only; its first large body is the memory
    measurement (the cost of one request on a server that has not seen a large body before)."""
    idle, [cold] = visit(server, warmup, bodies[:1], CONTENT_TYPES[f])
    for way in FLOOR_WAYS[f]:  # warm-ups, not timed
        floor_run(local.con, local.statement, bodies[0], f, way, expected[0])
    local.phases(bodies[0], f, expected[0])
    floor_raw, phases_raw, requests = {way: [] for way in FLOOR_WAYS[f]}, [], []
    for body, exp in zip(bodies, expected):
        gc.collect()
        time.sleep(0.2)
        requests.append(measured_post(server, body, CONTENT_TYPES[f], idle))
        for way in FLOOR_WAYS[f]:
            floor_raw[way].append(floor_run(local.con, local.statement, body, f, way, exp))
        phases_raw.append(local.phases(body, f, exp))
    print(f"  {f:8} first HTTP {cold['ms']:.0f} ms (+{cold['growth_mib']:.0f} MiB); HTTP "
          + ", ".join(f"{r['ms']:.0f}" for r in requests) + " ms", flush=True)
    return {"idle_rss_mib": round(idle / MIB, 1), "cold": cold, "requests": requests}, floor_raw, phases_raw


def measure_small(servers: dict[str, Server], scenario: Scenario, work: Any, rounds: int) -> list[Result]:
    """9-row requests at the core benchmark's concurrency, rounds alternating between servers."""
    out = []
    for rnd in range(rounds):
        for name, server in servers.items():
            usage = Usage(server.pid)
            sent, wall = drive(server.port, work.payloads, scenario.concurrency, scenario.time_limit_s)
            server_cpu, finished = usage.seconds()[1], done(sent)
            out.append({
                "server": name, "round": rnd, "requests": len(finished), "wall_s": round(wall, 3),
                "throughput_rps": round(len(finished) / wall, 1) if wall else 0.0,
                **ms((s.latency_s for s in finished), {"p50_ms": 0.5, "p95_ms": 0.95}, float("nan")),
                "server_cpu_ms_per_request": round(server_cpu * 1000 / max(len(finished), 1), 2),
                "others_cores": others_cores(usage, wall), "errors": sum(s.status != 200 for s in finished),
                "wrong": verify(sent, work.expected)["wrong"],
            })
            print(f"  9 rows {name:10} round {rnd}: {out[-1]['throughput_rps']:7.1f} req/s", flush=True)
            time.sleep(0.5)
    return out


def measure_ten_million(server: Server, rows: int, seed: int, statement: str, floor_way: str, warmup: list[bytes]
                        ) -> Result:
    """One 10M-row NDJSON body, made in 1M-row chunks (the oracle consumes them on the way), to a fresh server."""
    chunks = []

    def generate() -> Iterator[dict[str, Any]]:
        for k in range(0, rows, 1_000_000):
            part = make_table(np.random.default_rng([seed, 9000, k]), min(1_000_000, rows - k)).to_pylist()
            chunks.append(encode(None, part, "ndjson"))
            yield from part

    expected = analyse(generate())
    body = b"".join(chunks)
    chunks.clear()
    gc.collect()
    idle, [result] = visit(server, warmup, [body], CONTENT_TYPES["ndjson"])
    sent = result.pop("sent")
    print(f"10M: {sent.status} in {result['ms']:.0f} ms, peak RSS {result['rss_peak_mib']:.0f} MiB", flush=True)
    server.stop()
    with duckdb.connect(":memory:") as con:
        floor = floor_run(con, statement, body, "ndjson", floor_way, expected)
    return {
        "rows": rows, "body_mb": round(len(body) / 1e6, 1), "status": sent.status,
        "correct": sent.status == 200 and json.loads(sent.body) == expected,
        "error": None if sent.status == 200 else sent.body[:300].decode(errors="replace"),
        "idle_rss_mib": round(idle / MIB, 1), **result,
        "growth_per_body_byte": round((result["rss_peak_mib"] * MIB - idle) / len(body), 2),
        "floor": {**floor, "way": floor_way},
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }

# ---------------------------------------------------------------- machine state


def wait_others_idle(servers: dict[str, Server], limit_s: float, threshold: float = 0.1, window_s: float = 10.0
                     ) -> Result:
    """Right before timing: wait until everything but this benchmark used < threshold cores for a window."""
    start, windows = time.monotonic(), 0
    while True:
        usage, ours = Usage(), sum(s.cpu_s() for s in servers.values())
        time.sleep(window_s)
        others = max(0.0, usage.seconds()[3] - (sum(s.cpu_s() for s in servers.values()) - ours)) / window_s
        waited, windows = time.monotonic() - start, windows + 1
        if others < threshold or waited >= limit_s:
            return {"threshold_cores": threshold, "window_s": window_s, "waited_s": round(waited),
                    "quiet": others < threshold, "last_window_cores": round(others, 2), "windows": windows}
        print(f"waiting for other processes to go idle: {others:.2f} cores, {waited:.0f}s so far", flush=True)


def busiest_others(servers: dict[str, Server], sample_s: float = 1.0) -> list[Result]:
    """Other processes using CPU right now (name, pid, percent of one core): who shares the machine."""
    alive = [s for s in servers.values() if s.proc is not None and s.proc.poll() is None]
    ours = {os.getpid(), *(p.pid for s in alive for p in tree_of(s.pid))}
    procs = [p for p in psutil.process_iter(["name"]) if p.pid not in ours]
    tree_sum(procs, lambda p: p.cpu_percent(None))
    time.sleep(sample_s)
    cpu = {p: tree_sum([p], lambda p: p.cpu_percent(None)) for p in procs}
    return sorted(({"pid": p.pid, "name": p.info["name"], "cpu_percent": round(c)} for p, c in cpu.items() if c >= 5),
                  key=lambda x: -x["cpu_percent"])[:5]

# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> Result:
    """Prepare servers and payloads; time each format with its floor, the 9-row A/B, the baseline, the selected
    part, the memory floors and the 10M request; check every answer after timing."""
    rows, n_bodies, n_baseline, small, rounds = PLANS[args.quick]
    rows, t0 = args.rows or rows, time.monotonic()
    FWORK.mkdir(parents=True, exist_ok=True)
    quiet = {"waited_s": 0, "quiet": None, "loadavg": [round(x, 2) for x in os.getloadavg()]}
    if args.max_load:
        seen = wait_for_quiet(args.max_load, args.wait_s, every_s=5)
        quiet = {"threshold": args.max_load, "waited_s": seen["waited_s"], "quiet": seen["quiet"],
                 "loadavg": seen["loadavg_at_start"]}
    env, ours_db = clean_env(), FWORK / "duckapi" / "dev.duckdb"  # the servers run with their defaults
    names = {f: f for f in FORMATS} | {"json_select": "json-select"}
    names |= ({"ten_million": "10m"} if args.ten_million else {})
    servers = {key: Server(f"formats-{name}", serve_cmd(ours_db, *["--max-body", str(GIB)] * (name == "10m")),
                           {**env, "DUCKAPI_TARGET_PATH": str(FWORK / f"target-{name}")})  # side by side: own targets
               for key, name in names.items()}
    if n_baseline and not args.no_baseline:
        servers["baseline"] = baseline_server("formats-baseline", FWORK / "baseline" / "dev.duckdb", env)
    reference = args.reference or ("none" if args.quick else DEFAULT_REFERENCE)
    reference = None if reference.lower() == "none" else reference
    results: Result = {"quick": args.quick, "seed": args.seed, "rows": rows, "payloads_per_format": n_bodies,
                       "wait_quiet": quiet}
    try:
        if "baseline" in servers:
            print("building the dbt project (the baseline serves from it)", flush=True)
            build(ours_db, {**env, "DUCKAPI_TARGET_PATH": str(FWORK / "target")})
            copy_db(ours_db, FWORK / "baseline" / "dev.duckdb")
        if reference:  # `git archive` of the reference commit, built and served from bench/.work/formats/
            sha = git("rev-parse", "--verify", f"{reference}^{{commit}}")
            ref_dir = FWORK / f"reference-{sha[:12]}"
            if not (ref_dir / "duckapi" / "cli.py").exists():
                ref_dir.mkdir(parents=True, exist_ok=True)
                archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True).stdout
                subprocess.run(["tar", "-x", "-C", str(ref_dir)], input=archive, check=True)
            ref_db, ref_env = ref_dir / ".bench" / "dev.duckdb", {**env, "DUCKAPI_TARGET_PATH": str(ref_dir / ".bench"
                                                                                                 / "target")}
            print(f"building the reference {reference} in {ref_dir}", flush=True)
            build(ref_db, ref_env, ref_dir, "formats-reference-build.log")
            servers["reference"] = Server("formats-reference", serve_cmd(ref_db), ref_env, cwd=ref_dir)
            results["reference"] = {"commit": reference, "dir": str(ref_dir.relative_to(ROOT))}
        start_all(servers.values())
        print(f"generating {n_bodies} x {rows:,}-row payloads in every format and their oracle answers (servers "
              "start meanwhile)", flush=True)
        bodies, expected = make_payloads(rows, n_bodies, args.seed)
        pool, seen_bodies = group_pool(), set[bytes]()
        small_work = make_workload(small, args.seed, 1, pool, seen_bodies)  # bench.load's 9-row c=8 payloads
        warmup = make_workload(WARMUP, args.seed, 1000, pool, seen_bodies).payloads
        results["core_numbers"] = core_numbers(reference)
        results["body_mb"] = {f: round(statistics.mean(map(len, bodies[f])) / 1e6, 2) for f in FORMATS}
        for s in servers.values():
            s.wait_ready()
        manifest = json.loads((FWORK / "target-json" / "manifest.json").read_bytes())  # what the JSON server compiled
        pipeline = build_pipelines(manifest)[PATH]
        statement = pipeline.select_sql(STATEMENT_PROJECTION)
        results["uncommitted"] = tree_changes()  # read-only: what differs from git HEAD in what we measure
        gc_frozen()
        if args.max_load:
            results["wait_others_idle"] = wait_others_idle(servers, args.wait_s)
        print(f"ready after {time.monotonic() - t0:.0f}s; timing", flush=True)
        results["loadavg_at_timing_start"] = [round(x, 2) for x in os.getloadavg()]
        results["others_at_timing_start"] = busiest_others(servers)
        usage, cpu0, used = Usage(), {k: s.cpu_s() for k, s in servers.items()}, {}

        def stop(key: str) -> None:
            """Stop a server once done with it, keeping the CPU it used while timed."""
            used[key] = servers[key].cpu_s() - cpu0[key]
            servers[key].stop()

        local = InProcess(pipeline, statement)
        small_servers = {"duckapi": servers["json"]} | ({"reference": servers["reference"]} if reference else {})
        for srv in small_servers.values():
            warm(srv, warmup)
        results["small"] = measure_small(small_servers, small, small_work, rounds)
        if reference:
            stop("reference")
        http_raw, floor_raw, phases_raw = {}, {}, {}
        for f in FORMATS:
            http_raw[f], floor_raw[f], phases_raw[f] = measure_format(servers[f], f, bodies[f], expected, warmup, local)
            stop(f)
        sel_statement = pipeline.select([SELECTED_PART], local.engine.describe(pipeline)).select_sql(
            STATEMENT_PROJECTION)
        local.con.close()
        local.engine.close()
        results["floor"] = {"duckdb_threads": local.threads} | {f: summarise_floor(w) for f, w in floor_raw.items()}
        results["phases"] = {f: {  # medians of each step
            **{k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0] if k.endswith("_ms")},
            "answer_mb": runs[0]["answer_mb"], "correct": sum(r["correct"] for r in runs), "runs": len(runs),
            "others_cores_max": max(r["others_cores"] for r in runs), "each_total_ms": [r["total_ms"] for r in runs]}
            for f, runs in phases_raw.items()}
        if "baseline" in servers:
            idle, base = visit(servers["baseline"], warmup, bodies["json"][:n_baseline], pause=0.3)
            stop("baseline")
            http_raw["baseline"] = {"idle_rss_mib": round(idle / MIB, 1), "requests": base}
        # Memory of the request path itself: the same first JSON body, but only the 200-row part
        # group_sums computed, so the analysis's working memory and its 15 MB answer drop out.
        sel_idle, [sel] = visit(servers["json_select"], warmup, bodies["json"][:1],
                                path=f"{PATH}?select={SELECTED_PART}")
        sel_sent = sel.pop("sent")
        stop("json_select")
        results["loadavg_at_timing_end"] = [round(x, 2) for x in os.getloadavg()]
        wall, _, own, others = usage.seconds()
        others = max(0.0, others - sum(used.values()))
        results["timing"] = {"wall_s": round(wall, 1), "client_cpu_s": round(own, 1),
                             "servers_cpu_s": round(sum(used.values()), 1), "others_cpu_s": round(others, 1),
                             "others_cores": round(others / max(wall, 1e-9), 2)}
        results["memory_floor"] = {f: memory_floor(statement, bodies[f][0], f, results["floor"][f]["way"])
                                   for f in FORMATS}
        results["selected"] = {
            "part": SELECTED_PART, **sel, "idle_rss_mib": round(sel_idle / MIB, 1),
            "growth_per_body_byte": round(sel["growth_mib"] * MIB / len(bodies["json"][0]), 2),
            "problem": problem(sel_sent, [{SELECTED_PART: expected[0][0][SELECTED_PART]}], False),
            "memory_floor": memory_floor(sel_statement, bodies["json"][0], "json", results["floor"]["json"]["way"]),
        }
        if args.ten_million:
            results["ten_million"] = measure_ten_million(servers["ten_million"], args.ten_million_rows, args.seed,
                                                         statement, results["floor"]["ndjson"]["way"], warmup)
    finally:
        stop_all(servers.values())
        gc.unfreeze()
    results["http"] = summarise_http(http_raw, bodies, expected)
    results["machine"] = machine_info(servers)
    results["targets"] = targets(results)
    results["total_s"] = round(time.monotonic() - t0, 1)
    out_json = results_paths("formats", args.quick, args.out_json)[0]
    if "ten_million" not in results and out_json.exists():
        with suppress(ValueError):  # keep an earlier 10M measurement, marked as such
            if old := json.loads(out_json.read_text()).get("ten_million"):
                results["ten_million"] = {**old, "carried_over": True}
    return results


def problem(sent: Sent, expected: Any, baseline: bool) -> str | None:
    """None when the answer is the oracle's (exactly; the baseline after normalising), else why not."""
    if sent.status != 200:
        return f"{sent.status}: {sent.body[:200].decode(errors='replace')}"
    got = json.loads(sent.body)
    return None if got == expected or (baseline and normalise(got) == normalise(expected)) else \
        f"wrong answer ({len(sent.body)} bytes)"


def summarise_http(raw: Result, bodies: dict[str, list[bytes]], expected: list[Any]) -> Result:
    """Per server: every answer checked, the p50 of the timed requests, and the first large body's memory growth
    (one request's cost on a server that has seen only 9-row requests)."""
    out: Result = {}
    for key, entry in raw.items():
        baseline, reqs, cold = key == "baseline", entry["requests"], entry.get("cold")
        sizes = [len(b) for b in bodies["json" if baseline else key]]
        checked = list(zip(reqs, expected, sizes)) + ([(cold, expected[0], sizes[0])] if cold else [])
        for r, exp, _ in checked:
            sent = r.pop("sent")
            r["response_mb"] = round(len(sent.body) / 1e6, 2)
            r["problem"] = problem(sent, exp, baseline)
        problems = [r["problem"] for r, _, _ in checked if r["problem"]]
        out[key] = {
            "ms": [r["ms"] for r in reqs], "p50_ms": statistics.median(r["ms"] for r in reqs),
            "answers": len(checked), "correct": len(checked) - len(problems), "problems": problems[:3],
            "idle_rss_mib": entry["idle_rss_mib"], "peak_rss_mib": max(r["rss_peak_mib"] for r, _, _ in checked),
            # the whole visit: peak over every request minus the idle server (memory kept between requests counts)
            "growth_any_mib": max(r["growth_mib"] for r, _, _ in checked),
            "growth_any_per_body_byte": round(max(r["growth_mib"] * MIB / n for r, _, n in checked), 2),
            "others_cores_max": max(r["others_cores"] for r, _, _ in checked), "requests": reqs,
        }
        if cold is not None:
            out[key] |= {"cold": cold, "growth_mib": cold["growth_mib"],
                         "growth_per_body_byte": round(cold["growth_mib"] * MIB / sizes[0], 2)}
    return out


def targets(results: Result) -> list[Result]:
    """The issue's targets, each with what was measured, and every answer exactly the oracle's."""
    floor, http_, small = results["floor"], results["http"], results.get("small") or []
    out = []
    for f, limit in FLOOR_TARGETS.items():
        if f in http_:
            p50, fl = http_[f]["p50_ms"], floor[f]["ms"]
            out.append(target(f"{LABELS[f]}: HTTP p50 <= {limit}x its floor", p50 / fl <= limit,
                              f"{p50 / fl:.2f}x ({p50:.0f} ms vs floor {fl:.0f} ms; {limit}x is {fl * limit:.0f} ms)"))
    if "json" in http_ and "baseline" in http_:
        ours, base = http_["json"]["p50_ms"], http_["baseline"]["p50_ms"]
        out.append(target(f"JSON: at least {BASELINE_SPEEDUP_TARGET:.0f}x faster than the original-way baseline",
                          base / ours >= BASELINE_SPEEDUP_TARGET,
                          f"{base / ours:.1f}x ({ours:.0f} ms vs {base:.0f} ms, same bodies, same run)"))
    out += [target(f"{LABELS[f]}: peak server RSS growth during a request <= {MEMORY_TARGET:.0f}x the body",
                   http_[f]["growth_per_body_byte"] <= MEMORY_TARGET, f"{http_[f]['growth_per_body_byte']:.2f}x "
                   f"({http_[f]['growth_mib']:.0f} MiB for a {results['body_mb'][f]:.1f} MB body)")
            for f in FORMATS if f in http_]
    if ours_rps := [r["throughput_rps"] for r in small if r["server"] == "duckapi"]:
        mine, refs = statistics.median(ours_rps), [r["throughput_rps"] for r in small if r["server"] == "reference"]
        against = [(f"duckapi ({results['reference']['commit']}, same run", statistics.median(refs))] if refs else []
        if rps := (committed := (results.get("core_numbers") or {}).get("committed", {})).get("throughput_rps"):
            against.append((f"committed bench/results.json ({committed['commit']}; a separate run", rps))
        out += [target(f"9 rows c=8: no regression against the core benchmark's {what}; >= {SMALL_TOLERANCE:.0%} of "
                       "its req/s)", mine >= SMALL_TOLERANCE * theirs,
                       f"{mine:.0f} vs {theirs:.0f} req/s ({mine / theirs:.2f}x)") for what, theirs in against]
    bad = [f"HTTP {k}: {v['correct']}/{v['answers']} ({'; '.join(v['problems'])})"
           for k, v in http_.items() if v["correct"] != v["answers"]]
    bad += [f"floor {f}" for f in FORMATS if not floor[f]["correct"]]
    bad += [f"in-process {f}: {p['correct']}" for f, p in results["phases"].items()
            if p["correct"] != results["payloads_per_format"]]
    bad += [f"9 rows {r['server']} round {r['round']}: {r['errors']} errors, {r['wrong']} wrong"
            for r in small if r["errors"] or r["wrong"]]
    if (ten := results.get("ten_million")) and not ten.get("carried_over") and not ten["correct"]:
        bad.append("10M NDJSON")
    return out + [target("every answer exactly the oracle's", not bad, "; ".join(bad) or "all correct")]


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
    with suppress(OSError, ValueError):
        out["working_tree"] = small(json.loads((BENCH / "results.json").read_text()))
    return out

# ---------------------------------------------------------------- reporting


def markdown(results: Result) -> str:
    """The report: results table, targets and gaps, where the time goes, every floor way, the baseline, the 9-row
    A/B, the 10M request and every request, each block followed by a blank line."""
    r, floor, http_, phases, m = results, results["floor"], results["http"], results["phases"], results["machine"]
    shown, small, mfs = [f for f in FORMATS if f in http_], r.get("small") or [], r.get("memory_floor") or {}
    core, ref, wq, idle = r.get("core_numbers") or {}, r.get("reference"), r["wait_quiet"], r.get("wait_others_idle")
    verdict = {True: "PASS", False: "FAIL"}
    blocks = [
        f"# Formats benchmark: {r['rows']:,} rows in every body format against its in-process floor"
        + " (quick run)" * r["quick"],
        f"{m['date_utc']}, {m['cpu_count']} CPUs, {m['memory_gib']} GiB, Python {m['python']}, DuckDB "
        f"{m['versions']['duckdb']}, pyarrow {m['versions']['pyarrow']}. `python -m bench.formats` regenerates this "
        "file; docs/benchmarks.md (Formats) says what the floor and the HTTP side measure. "
        f"{r['payloads_per_format']} distinct bodies per format, every answer checked.",
        f"**Machine load.** 1-min load {wq['loadavg'][0]} at the start"
        + (f" after waiting {wq['waited_s']} s for < {wq.get('threshold')}" if wq.get("waited_s") else "")
        + ("; it did NOT drop below the threshold" if wq.get("quiet") is False else "")
        + (f", then {idle['waited_s']} s for other processes to use < {idle['threshold_cores']} cores"
           + ("" if idle["quiet"] else f" (they never did: {idle['last_window_cores']})")
           if idle else "")
        + f"; {r['loadavg_at_timing_start'][0]} when timing started, {r['loadavg_at_timing_end'][0]} at the end. Other "
        f"processes: {r['timing']['others_cores']} cores on average over the {r['timing']['wall_s']} s timed, at most "
        + "{:.2f}".format(max([h["others_cores_max"] for h in http_.values()] + [s["others_cores"] for s in small]
                              + [w["others_cores_max"] for f in FORMATS for w in floor[f]["ways"].values()] + [0.0]))
        + " during one measurement; busiest when timing started: "
        + (", ".join(f"{p['name']} {p['cpu_percent']}%" for p in r["others_at_timing_start"]) or "none") + ".",
        "## Results",
        md_table("| format | body MB | floor ms | HTTP p50 ms | ratio to floor | target | pass | peak RSS growth MiB "
                 "| growth / body | <= 4x | floor's growth MiB (x body) | correct |", "lrrrrrcrrcrc", [
                     (LABELS[f], f"{results['body_mb'][f]:.1f}", f"{floor[f]['ms']:.0f}", f"{h['p50_ms']:.0f}",
                      f"{ratio:.2f}x", f"<= {limit}x" if limit else "-", verdict[ratio <= limit] if limit else "-",
                      f"{h['growth_mib']:.0f}", f"{h['growth_per_body_byte']:.2f}x",
                      verdict[h["growth_per_body_byte"] <= MEMORY_TARGET],
                      f"{mf['growth_mib']:.0f} ({mf['growth_per_body_byte']:.2f}x)" if mf else "-",
                      f"{h['correct']}/{h['answers']}")
                     for f, h, limit, mf in ((f, http_[f], FLOOR_TARGETS.get(f), mfs.get(f)) for f in shown)
                     for ratio in [h["p50_ms"] / floor[f]["ms"]]])]
    if sel := results.get("selected"):
        blocks.append(
            f"`?select={sel['part']}` on the first JSON body (another fresh server): growth {sel['growth_mib']:.0f} "
            f"MiB = {sel['growth_per_body_byte']:.2f}x the body ({sel['ms']:.0f} ms, answer {sel['problem'] or 'exact'}"
            f"); the floor's fresh process for that statement grows {sel['memory_floor']['growth_mib']:.0f} MiB "
            f"({sel['memory_floor']['growth_per_body_byte']:.2f}x).")
    blocks += ["## Targets", "\n".join(target_lines(results["targets"], ": ", ""))]
    gaps = [f"- {LABELS[f]}: HTTP p50 {h['p50_ms'] - limit * fl['ms']:.0f} ms over {limit}x the floor; the in-process "
            f"path is {phases[f]['total_ms'] - fl['ms']:+.0f} ms against the floor, HTTP adds "
            f"{h['p50_ms'] - phases[f]['total_ms']:.0f} ms."
            for f, limit in FLOOR_TARGETS.items() if f in http_
            for h, fl in [(http_[f], floor[f])] if h["p50_ms"] > limit * fl["ms"]]
    if "json" in http_ and "baseline" in http_ and http_["json"]["p50_ms"] > (
            need := http_["baseline"]["p50_ms"] / BASELINE_SPEEDUP_TARGET):
        gaps.append(f"- JSON against the baseline: 10x needs a JSON p50 of {need:.0f} ms; the floor itself is "
                    f"{http_['baseline']['p50_ms'] / floor['json']['ms']:.1f}x faster than the baseline.")
    gaps += [f"- {LABELS[f]} memory: the floor alone grows {mfs[f]['growth_per_body_byte']:.2f}x the body "
             f"(the server {http_[f]['growth_per_body_byte']:.2f}x): the analysis's own memory."
             for f in FORMATS if f in http_ and http_[f]["growth_per_body_byte"] > MEMORY_TARGET and mfs.get(f)]
    if gaps:  # for each target missed: the measured gap, and which phase it sits in
        blocks += ["## Gaps", "\n".join(gaps)]
    blocks += ["## Where the time goes", md_table(
        "| format | body copy ms | decode ms | execute_json ms | in-process total ms | HTTP p50 ms | HTTP rest ms "
        "| floor ms | eager floor: load ms | eager floor: analysis ms | answer MB |", "lrrrrrrrrrr", [
            (LABELS[f], *(f"{x:.0f}" for x in (p["body_ms"], p["decode_ms"], p["execute_ms"], p["total_ms"],
                                                 http_[f]["p50_ms"], http_[f]["p50_ms"] - p["total_ms"], fl["ms"],
                                                 fl["eager_load_ms"], fl["eager_analysis_ms"])), p["answer_mb"])
            for f, p, fl in ((f, phases[f], floor[f]) for f in shown)])]
    blocks += [f"{LABELS[f]} decoding, medians: DuckDB's typed read {p['typed_read_ms']:.0f} ms, with JSON-typed "
               f"columns {p['json_columns_read_ms']:.0f} ms, `RowsReader.read` {p['decode_ms']:.0f} ms (checks and "
               f"conversions about {p['decode_ms'] - p['json_columns_read_ms']:.0f} ms), msgspec "
               f"{p['msgspec_ms']:.0f} ms."
               for f, p in ((f, phases.get(f, {})) for f in ("json", "ndjson")) if "typed_read_ms" in p]
    blocks += ["## Floor, every way measured", md_table(
        "| format | way | median ms | load ms (median) | each payload ms | correct |", "llrrlc", [
            (LABELS[f], way + (" (floor)" if way == floor[f]["way"] else ""), f"{w['median_ms']:.0f}",
             f"{w['load_median_ms']:.0f}", ", ".join(f"{x:.0f}" for x in w["ms"]), f"{w['correct']}/{w['runs']}")
            for f in FORMATS for way, w in floor[f]["ways"].items()])]
    base_text = "Not run."
    if (base := http_.get("baseline")) and "json" in http_:
        base_text = (
            f"bench/baseline_server.py on the first {len(base['requests'])} JSON bodies: p50 {base['p50_ms']:.0f} ms "
            f"(each: {', '.join(f'{x:.0f}' for x in base['ms'])} ms), correct {base['correct']}/{base['answers']}, "
            f"peak RSS {base['peak_rss_mib']:.0f} MiB. duckapi's JSON p50 {http_['json']['p50_ms']:.0f} ms: "
            f"{base['p50_ms'] / http_['json']['p50_ms']:.1f}x faster.")
    committed, tree = core.get("committed", {}).get("throughput_rps"), core.get("working_tree") or {}
    small_text = (
        f"bench.load's 9-row c=8 payloads ({small[0]['requests'] if small else 0} requests) on the JSON server before "
        "it saw a large body" + (f", alternating with duckapi at {ref['commit']} ({ref['dir']})" if ref else "")
        + (f". The committed bench/results.json ({core['committed']['commit']}, {core['committed']['date_utc']}) "
           f"has {committed} req/s" if committed else "")
        + (f"; the one in the tree ({tree['date_utc']}) {tree['throughput_rps']} req/s"
           if tree and tree.get("throughput_rps") != committed else "") + ".")
    ten_text = "Not run (`python -m bench.formats --ten-million` adds it)."
    if ten := results.get("ten_million"):
        ten_text = (
            (f"(Carried over from {ten['date_utc']}.) " if ten.get("carried_over") else "")
            + f"{ten['rows']:,} rows, {ten['body_mb']:.0f} MB, one request to a fresh server (`--max-body {GIB}`): "
            f"status {ten['status']}, {ten['ms'] / 1000:.2f} s, peak RSS {ten['rss_peak_mib']:.0f} MiB (growth "
            f"{ten['growth_mib']:.0f} MiB = {ten['growth_per_body_byte']:.2f}x the body), server CPU "
            f"{ten['server_cpu_ms'] / 1000:.1f} s, answer {'exact' if ten['correct'] else 'WRONG or missing'}, other "
            f"processes {ten['others_cores']:.2f} cores. Floor ({ten['floor']['way']}): "
            f"{ten['floor']['ms'] / 1000:.2f} s, so HTTP is {ten['ms'] / ten['floor']['ms']:.2f}x the floor."
            + (f" Error: {ten['error']}" if ten.get("error") else ""))
    blocks += [
        "## Against the original-way baseline", base_text, "## 9 rows, concurrency 8 (no regression)", small_text,
        md_table("| server | round | requests | req/s | p50 ms | p95 ms | server CPU ms/req | other procs' CPU (cores) "
                 "| errors | wrong |", "lrrrrrrrrr", [
                     (s["server"], s["round"], s["requests"], f"{s['throughput_rps']:.0f}", s["p50_ms"], s["p95_ms"],
                      s["server_cpu_ms_per_request"], f"{s['others_cores']:.2f}", s["errors"], s["wrong"])
                     for s in small]),
        "## 10M rows NDJSON", ten_text, "## Every request",
        md_table("| server | request | status | ms | RSS before MiB | peak MiB | growth over idle MiB "
                 "| growth over just before MiB | server CPU ms | other procs' CPU (cores) | answer |", "llrrrrrrrrl", [
                     (key, label, q["status"], *(f"{q[k]:.0f}" for k in (
                         "ms", "rss_before_mib", "rss_peak_mib", "growth_mib", "growth_vs_just_before_mib")),
                      q["server_cpu_ms"], f"{q['others_cores']:.2f}", q["problem"] or "exact")
                     for key, h in http_.items()
                     for label, q in ([("first (memory)", h["cold"])] if "cold" in h else [])
                     + [(f"timed {i}", q) for i, q in enumerate(h["requests"])]])]
    return "\n\n".join(blocks) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure and write the results; or only re-render the report from them; or be a memory-floor child."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    results_options(parser, "formats", "120k rows, fewer requests: a smoke run")
    parser.set_defaults(max_load=None)  # full run: wait (up to --wait-s) for a 1-min load < 0.5; quick: don't
    parser.add_argument("--ten-million", action="store_true", help="also post one 10M-row NDJSON body (~360 MB)")
    parser.add_argument("--ten-million-rows", type=int, default=10_000_000, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help="rows per payload (default 1,000,000; quick 120,000)")
    parser.add_argument("--seed", type=int, default=20240521, help="payload seed")
    parser.add_argument("--reference", help=f"commit of the core benchmark's duckapi for the 9-row A/B "
                                            f"(default {DEFAULT_REFERENCE}; quick: none; 'none' to skip)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the original-way baseline")
    parser.add_argument("--report-only", action="store_true", help="rewrite the Markdown from the JSON results")
    parser.add_argument("--memory-floor-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_floor_child:  # memory_floor's child: warm up on nine rows, say ready, then on a line read the body
        statement_path, body_path, f, way = args.memory_floor_child  # and run the floor; then wait for a line to exit
        statement, con = Path(statement_path).read_text(), duckdb.connect(":memory:")
        tiny = pa.table({"group_id": ["a", "b", "a"] * 3, "event_value": list(range(9))}, schema=SCHEMA)
        floor_run(con, statement, encode(tiny, tiny.to_pylist(), f), f, way)
        gc.collect()
        print("ready", flush=True)
        sys.stdin.readline()
        print(f"done {floor_run(con, statement, Path(body_path).read_bytes(), f, way)['ms']}", flush=True)
        sys.stdin.readline()
        return 0
    if args.max_load is None:
        args.max_load = 0.0 if args.quick else 0.5
    if args.report_only:
        out_json, out_md = results_paths("formats", args.quick, args.out_json, args.out_md)
        results = json.loads(out_json.read_text())
        out_md.write_text(markdown({**results, "targets": targets(results)}))
        print(f"wrote {out_md} from {out_json}")
        return 0
    return run_and_write(args, "formats", run, markdown)


if __name__ == "__main__":
    sys.exit(main())
