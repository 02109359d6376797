"""Format benchmark: every body format at 1M rows over HTTP against its in-process DuckDB floor, with memory, the
server's phases in-process, the original-way baseline, a 9-row c=8 A/B against the core benchmark's commit and
one 10M-row request. docs/benchmarks.md (Formats) says how each is measured.

    python -m bench.formats                 # full run, ~3-5 min: bench/formats_results.json, bench/FORMATS_RESULTS.md
    python -m bench.formats --quick         # smoke run, a few minutes; writes under bench/.work/
    python -m bench.formats --ten-million   # the full run plus one 10M-row NDJSON request (not for CI)
    python -m bench.formats --render-only   # rewrite bench/FORMATS_RESULTS.md from bench/formats_results.json
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import psutil
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc
import pyarrow.parquet as pq

from bench.harness import (
    GIB, MIB, PATH, ROOT, WARMUP, WORK, Result, RssSampler, Server, Usage, analyse, bench_main, big_values,
    build, clean_env, gc_frozen, git, group_pool, machine_info, make_workload, normalise, post, quiet_first, report,
    scenario_results, serve_cmd, start_all, stop_all, target, timed, verify, warm,
)
from bench.load import FULL, QUICK, baseline_server, copy_db
from duckapi.api.outputs import encode as arrow_bytes
from duckapi.engines.duckdb import DuckDBEngine
from duckapi.pipeline import build_pipelines, input_relation
from duckapi.rows.formats import RowsReader
from duckapi.rows.parsing import BodyParser
from duckapi.settings import Settings

TITLE = "Formats benchmark: every body format against its in-process floor"
ABOUT = ("Each format's bodies posted to a fresh `duckapi serve`, and the same bytes loaded and analysed in this "
         "process by DuckDB without HTTP (the floor); docs/benchmarks.md (Formats) says how each part is measured.")
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
#: The ways to load each format; a format's floor is the fastest of them.
FLOOR_WAYS = {**dict.fromkeys(["json", "ndjson", "csv"], ["duckdb lazy", "duckdb to arrow"]),
              "parquet": ["pyarrow", "duckdb lazy"], "arrow": ["pyarrow"]}
#: By --quick: rows per body, bodies per format, baseline requests, bench.load's 9-row c=8 scenario and its rounds.
PLANS = {False: (1_000_000, 3, 2, FULL[1], 3), True: (120_000, 2, 1, QUICK[1], 1)}
#: Short group ids keep the JSON small (about 36 bytes a row: `{"group_id":"","event_value":0},` is already 32), with
#: awkward ones for every format's quoting: empty, blank, quote, comma, tab, backslash, accents (NFC, NFD), CJK, emoji.
AWKWARD_SHORT = ["", " ", 'q"', "a,b", "t\tb", "b\\s", "é", "e\u0301", "ß", "日本", "🦆", "🐇", "🐰"]
LETTERS = list("abcdefghijklmnopqrstuvwxyz")
SINGLES = list(dict.fromkeys(AWKWARD_SHORT + LETTERS + [c.upper() for c in LETTERS] + [str(d) for d in range(10)]))
POOL = pa.array(SINGLES + [a + b for a in LETTERS for b in LETTERS][:200 - len(SINGLES)], pa.string())  # 200 ids
CHILD = "import sys; from bench.formats import floor_child; floor_child(*sys.argv[1:])"

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

# ---------------------------------------------------------------- in-process: the floor and the server's path


def ms_since(t0: float, t1: float | None = None) -> float:
    return round(((time.perf_counter() if t1 is None else t1) - t0) * 1000, 1)


def _source(cursor: duckdb.DuckDBPyConnection, body: bytes, f: str, way: str) -> Any:
    """The body as something DuckDB can scan: a lazy DuckDB reader, or an Arrow table (loaded before the statement)."""
    if way == "pyarrow":
        return pq.read_table(io.BytesIO(body)) if f == "parquet" else pyarrow.ipc.open_stream(body).read_all()
    if f == "csv":
        rel = cursor.read_csv(io.BytesIO(body), header=True, dtype=TYPED, allow_quoted_nulls=False)
    elif f == "parquet":
        rel = cursor.read_parquet(io.BytesIO(body))
    else:
        rel = cursor.read_json(io.BytesIO(body), format="array" if f == "json" else "newline_delimited", columns=TYPED)
    return rel.to_arrow_table() if way == "duckdb to arrow" else rel


def floor_run(con: duckdb.DuckDBPyConnection, statement: str, body: bytes, f: str, way: str, expected: Any = None
              ) -> Result:
    """Load, register, run the statement, fetch; the answer is checked (given `expected`) after the clock stopped."""
    t0 = time.perf_counter()
    with con.cursor() as cursor:
        source = _source(cursor, body, f, way)
        t1 = time.perf_counter()
        cursor.register(input_relation(0), source)
        answer = b"[" + b",".join(r[0].encode() for r in cursor.execute(statement).fetchall()) + b"]"
    return {"ms": ms_since(t0), "load_ms": ms_since(t0, t1),
            "correct": expected is not None and json.loads(answer) == expected}


def floor_child(statement: str, body_path: str, f: str, way: str) -> None:
    """memory_floor's child: warm up on nine rows, run the floor; print the RSS before, the peak and the time."""
    con = duckdb.connect(":memory:")
    tiny = pa.table({"group_id": ["a", "b", "a"] * 3, "event_value": list(range(9))}, schema=SCHEMA)
    floor_run(con, statement, encode(tiny, tiny.to_pylist(), f), f, way)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the kernel's peak RSS (VmHWM) starts again from the RSS now
    idle = psutil.Process().memory_info().rss
    took = floor_run(con, statement, Path(body_path).read_bytes(), f, way)["ms"]
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())[1]) * 1024
    print(json.dumps({"idle": idle, "peak": peak, "ms": took}))


