"""Reference-data benchmark: request rows joined (/enriched/) to a reference table the dbt build made
(bench/projects/reference/, 100k to 10M rows, and 1M with a unique index), against the same answer without the join
(/plain/); every answer checked against Python lookups, the join profiled in-process. docs/benchmarks.md says how.

    python -m bench.reference            # ~2-3 minutes: bench/reference_results.json, bench/REFERENCE_RESULTS.md
    python -m bench.reference --quick    # smoke run, < 1 minute; writes under bench/.work/ unless --out-* given
"""

from __future__ import annotations

import argparse
import gc
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from bench.harness import (
    BENCH, MIB, WORK, Result, Scenario, Sent, Server, Usage, bench_main, clean_env, gc_frozen, machine_info,
    quiet_first, report, request, scenario_results, serve_cmd, start_all, stop_all, target, timed, warm,
)
from duckapi.dbt.project import load_manifest
from duckapi.engines.duckdb import SMALL_MODE
from duckapi.serving.service import Service
from duckapi.settings import Settings

PROJECT = BENCH / "projects" / "reference"
HERE = WORK / "reference"
ENDPOINTS = {"join": "/enriched/", "no join": "/plain/"}
#: Share of request lines whose item_key is not in the reference table (a null item).
MISS_RATE = 0.05
Columns = tuple[np.ndarray, np.ndarray, np.ndarray]  # line_id, item_key, qty
TITLE = "Reference-data benchmark"
SKIP = ("machine", "load", "quick", "targets", "total_s", "sql")  # report() leaves these out; the JSON has them
ABOUT = ("Server RSS in MiB. Profile: 9-row requests in duckapi's engine in this process, and in DuckDB alone running "
         "the served statements (`sql` in the JSON).")


@dataclass(frozen=True)
class Warehouse:
    """One reference table: its size, and whether it has a unique index on the key."""

    rows: int
    indexed: bool = False

    @property
    def label(self) -> str:
        size = f"{self.rows // 1_000_000}M" if self.rows >= 1_000_000 else f"{self.rows // 1000}k"
        return size + (" indexed" if self.indexed else "")

    @property
    def db(self) -> Path:
        """One folder per warehouse, one file name: the catalog name ("reference") dbt compiles in is the same."""
        return HERE / f"{self.rows}{'-indexed' if self.indexed else ''}" / "reference.duckdb"

    def entry(self) -> Result:
        return {"label": self.label, "rows": self.rows, "indexed": self.indexed}


MAIN = Warehouse(1_000_000)  # the main scenarios' warehouse
#: The warehouses; the scenarios on MAIN's server, and on the others'; the profile's requests per endpoint.
FULL = ((Warehouse(100_000), MAIN, Warehouse(10_000_000), Warehouse(1_000_000, indexed=True)),
        (Scenario("9 rows c=1", 9, 1, 600, 12), Scenario("100k rows c=1", 100_000, 1, 15, 45)),
        (Scenario("9 rows c=1", 9, 1, 300, 8), Scenario("100k rows c=1", 100_000, 1, 6, 30)), 200)
QUICK = ((Warehouse(100_000), MAIN),
         (Scenario("9 rows c=1", 9, 1, 60, 4), Scenario("100k rows c=1", 100_000, 1, 3, 10)),
         (Scenario("9 rows c=1", 9, 1, 30, 3), Scenario("100k rows c=1", 100_000, 1, 2, 8)), 30)


def build(w: Warehouse) -> Result:
    """`dbt build --vars '{"reference_rows": N}'` of the bench project into the warehouse's own folder."""
    shutil.rmtree(w.db.parent, ignore_errors=True)
    w.db.parent.mkdir(parents=True)
    dbt_vars = orjson.dumps({"reference_rows": w.rows, "items_index": w.indexed}).decode()
    subprocess.run([Path(sys.executable).with_name("dbt"), "build", "--project-dir", PROJECT, "--profiles-dir", PROJECT,
                    "--target-path", w.db.parent / "build-target", "--log-path", w.db.parent / "build-logs", "--vars",
                    dbt_vars], cwd=PROJECT, env=clean_env(DUCKAPI_DB_PATH=str(w.db)), stdout=subprocess.DEVNULL,
                   check=True)  # its log: build-logs/
    with duckdb.connect(str(w.db), read_only=True) as con:
        count, indexes = con.execute("select (select count(*) from items), (select count(*) from duckdb_indexes() "
                                     "where table_name = 'items')").fetchone()
    if count != w.rows or bool(indexes) != w.indexed:
        raise RuntimeError(f"items has {count} rows and {indexes} indexes, expected {w}")
    return {"db_mib": round(w.db.stat().st_size / MIB, 1)}


