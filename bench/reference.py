"""Reference-data benchmark: request rows joined (/enriched/) to a reference table the dbt build
made (bench/projects/reference/, 100k to 10M rows, and 1M with a unique index), against the same
answer without the join (/plain/); every answer checked against Python lookups, and the join
profiled in-process. docs/benchmarks.md (Reference data) says how it is measured.

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
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from bench.harness import (
    BENCH, MIB, WORK, Result, Scenario, Sent, Server, Usage, bench_main, clean_env, fmt, gc_frozen,
    git_and_load, machine_info, machine_line, md_table, quiet_first, request, scenario_results, serve_cmd, start_all,
    stop_all, target, target_lines, timed, tree_changes, warm,
)

PROJECT = BENCH / "projects" / "reference"
HERE = WORK / "reference"
ENDPOINTS = {"join": "/enriched/", "no join": "/plain/"}
MAIN_ROWS = 1_000_000
#: Share of request lines whose item_key is not in the reference table (a null item).
MISS_RATE = 0.05
Columns = tuple[np.ndarray, np.ndarray, np.ndarray]  # line_id, item_key, qty


def label(rows: int) -> str:
    return f"{rows // 1_000_000}M" if rows >= 1_000_000 else f"{rows // 1000}k"


@dataclass(frozen=True)
class Warehouse:
    """One reference table: its size, and whether it has a unique index on the key."""

    rows: int
    indexed: bool = False

    @property
    def label(self) -> str:
        return label(self.rows) + (" indexed" if self.indexed else "")

    @property
    def db(self) -> Path:
        """One folder per warehouse, one file name: the catalog name ("reference") dbt compiles in is the same."""
        return HERE / f"{self.rows}{'-indexed' if self.indexed else ''}" / "reference.duckdb"


MAIN = Warehouse(MAIN_ROWS)  # the main scenarios' warehouse


@dataclass(frozen=True)
class Plan:
    sizes: tuple[Warehouse, ...]
    main: tuple[Scenario, ...]  # on MAIN's server
    other: tuple[Scenario, ...]  # on the others' servers
    profile_iterations: int


FULL = Plan((Warehouse(100_000), MAIN, Warehouse(10_000_000), Warehouse(1_000_000, indexed=True)),
            (Scenario("9 rows c=1", 9, 1, 600, 12), Scenario("100k rows c=1", 100_000, 1, 15, 45)),
            (Scenario("9 rows c=1", 9, 1, 300, 8), Scenario("100k rows c=1", 100_000, 1, 6, 30)), 200)
QUICK = Plan((Warehouse(100_000), MAIN),
             (Scenario("9 rows c=1", 9, 1, 60, 4), Scenario("100k rows c=1", 100_000, 1, 3, 10)),
             (Scenario("9 rows c=1", 9, 1, 30, 3), Scenario("100k rows c=1", 100_000, 1, 2, 8)), 30)


def build_all(sizes: tuple[Warehouse, ...]) -> dict[Warehouse, Result]:
    """`dbt build --vars '{"reference_rows": N}'` of the bench project, one warehouse each (in parallel)."""
    dbt = str(Path(sys.executable).with_name("dbt"))
    procs = {}
    for w in sizes:
        shutil.rmtree(w.db.parent, ignore_errors=True)
        w.db.parent.mkdir(parents=True)
        dbt_vars = {"reference_rows": w.rows, **({"items_index": True} if w.indexed else {})}
        cmd = [dbt, "build", "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
               "--target-path", str(w.db.parent / "build-target"), "--log-path", str(w.db.parent / "build-logs"),
               "--vars", orjson.dumps(dbt_vars).decode()]
        (WORK / "logs").mkdir(parents=True, exist_ok=True)
        log = open(WORK / "logs" / f"reference-build-{w.db.parent.name}.log", "wb")
        procs[w] = (subprocess.Popen(cmd, cwd=PROJECT, env=clean_env(DUCKAPI_DB_PATH=str(w.db)), stdout=log,
                                     stderr=subprocess.STDOUT), log, time.monotonic(), cmd)
    built = {}
    for w, (proc, log, t0, cmd) in procs.items():
        if proc.wait() != 0:
            raise RuntimeError(f"dbt build of {w.label} reference rows failed; see {log.name}")
        log.close()
        with duckdb.connect(str(w.db), read_only=True) as con:
            count = con.execute("select count(*) from items").fetchone()[0]
            indexes = con.execute("select count(*) from duckdb_indexes() where table_name = 'items'").fetchone()[0]
        if count != w.rows or bool(indexes) != w.indexed:
            raise RuntimeError(f"items has {count} rows and {indexes} indexes, expected {w}")
        built[w] = {"seconds": round(time.monotonic() - t0, 1), "db_mib": round(w.db.stat().st_size / MIB, 1),
                    "command": cmd}
    return built


def server(w: Warehouse) -> Server:
    env = clean_env(DUCKAPI_TARGET_PATH=str(w.db.parent / "serve-target"))
    return Server(f"reference-{w.db.parent.name}", serve_cmd(w.db, "--project", str(PROJECT)), env)


@dataclass
class Orders:
    """The payloads of one scenario on one size, and their columns (for the expected answers)."""

    payloads: list[bytes]
    columns: list[Columns]


def make_orders(sc: Scenario, rows: int, seed: int, index: int, seen: set[bytes]) -> Orders:
    """Distinct seeded payloads: line ids shuffled, item keys uniform over the table, MISS_RATE beyond it."""
    rng = np.random.default_rng([seed, rows, index])
    out = Orders([], [])
    while len(out.payloads) < sc.max_requests:
        line_id = rng.permutation(sc.rows).astype(np.int64)
        item_key = rng.integers(0, rows, sc.rows, dtype=np.int64)
        miss = rng.random(sc.rows) < MISS_RATE
        item_key[miss] = rows + rng.integers(0, rows, int(miss.sum()))
        qty = rng.integers(1, 100, sc.rows, dtype=np.int64)
        body = orjson.dumps([{"line_id": a, "item_key": b, "qty": c}
                             for a, b, c in zip(line_id.tolist(), item_key.tolist(), qty.tolist())])
        if body not in seen:
            seen.add(body)
            out.payloads.append(body)
            out.columns.append((line_id, item_key, qty))
    return out


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


def check(sent: list[Sent | None], orders: Orders, reference: Reference, join: bool) -> Result:
    """Wrong answers among the 200s (exact equality with the Python computation, row order included)."""
    wrong, examples = 0, []
    for s, columns in zip(sent, orders.columns):
        if s is None or s.status != 200 or (got := orjson.loads(s.body)) == (want := reference.expected(columns, join)):
            continue
        wrong += 1
        if len(examples) < 3:
            examples.append(f"not a list: {str(got)[:200]}" if not isinstance(got, list) else
                            f"{len(got)} rows vs {len(want)} expected" if len(got) != len(want) else
                            next(f"row {i}: got {str(a)[:200]} expected {str(b)[:200]}"
                                 for i, (a, b) in enumerate(zip(got, want)) if a != b))
    return {"wrong": wrong, "wrong_examples": examples}

# ---------------------------------------------------------------- in-process profile


def with_ratio(times: dict[str, list[float]]) -> Result:
    """The p50 in ms of each side, and join / no join."""
    out: Result = {f"{name}_p50_ms": round(statistics.median(v) * 1000, 3) if v else float("nan")
                   for name, v in times.items()}
    return out | {"ratio": round(out["join_p50_ms"] / out["no join_p50_ms"], 2)}


def profile_engine(manifest: Result, w: Warehouse, tables: list[pa.Table]) -> Result:
    """duckapi's engine in this process: the statement a server's executor thread runs, without HTTP."""
    from duckapi.serving.service import Service
    from duckapi.settings import Settings

    settings = Settings.from_env(env={}, project_dir=PROJECT, db_path=w.db,
                                 target_path=w.db.parent / "profile-target", executor_threads=1)
    service = Service(settings, manifest)
    try:
        pipelines = {name: service.state.pipeline(path, None) for name, path in ENDPOINTS.items()}
        times: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
        for p in pipelines.values():  # warm: the lane attaches the snapshot, caches blocks
            service.engine.execute_json(p, [tables[0]])
        for table in tables:
            for name, p in pipelines.items():
                t0 = time.perf_counter()
                service.engine.execute_json(p, [table])
                times[name].append(time.perf_counter() - t0)
    finally:
        service.close()
    return with_ratio(times)


def profile_duckdb(sql: dict[str, str], w: Warehouse, tables: list[pa.Table], threads: int = 1) -> Result:
    """DuckDB alone: the served statements (GET /<path>/sql) over a registered Arrow input, on an
    in-memory DuckDB set up as a server lane in small mode, the warehouse attached read-only."""
    from duckapi.engines.duckdb import SMALL_MODE

    con = duckdb.connect(":memory:", config={"python_enable_replacements": False, "threads": threads})
    for statement in [*SMALL_MODE, f"set threads = {int(threads)}"]:
        con.execute(statement)
    con.execute("attach $1 as reference (read_only)", [str(w.db)])
    times: dict[str, list[float]] = {name: [] for name in sql}

    def run(statement: str, table: pa.Table) -> tuple[list[Any], float]:
        cursor = con.cursor()
        cursor.register("__duckapi_input_0", table)
        t0 = time.perf_counter()
        rows = cursor.execute(statement).fetchall()
        elapsed = time.perf_counter() - t0
        cursor.close()
        return rows, elapsed

    try:
        for i, table in enumerate([tables[0], *tables]):
            for name, statement in sql.items():
                if (elapsed := run(statement, table)[1]) and i:
                    times[name].append(elapsed)
        plan = run("explain analyze " + sql["join"], tables[0])[0][0][1]
    finally:
        con.close()
    scanned = re.search(r"Row Groups Scanned:\s*(\d+)\s*/\s*(\d+)", plan)
    return with_ratio(times) | {
        "row_groups_scanned": f"{scanned[1]} / {scanned[2]}" if scanned else None,
        "join_type": (re.search(r"Join Type:\s*(\w+)", plan) or [None, None])[1],
        "scan_type": (re.search(r"Type:\s*(Sequential Scan|Index Scan)", plan) or [None, None])[1]}


def profile(plan: Plan, seed: int, sql: dict[str, str], manifest: Result) -> list[Result]:
    out = []
    for w in plan.sizes:
        orders = make_orders(Scenario("profile", 9, 1, plan.profile_iterations, 0), w.rows, seed, 99, set())
        # Arrow tables shaped as the server's inputs (the contract's bigint columns)
        tables = [pa.table({"line_id": a, "item_key": b, "qty": c}) for a, b, c in orders.columns]
        usage = Usage()
        entry = {"rows": w.rows, "indexed": w.indexed, "label": w.label, "engine": profile_engine(manifest, w, tables),
                 "duckdb": profile_duckdb(sql, w, tables),
                 "duckdb_2_threads": profile_duckdb(sql, w, tables, threads=2)}
        entry["other_processes_cores"] = usage.cores()["other_processes_cores"]
        print(f"  profile {w.label:10} engine {entry['engine']}  duckdb {entry['duckdb']}", flush=True)
        out.append(entry)
    return out

# ---------------------------------------------------------------- the run


def rss_mib(server: Server) -> float:
    return round(server.rss() / MIB, 1)


def run(args: argparse.Namespace) -> Result:
    plan = QUICK if args.quick else FULL
    quiet = quiet_first(args)
    t0 = time.monotonic()
    print("building", ", ".join(w.label for w in plan.sizes), "reference rows into", HERE, flush=True)
    built = build_all(plan.sizes)
    servers = {w: server(w) for w in plan.sizes}
    main = MAIN if MAIN in plan.sizes else plan.sizes[0]
    results: Result = {"quick": args.quick, "seed": args.seed, "main_rows": MAIN_ROWS, "miss_rate": MISS_RATE,
                       "endpoints": ENDPOINTS, "load": quiet, "sizes": []}
    memory: dict[Warehouse, dict[str, float]] = {}
    raw, sql = [], {}
    try:
        start_all(servers.values())
        print("generating payloads (servers start meanwhile)", flush=True)
        seen: set[bytes] = set()
        scenarios = {w: plan.main if w == MAIN else plan.other for w in plan.sizes}
        # Payloads depend on the size only: the indexed warehouse gets the same ones as its twin.
        work = {w: [make_orders(sc, w.rows, args.seed, i, seen if not w.indexed else set())
                    for i, sc in enumerate(scenarios[w])] for w in plan.sizes}
        warmups = {w: make_orders(Scenario("warm-up", 9, 1, 20, 0), w.rows, args.seed, 1000, set()) for w in plan.sizes}
        del seen
        for s in servers.values():
            s.wait_ready()
        print(f"ready after {time.monotonic() - t0:.0f}s; timing", flush=True)
        gc_frozen()
        for w, s in servers.items():
            mem = memory[w] = {"after_start": rss_mib(s)}
            for path in ENDPOINTS.values():  # first requests attach the snapshot in each lane
                warm(s, warmups[w].payloads, path)
            mem["after_warm_up"] = rss_mib(s)
            for sc, orders in zip(scenarios[w], work[w]):
                timings = timed({name: s for name in ENDPOINTS}, sc, orders.payloads, f"{w.label:10} ", paths=ENDPOINTS)
                mem[f"after {sc.name}"] = rss_mib(s)
                mem[f"peak {sc.name}"] = round(max(t.peak_rss for t in timings.values()) / MIB, 1)
                raw.append((w, sc, orders, timings))
        for name, path in ENDPOINTS.items():
            status, _, body = request(servers[main].port, "GET", path.rstrip("/") + "/sql", None)
            if status != 200:
                raise RuntimeError(f"GET {path}sql: {status}")
            sql[name] = body.decode()
        time.sleep(1)
        for w, s in servers.items():
            memory[w]["idle_at_end"] = rss_mib(s)
    finally:
        stop_all(servers.values())
        gc.unfreeze()
    print("verifying answers", flush=True)
    for w in plan.sizes:  # every answer checked against the warehouse's stored `items` rows
        reference = Reference(w.db)
        entry = {"rows": w.rows, "indexed": w.indexed, "label": w.label, **built[w], "rss_mib": memory[w],
                 "scenarios": []}
        for sc, orders, timings in ((sc, o, t) for v, sc, o, t in raw if v == w):
            scenario = scenario_results(sc, timings, lambda name, t: check(t.sent, orders, reference, name == "join"))
            j, p = scenario["join"], scenario["no join"]
            scenario["p50_ratio"] = round(j["latency_ms"]["p50"] / p["latency_ms"]["p50"], 2)
            scenario["throughput_ratio"] = (round(j["throughput_rps"] / p["throughput_rps"], 2)
                                            if p["throughput_rps"] else None)
            entry["scenarios"].append(scenario)
        results["sizes"].append(entry)
    print("profiling the join in-process", flush=True)
    from duckapi.dbt.project import load_manifest
    from duckapi.settings import Settings

    settings = Settings.from_env(env={}, project_dir=PROJECT, target_path=main.db.parent / "serve-target")
    results.update(profile=profile(plan, args.seed, sql, load_manifest(settings)), sql=sql)
    results["targets"] = targets(results)
    results["machine"] = machine_info({f"reference {w.label}": s for w, s in servers.items()})
    results["machine"]["duckapi_tree_changes"] = tree_changes()
    results["total_s"] = round(time.monotonic() - t0, 1)
    return results


def targets(results: Result) -> list[Result]:
    out = [target(f"9 rows joined to {label(MAIN_ROWS)} reference rows: p50 at most 2x without the join",
                  sc["p50_ratio"] <= 2.0, f"{sc['join']['latency_ms']['p50']} ms vs "
                  f"{sc['no join']['latency_ms']['p50']} ms: {sc['p50_ratio']}x")
           for size in results["sizes"] for sc in size["scenarios"]
           if size["rows"] == MAIN_ROWS and not size["indexed"] and sc["name"] == "9 rows c=1"]
    bad = [f"{size['label']} {sc['name']} {name}: {r['requests']} requests, {r['errors']} errors, {r['wrong']} wrong"
           for size in results["sizes"] for sc in size["scenarios"] for name in ENDPOINTS for r in [sc[name]]
           if r["errors"] or r["wrong"] or not r["requests"]]
    return out + [target("every answer correct (all sizes, both endpoints)", not bad, "; ".join(bad) or "all correct")]


def markdown(results: Result) -> str:
    m = results["machine"]
    main = next((s for s in results["sizes"] if s["rows"] == MAIN_ROWS and not s["indexed"]), results["sizes"][0])
    names = [sc["name"] for sc in main["scenarios"]]

    def pair(r: Result) -> str:
        return f"{fmt(r['join_p50_ms'], 2)} / {fmt(r['no join_p50_ms'], 2)} ({fmt(r['ratio'], 2)}x)"

    rows = md_table("| scenario | endpoint | requests | req/s | p50 ms | p95 ms | max ms | server CPU ms/req "
                    "| other procs' CPU (cores) | peak RSS MiB | errors | wrong |", "llrrrrrrrrcc", [
                        row for sc in main["scenarios"] for row in [
                            *((sc["name"], f"{name} ({path})", r["requests"], fmt(r["throughput_rps"]),
                               *(fmt(r["latency_ms"][q], 2) for q in ("p50", "p95", "max")),
                               fmt(r["cpu"]["server_ms_per_request"], 2), fmt(r["cpu"]["other_processes_cores"], 2),
                               fmt(r["rss_mib"]["peak"], 0), r["errors"], r["wrong"])
                              for name, path in ENDPOINTS.items() for r in [sc[name]]),
                            (sc["name"], "**join / no join**", "", f"{fmt(sc['throughput_ratio'], 2)}x",
                             f"**{fmt(sc['p50_ratio'], 2)}x**", *[""] * 7)]])
    sizes = md_table("| reference rows | warehouse file MiB | RSS after start-up | after warm-up | "
                     + " | ".join(f"after {n} / peak" for n in names) + " | idle at end | "
                     + " | ".join(f"{n} p50 join / no join ms (ratio)" for n in names) + " |",
                     "r" * (5 + 2 * len(names)), [
                         (size["label"], fmt(size["db_mib"]), fmt(mem["after_start"], 0), fmt(mem["after_warm_up"], 0),
                          *(f"{fmt(mem.get('after ' + n), 0)} / {fmt(mem.get('peak ' + n), 0)}" for n in names),
                          fmt(mem["idle_at_end"], 0),
                          *(f"{fmt(sc['join']['latency_ms']['p50'], 2)} / {fmt(sc['no join']['latency_ms']['p50'], 2)} "
                            f"({fmt(sc['p50_ratio'], 2)}x)" for sc in (by_name[n] for n in names)))
                         for size in results["sizes"]
                         for mem, by_name in [(size["rss_mib"], {s["name"]: s for s in size["scenarios"]})]])
    prof = md_table("| reference rows | engine in-process join / no join ms (ratio) | DuckDB alone, 1 thread (ratio) "
                    "| DuckDB alone, 2 threads (ratio) | row groups the join scans | plan | other procs' CPU (cores) |",
                    "rrrrccr", [
                        (p["label"], *(pair(p[k]) for k in ("engine", "duckdb", "duckdb_2_threads")),
                         p["duckdb"]["row_groups_scanned"],
                         f"{p['duckdb']['join_type']} join, {p['duckdb']['scan_type']}",
                         fmt(p["other_processes_cores"], 2)) for p in results["profile"]])
    return "\n".join([
        f"# Reference-data benchmark{' (quick run)' if results['quick'] else ''}", "",
        machine_line(m, "duckdb") + git_and_load(m, results["load"]), "",
        f"Project bench/projects/reference: `{ENDPOINTS['join']}` joins request lines to `items` in the warehouse "
        f"snapshot, `{ENDPOINTS['no join']}` computes the same answer without it; {int(MISS_RATE * 100)}% of the keys "
        "missing. `python -m bench.reference` regenerates this file; docs/benchmarks.md (Reference data) says how.", "",
        f"## {label(main['rows'])} reference rows", "", rows, "",
        "## Targets", "", *target_lines(results["targets"]), "",
        "## Memory and latency by warehouse", "",
        "Server RSS in MiB: after start-up, after warm-up, after each scenario / its peak, idle at the end.", "",
        sizes, "", "## Where the join's time goes (in-process, 9-row requests)", "",
        "p50 of duckapi's engine in this process, and of DuckDB alone running the served statements on a connection "
        "set up like a lane; row groups from `explain analyze`.", "", prof, "",
    ])


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, "reference", run, markdown, "two sizes, tiny request counts: a smoke run under a minute",
                      argv, seed=20261201)


if __name__ == "__main__":
    sys.exit(main())