def memory_floor(statement: str, body: bytes, f: str, way: str) -> Result:
    """Peak RSS growth of a fresh process doing only the floor (body read from a file): the analysis's own need."""
    (FWORK / "memory-floor-body").write_bytes(body)  # scratch, overwritten by the next one
    out = subprocess.run([sys.executable, "-c", CHILD, statement, str(FWORK / "memory-floor-body"), f, way], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=600).stdout
    child = json.loads(out.splitlines()[-1])
    idle, growth = child["idle"], child["peak"] - child["idle"]
    print(f"  {f:8} {way:16} growth {growth / MIB:.0f} MiB ({growth / len(body):.2f}x the body)", flush=True)
    return {"way": way, "idle_rss_mib": round(idle / MIB, 1), "peak_rss_mib": round(child["peak"] / MIB, 1),
            "growth_mib": round(growth / MIB, 1), "growth_per_body_byte": round(growth / len(body), 2),
            "ms": child["ms"]}


class InProcess:
    """The floor and the server's own request path, both in this process, without HTTP."""

    def __init__(self, manifest: Path) -> None:
        self.pipeline = pipeline = build_pipelines(json.loads(manifest.read_bytes()))[PATH]
        self.statement = pipeline.select_sql(STATEMENT_PROJECTION)
        self.con = duckdb.connect(":memory:")  # DuckDB's defaults: every core
        self.engine = DuckDBEngine(Settings())  # what the server builds, with the server's defaults
        self.reader = RowsReader(pipeline.inputs[0].columns, BodyParser(self.engine.config))

    def phases(self, body: bytes, f: str, expected: Any) -> Result:
        """The server's path step by step: body (64 KiB chunks joined, as read_body does), decode, execute."""
        t0 = time.perf_counter()
        copy = b"".join([body[i: i + 65536] for i in range(0, len(body), 65536)])
        t1 = time.perf_counter()
        table = self.reader.read(copy, f)
        t2 = time.perf_counter()
        answer = self.engine.execute_json(self.pipeline, (table,))
        t3 = time.perf_counter()
        return {"body_ms": ms_since(t0, t1), "decode_ms": ms_since(t1, t2), "execute_ms": ms_since(t2, t3),
                "total_ms": ms_since(t0, t3), "answer_mb": round(len(answer) / 1e6, 2),
                "correct": json.loads(answer) == expected}