def server(w: Warehouse) -> Server:
    env = clean_env(DUCKAPI_TARGET_PATH=str(w.db.parent / "serve-target"))
    return Server(f"reference-{w.db.parent.name}", serve_cmd(w.db, "--project", str(PROJECT)), env)


def make_orders(sc: Scenario, rows: int, seed: int, index: int) -> tuple[list[bytes], list[Columns]]:
    """Seeded payloads and their columns (for the expected answers), the same for a size's indexed twin: line ids
    shuffled, item keys uniform over the table, MISS_RATE beyond it. At these sizes no two payloads are alike."""
    rng = np.random.default_rng([seed, rows, index])
    payloads, columns = [], []
    for _ in range(sc.max_requests):
        line_id = rng.permutation(sc.rows).astype(np.int64)
        item_key = rng.integers(0, rows, sc.rows, dtype=np.int64)
        miss = rng.random(sc.rows) < MISS_RATE
        item_key[miss] = rows + rng.integers(0, rows, int(miss.sum()))
        qty = rng.integers(1, 100, sc.rows, dtype=np.int64)
        payloads.append(orjson.dumps([{"line_id": a, "item_key": b, "qty": c}
                                      for a, b, c in zip(line_id.tolist(), item_key.tolist(), qty.tolist())]))
        columns.append((line_id, item_key, qty))
    return payloads, columns


class Reference:
    """The `items` rows as stored in a warehouse, for lookups by key in numpy."""

    def __init__(self, db: Path) -> None:
        with duckdb.connect(str(db), read_only=True) as con:
            table = con.sql("select item_key, item_name, price_cents from items order by item_key").to_arrow_table()
        self.keys = table.column("item_key").to_numpy()
        if len(self.keys) > 1 and not bool(np.all(np.diff(self.keys) > 0)):
            raise RuntimeError("items.item_key is not unique")
        self.names = table.column("item_name").combine_chunks()
        self.prices = table.column("price_cents").to_numpy()

    def expected(self, columns: Columns, join: bool) -> list[dict[str, Any]]:
        """The answer computed in Python: lines by line_id, each with its stored item (join)
        or the item computed from the key as items.sql defines it (no join)."""
        order = np.argsort(columns[0], kind="stable")
        line_id, item_key, qty = (c[order] for c in columns)
        if join:
            pos = np.minimum(np.searchsorted(self.keys, item_key), max(len(self.keys) - 1, 0))
            hit = (self.keys[pos] == item_key).tolist()
            names, prices = self.names.take(pa.array(pos)).to_pylist(), self.prices[pos].tolist()
        else:
            hit, names = [True] * len(item_key), [f"item-{k}" for k in item_key.tolist()]
            prices = ((item_key * 7919) % 10007).tolist()
        return [{"line_id": lid, "item_key": key, "qty": q, "item_name": name if h else None,
                 "price_cents": price if h else None, "amount_cents": q * price if h else None}
                for lid, key, q, h, name, price in zip(line_id.tolist(), item_key.tolist(), qty.tolist(), hit, names,
                                                       prices)]

    def check(self, sent: list[Sent | None], columns: list[Columns], join: bool) -> Result:
        """Wrong answers among the 200s (exact equality with the Python computation, row order included)."""
        wrong = [(got, want) for s, cols in zip(sent, columns) if s is not None and s.status == 200
                 and (got := orjson.loads(s.body)) != (want := self.expected(cols, join))]
        return {"wrong": len(wrong), "wrong_examples": [
            next((f"row {i}: got {a} expected {b}" for i, (a, b) in enumerate(zip(got, want)) if a != b),
                 f"{len(got)} rows, {len(want)} expected")[:400] for got, want in wrong[:3]]}


