"""The Python API's cost over the DuckDB statement it runs: `Project.run` against the same SQL on a
plain connection set up as the engine sets up a lane, interleaved ABBA in one process (9 rows, and
1M rows from a pyarrow Table). docs/benchmarks.md (The Python API) says how it is measured.

    python -m bench.library           # full run, ~10 minutes: bench/library_results.json, bench/LIBRARY_RESULTS.md
    python -m bench.library --quick   # smoke run; writes under bench/.work/
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import duckdb
import numpy as np
import pyarrow as pa

import duckapi
from bench.harness import WORK, bench_main, fmt, group_pool, machine_info, md_table, small_rows, target, wait_for_quiet
from duckapi.dbt import project as dbt_project
from duckapi.engines.duckdb import SMALL_MODE
from duckapi.settings import BUNDLED_PROJECT, Settings

PATH = "/analyse_data/"
HERE = WORK / "library"


@dataclass(frozen=True)
class Plan:
    small_rounds: int = 8000  # the statement spreads widely here (p50 14, p90 17 ms): ±0.05 ms between runs at 3,000
    small_per_round: int = 1
    big_rows: int = 1_000_000
    big_rounds: int = 8


FULL = Plan()
QUICK = Plan(small_rounds=200, big_rows=100_000, big_rounds=2)


def alternate(sides: dict[str, Callable[[], Any]], rounds: int, per_round: int) -> dict[str, list[float]]:
    """Each side `per_round` times a round, sides in ABBA order; milliseconds per call.
    With per_round 1 the sides alternate call by call, so the machine's drift (this VM's
    speed changes by tens of percent within minutes) falls on both alike."""
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for fn in sides.values():  # warm-up: caches, plans, lanes
        for _ in range(3):
            fn()
    for r in range(rounds):
        if r % 50 == 0:
            gc.collect()
        for name in names if r % 2 == 0 else names[::-1]:
            for _ in range(per_round):
                started = time.perf_counter()
                sides[name]()
                times[name].append((time.perf_counter() - started) * 1000)
    return times


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 4),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 4), "mean_ms": round(statistics.fmean(ordered), 4)}


def raw_connection(project: duckapi.Project, small: bool) -> duckdb.DuckDBPyConnection:
    """A plain connection with a lane's configuration (threads, memory limit, external
    access off) and its settings for inputs of this size."""
    con = duckdb.connect(config=dict(project.service.engine._config))
    con.execute("set enable_external_access = false")
    for statement in SMALL_MODE if small else ():
        con.execute(statement)
    return con


def scenario(project: duckapi.Project, rows: list[dict[str, Any]] | pa.Table, json_answer: bool, rounds: int,
             per_round: int = 1) -> dict[str, Any]:
    """`project.run` against the statement it runs, on a plain connection set up as the engine sets up a lane for
    inputs of this size: small ones bound as parameter lists (one thread), a large table registered (every core)."""
    call = project.call(PATH)
    sql, params = project.service.engine._query(call.pipeline, call.rows(rows), "json" if json_answer else "arrow")[:2]
    con = raw_connection(project, small=params is not None)
    if params is None:
        con.register(call.pipeline.inputs[0].relation, rows)
    if json_answer:
        def statement() -> Any:
            return b"[" + b",".join(r[0].encode() for r in con.execute(sql, params).fetchall()) + b"]"

        def library() -> Any:
            return project.run(PATH, rows).json
    else:
        def statement() -> Any:
            return con.sql(sql, params=params).to_arrow_table()

        def library() -> Any:
            return project.run(PATH, rows).to_arrow()
    assert library() == statement() if json_answer else library().equals(statement())
    times = alternate({"project.run": library, "statement alone": statement}, rounds, per_round)
    con.close()
    diffs = [a - b for a, b in zip(times["project.run"], times["statement alone"])]  # call by call
    return {**({"rows": rows.num_rows} if params is None else {}), "sides": {k: summary(t) for k, t in times.items()},
            "difference": {"median_ms": round(statistics.median(diffs), 4),
                           "mean_ms": round(statistics.fmean(diffs), 4)}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    plan = QUICK if args.quick else FULL
    quiet = wait_for_quiet(args.max_load, args.wait_s) if args.max_load else None
    HERE.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env(env={}, project_dir=BUNDLED_PROJECT, db_path=HERE / "dev.duckdb",
                                 target_path=HERE / "target")
    manifest = dbt_project.build(settings)
    rng = np.random.default_rng(args.seed)
    pool = group_pool()
    nine = small_rows(rng, pool)
    big = pa.table({
        "group_id": pa.array([pool[i] for i in rng.integers(0, len(pool), plan.big_rows)], pa.string()),
        "event_value": pa.array(rng.integers(0, 500, plan.big_rows), pa.int64()),
    })
    scenarios, small = [], (plan.small_rounds, plan.small_per_round)
    with duckapi.Project(settings, manifest) as project:
        for name, measure in (
            ("9 rows (list of dicts) -> Answer.to_arrow()", lambda: scenario(project, nine, False, *small)),
            ("9 rows (list of dicts) -> Answer.json", lambda: scenario(project, nine, True, *small)),
            (f"{plan.big_rows:,} rows (pyarrow Table) -> Answer.to_arrow()",
             lambda: scenario(project, big, False, plan.big_rounds)),
        ):
            print(f"measuring {name}", flush=True)
            scenarios.append({"name": name, **measure()})
    return {
        "quick": args.quick, "seed": args.seed, "plan": plan.__dict__, "load": quiet,
        "machine": machine_info({}), "scenarios": scenarios, "targets": targets(scenarios),
        "total_s": round(time.perf_counter() - started, 1),
    }


def targets(scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for s in scenarios:
        lib, raw = s["sides"]["project.run"]["p50_ms"], s["sides"]["statement alone"]["p50_ms"]
        out.append(target(f"{s['name']}: p50 at most 1.1x the statement alone", lib / raw <= 1.1, f"{lib / raw:.3f}x")
                   if "rows" in s else
                   target(f"{s['name']}: p50 at most the statement alone + 0.3 ms", lib - raw <= 0.3,
                          f"{lib - raw:+.3f} ms (median of call-by-call differences "
                          f"{s['difference']['median_ms']:+.3f} ms)"))
    return out


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    sides = md_table("| scenario | side | calls | p50 ms | p90 ms | mean ms |", "llrrrr", [
        (s["name"], side, r["n"], *(fmt(r[k], 3) for k in ("p50_ms", "p90_ms", "mean_ms")))
        for s in results["scenarios"] for side, r in s["sides"].items()])
    met = md_table("| target | measured | met |", "lll", [
        (t["target"], t["measured"], "yes" if t["pass"] else "NO") for t in results["targets"]])
    return (f"# Python API benchmark{' (quick run)' if results['quick'] else ''}\n\n"
            f"`python -m bench.library{' --quick' if results['quick'] else ''}`, {m['date_utc']}, {m['cpu_count']} "
            f"cores, Python {m['python']}, duckdb {m['versions']['duckdb']}, pyarrow {m['versions']['pyarrow']}; "
            f"load average at the end {m['loadavg_at_end']}. Both sides in one process, interleaved (ABBA).\n\n"
            f"{sides}\n\n{met}\n\nTotal {results['total_s']} s.\n")


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, "library", run, markdown, "a smoke run of a few seconds", argv, 20261201)


if __name__ == "__main__":
    sys.exit(main())