def medians(runs: list[Result]) -> Result:
    """Each measure's median over the runs, and how many of them answered correctly."""
    return {**{k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0] if k != "correct"},
            "correct": sum(r["correct"] for r in runs), "runs": len(runs)}

# ---------------------------------------------------------------- over HTTP


def fresh(server: Server, warmup: list[bytes], pause: float = 0.5) -> int:
    """9-row warm-up requests and a pause: the idle RSS that a request's growth counts from."""
    warm(server, warmup)
    time.sleep(pause)
    return server.rss()


def measured_post(server: Server, body: bytes, f: str, idle: int, expected: Any, path: str = PATH,
                  baseline: bool = False) -> Result:
    """One request (server RSS sampled every 5 ms, CPU counted), then its answer checked (the baseline's normalised)."""
    sampler = RssSampler(server.pid, interval=0.005)
    before, usage = sampler.rss(), Usage(server.pid)
    sampler.start()
    sent = post(server.port, body, path, content_type=CONTENT_TYPES[f])
    peak = max(sampler.stop(), before)
    _, server_cpu, _, others = usage.seconds()
    got = json.loads(sent.body) if sent.status == 200 else None
    right = sent.status == 200 and (got == expected or baseline and normalise(got) == normalise(expected))
    return {"status": sent.status, "ms": round(sent.latency_s * 1000, 1), "rss_before_mib": round(before / MIB, 1),
            "rss_peak_mib": round(peak / MIB, 1), "growth_mib": round((peak - idle) / MIB, 1),
            "server_cpu_ms": round(server_cpu * 1000), "others_cores": round(others / max(sent.latency_s, 1e-9), 2),
            "problem": None if right else f"{sent.status}: {sent.body[:200].decode(errors='replace')}"}


def over_http(idle: int, requests: list[Result], body_bytes: int, cold: Result | None = None) -> Result:
    """A server's timed requests and answers (`cold`: an untimed first one); the first one's growth over idle."""
    first, answers = cold or requests[0], requests + ([cold] if cold else [])
    return {"p50_ms": round(statistics.median(r["ms"] for r in requests), 1), "ms": [r["ms"] for r in requests],
            "correct": sum(r["problem"] is None for r in answers), "answers": len(answers),
            "idle_rss_mib": round(idle / MIB, 1), "peak_rss_mib": max(r["rss_peak_mib"] for r in answers),
            "growth_mib": first["growth_mib"], "growth_per_body_byte": round(first["growth_mib"] * MIB / body_bytes, 2),
            **({"cold": cold} if cold else {}), "requests": requests}


def measure_format(server: Server, f: str, bodies: list[bytes], expected: list[Any], warmup: list[bytes],
                   local: InProcess) -> tuple[Result, Result, Result]:
    """One fresh server's first large body (its memory), then per body, interleaved so that all three see the same
    machine: the HTTP request, the floor (every way) and the server's path in-process."""
    idle = fresh(server, warmup)
    cold = measured_post(server, bodies[0], f, idle, expected[0])
    for way in FLOOR_WAYS[f]:  # warm-ups, not timed
        floor_run(local.con, local.statement, bodies[0], f, way)
    local.phases(bodies[0], f, expected[0])
    floors, phases, requests = {way: [] for way in FLOOR_WAYS[f]}, [], []
    for body, exp in zip(bodies, expected):
        gc.collect()
        time.sleep(0.2)
        requests.append(measured_post(server, body, f, idle, exp))
        for way in FLOOR_WAYS[f]:
            floors[way].append(floor_run(local.con, local.statement, body, f, way, exp))
        phases.append(local.phases(body, f, exp))
    server.stop()
    ways = {way: medians(runs) for way, runs in floors.items()}  # the floor: the fastest way that was always right
    best = min([w for w, v in ways.items() if v["correct"] == v["runs"]] or ways, key=lambda w: ways[w]["ms"])
    floor = {"ms": ways[best]["ms"], "way": best, "correct": sum(v["correct"] for v in ways.values()),
             "runs": sum(v["runs"] for v in ways.values()), "ways": ways}
    http_ = over_http(idle, requests, len(bodies[0]), cold)
    http_ |= {"ratio_to_floor": round(http_["p50_ms"] / floor["ms"], 2),
              "body_mb": round(statistics.mean(map(len, bodies)) / 1e6, 2)}
    print(f"  {f:8} HTTP p50 {http_['p50_ms']:.0f} ms, floor {floor['ms']:.0f} ms, +{cold['growth_mib']:.0f} MiB",
          flush=True)
    return http_, floor, medians(phases)