def p50s(calls: dict[str, Callable[[Any], Any]], inputs: list[Any]) -> Result:
    """Each call's p50 in ms over the inputs in turn (after a warm-up call on the first), and join / no join."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i, x in enumerate([inputs[0], *inputs]):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call(x)
            if i:
                times[name].append(time.perf_counter() - t0)
    out = {f"{name}_p50_ms": round(statistics.median(v) * 1000, 3) for name, v in times.items()}
    return out | {"ratio": round(out["join_p50_ms"] / out["no join_p50_ms"], 2)}


def profile_engine(w: Warehouse, tables: list[pa.Table]) -> Result:
    """duckapi's engine in this process (with the manifest its server compiled): the statement a server's executor
    thread runs, without HTTP."""
    settings = Settings.from_env(env={}, project_dir=PROJECT, db_path=w.db, target_path=w.db.parent / "serve-target",
                                 executor_threads=1)
    service = Service(settings, load_manifest(settings))
    try:
        pipelines = {name: service.state.pipeline(path, None) for name, path in ENDPOINTS.items()}
        return p50s({name: lambda t, p=p: service.engine.execute_json(p, [t]) for name, p in pipelines.items()}, tables)
    finally:
        service.close()


def profile_duckdb(sql: dict[str, str], w: Warehouse, tables: list[pa.Table], threads: int = 1) -> Result:
    """DuckDB alone: the served statements (GET /<path>/sql) over a registered Arrow input, on an
    in-memory DuckDB set up as a server lane in small mode, the warehouse attached read-only."""
    con = duckdb.connect(":memory:", config={"python_enable_replacements": False, "threads": threads})
    try:
        for statement in [*SMALL_MODE, f"set threads = {int(threads)}"]:
            con.execute(statement)
        con.execute("attach $1 as reference (read_only)", [str(w.db)])
        cursors = [con.cursor().register("__duckapi_input_0", table) for table in tables]
        out = p50s({name: lambda c, s=s: c.execute(s).fetchall() for name, s in sql.items()}, cursors)
        plan = cursors[0].execute("explain analyze " + sql["join"]).fetchall()[0][1]
    finally:
        con.close()
    scanned = re.search(r"Row Groups Scanned:\s*(\d+)\s*/\s*(\d+)", plan)
    return out | {"row_groups_scanned": f"{scanned[1]} / {scanned[2]}" if scanned else None,
                  "join_type": (re.search(r"Join Type:\s*(\w+)", plan) or [None, None])[1],
                  "scan_type": (re.search(r"Type:\s*(Sequential Scan|Index Scan)", plan) or [None, None])[1]}


def profile(w: Warehouse, iterations: int, seed: int, sql: dict[str, str]) -> Result:
    """The join on 9-row requests in-process: duckapi's engine, DuckDB alone on 1 and 2 threads."""
    columns = make_orders(Scenario("profile", 9, 1, iterations, 0), w.rows, seed, 99)[1]
    # Arrow tables shaped as the server's inputs (the contract's bigint columns)
    tables = [pa.table({"line_id": a, "item_key": b, "qty": c}) for a, b, c in columns]
    usage = Usage()
    entry = w.entry() | {"engine": profile_engine(w, tables), "duckdb": profile_duckdb(sql, w, tables),
                         "duckdb_2_threads": profile_duckdb(sql, w, tables, threads=2)}
    return entry | {"other_processes_cores": usage.cores()["other_processes_cores"]}


