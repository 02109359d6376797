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
from typing import Any, Callable

import duckdb
import numpy as np
import pyarrow as pa

import duckapi
from bench.harness import WORK, bench_main, group_pool, machine_info, quiet_first, report, small_rows, target
from duckapi.dbt import project as dbt_project
from duckapi.engines.duckdb import SMALL_MODE
from duckapi.settings import BUNDLED_PROJECT, Settings

PATH = "/analyse_data/"
ABOUT = "`project.run` against the DuckDB statement it runs on a plain connection, in one process, call by call (ABBA)."
FULL = {"small_rounds": 8000, "big_rows": 1_000_000, "big_rounds": 8}  # 9 rows at 3,000: ±0.05 ms from run to run
QUICK = {"small_rounds": 200, "big_rows": 100_000, "big_rounds": 2}


def alternate(sides: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Milliseconds per call, the sides alternating call by call (ABBA) so that this VM's drift falls on both alike."""
    names, times = list(sides), {name: [] for name in sides}
    for fn in [*sides.values()] * 3:  # warm-up: caches, plans, lanes
        fn()
    for r in range(rounds):
        if r % 50 == 0:
            gc.collect()
        for name in names if r % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            sides[name]()
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def scenario(project: duckapi.Project, name: str, rows: list[dict[str, Any]] | pa.Table, as_json: bool,
             rounds: int) -> dict[str, Any]:
    """`project.run` against its statement on a plain connection set up as a lane for inputs of this size (threads,
    memory limit, external access off): small ones bound as parameter lists (one thread), a large table registered."""
    print(f"measuring {name}", flush=True)
    call = project.call(PATH)
    sql, params = project.service.engine._query(call.pipeline, call.rows(rows), "json" if as_json else "arrow")[:2]
    con = duckdb.connect(config=dict(project.service.engine._config))
    con.execute(";".join(["set enable_external_access = false", *(SMALL_MODE if params is not None else ())]))
    if params is None:
        con.register(call.pipeline.inputs[0].relation, rows)

    def statement() -> Any:
        if as_json:
            return b"[" + b",".join(r[0].encode() for r in con.execute(sql, params).fetchall()) + b"]"
        return con.sql(sql, params=params).to_arrow_table()

    def library() -> Any:
        return project.run(PATH, rows).json if as_json else project.run(PATH, rows).to_arrow()

    assert library() == statement() if as_json else library().equals(statement())
    times = alternate({"project.run": library, "statement alone": statement}, rounds)
    diffs = [a - b for a, b in zip(times["project.run"], times["statement alone"])]  # call by call
    return {"name": name, "rows": len(rows), "sides": {k: summary(t) for k, t in times.items()}, "difference": {
        "median_ms": round(statistics.median(diffs), 4), "mean_ms": round(statistics.fmean(diffs), 4)}}


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 4),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 4), "mean_ms": round(statistics.fmean(ordered), 4)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    started, load, plan = time.perf_counter(), quiet_first(args), QUICK if args.quick else FULL
    settings = Settings.from_env(env={}, project_dir=BUNDLED_PROJECT, db_path=WORK / "library" / "dev.duckdb",
                                 target_path=WORK / "library" / "target")
    rng, pool = np.random.default_rng(args.seed), group_pool()
    nine = small_rows(rng, pool)
    big = pa.table({"group_id": [pool[i] for i in rng.integers(0, len(pool), plan["big_rows"])],
                    "event_value": rng.integers(0, 500, plan["big_rows"])})
    with duckapi.Project(settings, dbt_project.build(settings)) as project:
        scenarios = [scenario(project, *s) for s in (
            ("9 rows (list of dicts) -> Answer.to_arrow()", nine, False, plan["small_rounds"]),
            ("9 rows (list of dicts) -> Answer.json", nine, True, plan["small_rounds"]),
            (f"{plan['big_rows']:,} rows (pyarrow Table) -> Answer.to_arrow()", big, False, plan["big_rounds"]))]
    return {"quick": args.quick, "seed": args.seed, "plan": plan, "load": load, "machine": machine_info({}),
            "scenarios": scenarios, "targets": [goal(s) for s in scenarios],
            "total_s": round(time.perf_counter() - started, 1)}


def goal(s: dict[str, Any]) -> dict[str, Any]:
    """Large inputs: p50 at most 1.1x the statement alone; 9 rows: at most 0.3 ms more."""
    lib, raw = (s["sides"][side]["p50_ms"] for side in ("project.run", "statement alone"))
    if s["rows"] > 9:
        return target(f"{s['name']}: p50 at most 1.1x the statement alone", lib / raw <= 1.1, f"{lib / raw:.3f}x")
    return target(f"{s['name']}: p50 at most the statement alone + 0.3 ms", lib - raw <= 0.3,
                  f"{lib - raw:+.3f} ms (median of call-by-call differences {s['difference']['median_ms']:+.3f} ms)")


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, "library", run, lambda r: report("Python API benchmark", r, ABOUT), "a smoke run", argv,
                      20261201)


if __name__ == "__main__":
    sys.exit(main())