def measure_selected(server: Server, body: bytes, expected: Any, warmup: list[bytes], local: InProcess, way: str
                     ) -> Result:
    """The request path's own memory: a JSON body with only the 200-row part group_sums computed (the analysis's
    working memory and its 15 MB answer drop out), on a fresh server and in the floor's fresh process."""
    idle, path = fresh(server, warmup), f"{PATH}?select={SELECTED_PART}"
    want = [{SELECTED_PART: expected[0][SELECTED_PART]}]
    result = over_http(idle, [measured_post(server, body, "json", idle, want, path)], len(body))
    server.stop()
    statement = local.pipeline.select([SELECTED_PART], local.engine.describe(local.pipeline)).select_sql(
        STATEMENT_PROJECTION)
    return {"part": SELECTED_PART, **result, "memory_floor": memory_floor(statement, body, "json", way)}


def measure_ten_million(server: Server, rows: int, seed: int, statement: str, floor_way: str, warmup: list[bytes]
                        ) -> Result:
    """One 10M-row NDJSON body to a fresh server; made in 1M-row tables, as rows one table at a time (memory)."""
    tables = [make_table(np.random.default_rng([seed, 9000, k]), min(1_000_000, rows - k))
              for k in range(0, rows, 1_000_000)]
    body = b"".join(encode(None, t.to_pylist(), "ndjson") for t in tables)
    expected = analyse(row for t in tables for row in t.to_pylist())
    del tables
    gc.collect()
    idle = fresh(server, warmup)
    result = over_http(idle, [measured_post(server, body, "ndjson", idle, expected)], len(body))
    print(f"10M: {result['p50_ms']:.0f} ms, peak RSS {result['peak_rss_mib']:.0f} MiB", flush=True)
    server.stop()
    with duckdb.connect(":memory:") as con:
        floor = floor_run(con, statement, body, "ndjson", floor_way, expected)
    return {"rows": rows, "body_mb": round(len(body) / 1e6, 1), **result, "floor": {**floor, "way": floor_way}}

# ---------------------------------------------------------------- the run


def make_servers(args: argparse.Namespace, baseline: bool, reference: str | None) -> dict[str, Server]:
    """A fresh duckapi per format, for ?select= and for 10M (own target folders), the baseline, the reference."""
    env, db = clean_env(), FWORK / "duckapi" / "dev.duckdb"
    servers = {name: Server(f"formats-{name}", serve_cmd(db, *["--max-body", str(GIB)] * (name == "10m")),
                            {**env, "DUCKAPI_TARGET_PATH": str(FWORK / f"target-{name}")})
               for name in [*FORMATS, "json-select", *(["10m"] if args.ten_million else [])]}
    if baseline:
        print("building the dbt project (the baseline serves from it)", flush=True)
        build(db, {**env, "DUCKAPI_TARGET_PATH": str(FWORK / "target")})
        copy_db(db, FWORK / "baseline" / "dev.duckdb")
        servers["baseline"] = baseline_server("formats-baseline", FWORK / "baseline" / "dev.duckdb", env)
    if reference:
        sha = git("rev-parse", "--verify", f"{reference}^{{commit}}")
        folder = FWORK / f"reference-{sha[:12]}"
        if not (folder / "duckapi" / "cli.py").exists():
            folder.mkdir(parents=True, exist_ok=True)
            archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
        ref_env = {**env, "DUCKAPI_TARGET_PATH": str(folder / ".bench" / "target")}
        ref_db = folder / ".bench" / "dev.duckdb"
        print(f"building the reference {reference} in {folder}", flush=True)
        build(ref_db, ref_env, folder, "formats-reference-build.log")
        servers["reference"] = Server("formats-reference", serve_cmd(ref_db), ref_env, cwd=folder)
    return servers