def run(args: argparse.Namespace) -> Result:
    sizes, main, other, iterations = QUICK if args.quick else FULL
    quiet, t0 = quiet_first(args), time.monotonic()
    print("building", ", ".join(w.label for w in sizes), "reference rows into", HERE, flush=True)
    built = {w: build(w) for w in sizes}
    servers = {w: server(w) for w in sizes}
    scenarios = {w: main if w == MAIN else other for w in sizes}
    memory, timings = {}, {}
    try:
        start_all(servers.values())
        print("generating payloads (servers start meanwhile)", flush=True)
        work = {w: [make_orders(sc, w.rows, args.seed, i) for i, sc in enumerate(scenarios[w])] for w in sizes}
        warmups = {w: make_orders(Scenario("warm-up", 9, 1, 20, 0), w.rows, args.seed, 1000) for w in sizes}
        for s in servers.values():
            s.wait_ready()
        print(f"ready after {time.monotonic() - t0:.0f}s; timing", flush=True)
        gc_frozen()
        for w, s in servers.items():
            mem = memory[w] = {"after_start": round(s.rss() / MIB, 1)}
            for path in ENDPOINTS.values():  # first requests attach the snapshot in each lane
                warm(s, warmups[w][0], path)
            mem["after_warm_up"] = round(s.rss() / MIB, 1)
            for sc, (payloads, _) in zip(scenarios[w], work[w]):
                t = timings[w, sc] = timed(dict.fromkeys(ENDPOINTS, s), sc, payloads, f"{w.label:10} ", paths=ENDPOINTS)
                mem[f"after {sc.name}"] = round(s.rss() / MIB, 1)
                mem[f"peak {sc.name}"] = round(max(x.peak_rss for x in t.values()) / MIB, 1)
        sql = {name: request(servers[MAIN].port, "GET", path + "sql", None)[2].decode()
               for name, path in ENDPOINTS.items()}  # the served statements, for DuckDB alone (bad ones fail there)
    finally:
        stop_all(servers.values())
        gc.unfreeze()
    print("verifying answers, then profiling the join in-process", flush=True)
    results: Result = {"quick": args.quick, "seed": args.seed, "main_rows": MAIN.rows, "miss_rate": MISS_RATE,
                       "endpoints": ENDPOINTS, "load": quiet, "sizes": [], "profile": [], "sql": sql}
    for w in sizes:  # every answer checked against the warehouse's stored `items` rows
        reference, size = Reference(w.db), w.entry() | built[w] | {"rss_mib": memory[w], "scenarios": []}
        for sc, (_, columns) in zip(scenarios[w], work[w]):
            e = scenario_results(sc, timings[w, sc], lambda name, t: reference.check(t.sent, columns, name == "join"))
            j, p = e["join"], e["no join"]
            e["p50_ratio"] = round(j["latency_ms"]["p50"] / p["latency_ms"]["p50"], 2)
            e["throughput_ratio"] = round(j["throughput_rps"] / p["throughput_rps"], 2) if p["throughput_rps"] else None
            size["scenarios"].append(e)
        results["sizes"].append(size)
        results["profile"].append(profile(w, iterations, args.seed, sql))
    results["targets"] = targets(results)
    results["machine"] = machine_info({f"reference {w.label}": s for w, s in servers.items()})
    return results | {"total_s": round(time.monotonic() - t0, 1)}


def targets(results: Result) -> list[Result]:
    out = [target(f"9 rows joined to {MAIN.label} reference rows: p50 at most 2x without the join",
                  sc["p50_ratio"] <= 2, f"{sc['join']['latency_ms']['p50']} ms vs "
                  f"{sc['no join']['latency_ms']['p50']} ms: {sc['p50_ratio']}x")
           for size in results["sizes"] if size["label"] == MAIN.label for sc in size["scenarios"] if sc["rows"] == 9]
    bad = [f"{size['label']} {sc['name']} {name}: {r['requests']} requests, {r['errors']} errors, {r['wrong']} wrong"
           for size in results["sizes"] for sc in size["scenarios"] for name in ENDPOINTS for r in [sc[name]]
           if r["errors"] or r["wrong"] or not r["requests"]]
    return out + [target("every answer correct (all sizes, both endpoints)", not bad, "; ".join(bad) or "all correct")]


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, "reference", run, lambda results: report(TITLE, results, ABOUT, SKIP),
                      "two sizes, tiny request counts: a smoke run under a minute", argv, seed=20261201)


if __name__ == "__main__":
    sys.exit(main())