def core_numbers(commit: str) -> Result:
    """bench.load's 9-row c=8 duckapi throughput in the core benchmark's bench/results.json as of `commit`."""
    data = json.loads(git("show", f"{commit}:bench/results.json", check=False) or "{}")
    return next(({"commit": commit, "date_utc": data["machine"]["date_utc"],
                  "throughput_rps": sc["duckapi"]["throughput_rps"]}
                 for sc in data.get("scenarios", []) if sc["name"] == "9 rows c=8"), {})


def run(args: argparse.Namespace) -> Result:
    """Servers and payloads; the 9-row A/B on servers that have not seen a large body yet; each format over HTTP
    with its floor and phases; the baseline and the selected part; the memory floors; the 10M request."""
    (rows, n_bodies, n_baseline, small, rounds), t0 = PLANS[args.quick], time.monotonic()
    reference = args.reference or ("none" if args.quick else DEFAULT_REFERENCE)
    reference = None if reference.lower() == "none" else reference
    r: Result = {"quick": args.quick, "load": quiet_first(args),
                 "plan": {"seed": args.seed, "rows": rows, "payloads_per_format": n_bodies, "small": small.name,
                          "reference": reference},
                 "http": {}, "floor": {}, "phases": {}}
    servers = make_servers(args, bool(n_baseline and not args.no_baseline), reference)
    try:
        start_all(servers.values())
        print(f"generating {n_bodies} x {rows:,}-row bodies in every format and their answers", flush=True)
        bodies, expected = make_payloads(rows, n_bodies, args.seed)
        pool, seen = group_pool(), set[bytes]()
        small_work = make_workload(small, args.seed, 1, pool, seen)  # bench.load's 9-row c=8 payloads
        warmup = make_workload(WARMUP, args.seed, 1000, pool, seen).payloads
        for s in servers.values():
            s.wait_ready()
        local = InProcess(FWORK / "target-json" / "manifest.json")  # what the JSON server compiled
        gc_frozen()
        pair = {"duckapi": servers["json"]} | ({"reference": servers["reference"]} if reference else {})
        for s in pair.values():
            warm(s, warmup)
        r["small"] = scenario_results(small, timed(pair, small, small_work.payloads, rounds=rounds),
                                      lambda _, t: verify(t.sent, small_work.expected), "per_round")
        stop_all([servers.get("reference")])
        for f in FORMATS:
            r["http"][f], r["floor"][f], r["phases"][f] = measure_format(servers[f], f, bodies[f], expected, warmup,
                                                                         local)
        if base := servers.get("baseline"):
            idle = fresh(base, warmup, 0.3)
            r["baseline"] = over_http(idle, [measured_post(base, body, "json", idle, exp, baseline=True) for body, exp
                                             in zip(bodies["json"][:n_baseline], expected)], len(bodies["json"][0]))
            base.stop()
        r["selected"] = measure_selected(servers["json-select"], bodies["json"][0], expected[0], warmup, local,
                                         r["floor"]["json"]["way"])
        local.con.close()
        local.engine.close()
        r["memory_floor"] = {f: memory_floor(local.statement, bodies[f][0], f, r["floor"][f]["way"]) for f in FORMATS}
        if args.ten_million:
            r["ten_million"] = measure_ten_million(servers["10m"], args.ten_million, args.seed,
                                                   local.statement, r["floor"]["ndjson"]["way"], warmup)
    finally:
        stop_all(servers.values())
        gc.unfreeze()
    r["core_numbers"] = core_numbers(reference or DEFAULT_REFERENCE)
    r["machine"] = machine_info(servers)
    r["targets"] = targets(r)
    r["total_s"] = round(time.monotonic() - t0, 1)
    return r


def targets(r: Result) -> list[Result]:
    """The issue's targets, each with what was measured, and every answer exactly the oracle's."""
    http_, base, small, core = r["http"], r.get("baseline"), r["small"], r["core_numbers"]
    out = [target(f"{LABELS[f]}: HTTP p50 <= {limit}x its floor", p50 / fl <= limit,
                  f"{p50 / fl:.2f}x ({p50:.0f} ms vs floor {fl:.0f} ms; {limit}x is {fl * limit:.0f} ms)")
           for f, limit in FLOOR_TARGETS.items() for p50, fl in [(http_[f]["p50_ms"], r["floor"][f]["ms"])]]
    if base:
        ours, theirs = http_["json"]["p50_ms"], base["p50_ms"]
        out.append(target(f"JSON: at least {BASELINE_SPEEDUP_TARGET:.0f}x faster than the original-way baseline",
                          theirs / ours >= BASELINE_SPEEDUP_TARGET,
                          f"{theirs / ours:.1f}x ({ours:.0f} ms vs {theirs:.0f} ms, same bodies, same run)"))
    out += [target(f"{LABELS[f]}: peak server RSS growth during a request <= {MEMORY_TARGET:.0f}x the body",
                   h["growth_per_body_byte"] <= MEMORY_TARGET,
                   f"{h['growth_per_body_byte']:.2f}x ({h['growth_mib']:.0f} MiB for a {h['body_mb']:.1f} MB body)")
            for f, h in http_.items()]
    mine = small["duckapi"]["throughput_rps"]
    against = {f"duckapi ({r['plan']['reference']}, same run": small.get("reference", {}).get("throughput_rps"),
               f"committed bench/results.json ({core.get('commit')}; a separate run": core.get("throughput_rps")}
    out += [target(f"9 rows c=8: no regression against the core benchmark's {what}; >= {SMALL_TOLERANCE:.0%} of "
                   "its req/s)", mine >= SMALL_TOLERANCE * theirs, f"{mine:.0f} vs {theirs:.0f} req/s "
                   f"({mine / theirs:.2f}x)") for what, theirs in against.items() if theirs]
    served = {**http_, "baseline": base, "?select": r["selected"], "10M": r.get("ten_million")}
    bad = [f"HTTP {k}: {v['correct']}/{v['answers']}" for k, v in served.items() if v and v["correct"] != v["answers"]]
    bad += [f"{k} {f}: {v['correct']}/{v['runs']}" for k in ("floor", "phases") for f, v in r[k].items()
            if v["correct"] != v["runs"]]
    bad += [f"9 rows {name}: {v['errors']} errors, {v['wrong']} wrong" for name, v in small.items()
            if isinstance(v, dict) and (v["errors"] or v["wrong"])]
    return out + [target("every answer exactly the oracle's", not bad, "; ".join(bad) or "all correct")]


def main(argv: list[str] | None = None) -> int:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--reference", help=f"commit of the core benchmark's duckapi for the 9-row A/B "
                                                f"(default {DEFAULT_REFERENCE}; quick: none; 'none' to skip)")
        parser.add_argument("--no-baseline", action="store_true", help="skip the original-way baseline")
        parser.add_argument("--ten-million", type=int, nargs="?", const=10_000_000, metavar="ROWS",
                            help="also post one 10M-row NDJSON body (~360 MB)")

    return bench_main(__doc__, "formats", run, lambda results: report(TITLE, results, ABOUT),
                      "120k rows, fewer requests: a smoke run", argv, 20240521, options)


if __name__ == "__main__":
    sys.exit(main())
