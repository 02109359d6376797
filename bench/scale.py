"""Scale: the shop at 10M and 100M input rows on DuckDB, Spark local and a 1-worker standalone cluster, /customers/ as
JSON, /orders/ as a Parquet dataset, each a process (bench/batch.py's measurement); docs/benchmarks.md (Scale).

    python -m bench.scale                    # 10M and 100M rows, about 25 minutes
    python -m bench.scale --quick            # 1M rows (or any --rows): writes under bench/.work/
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import time
from pathlib import Path

import duckdb
import psutil

from bench.batch import DUCKAPI, SIZES, machine, parquet, shown, size_options
from bench.harness import BENCH, MIB, ROOT, Result, bench_main, measure_command, quiet_first, report, target
from tests.spark_cluster import standalone_cluster

WORK = BENCH / ".work" / "scale"
SHOP, SEED = ROOT / "examples" / "shop", 20261206
ENDPOINTS = {"/customers/": "customers.json", "/orders/": "orders/"}
TITLE = "Scale: the shop on DuckDB, Spark local and a standalone cluster"
ABOUT = "Half the input rows are orders, half payments. The cluster's peak memory adds its worker's executors."


def generate(rows: int) -> tuple[Path, Path]:
    """Orders and payments, rows // 2 each: 100,000 customer ids, 5 products, a tenth of payments for unknown orders."""
    half = rows // 2
    orders = f"""select i as order_id, hash(i, {SEED}) % 100000 as customer_id,
        101 + (hash(i, {SEED + 1}) % 5)::bigint as product_id, (1 + hash(i, {SEED + 2}) % 10)::integer as quantity,
        (date '2025-01-01' + (hash(i, {SEED + 3}) % 365)::integer)::date as order_date from range({half}) t(i)"""
    payments = f"""select j as payment_id, (hash(j, {SEED + 4}) % {half * 11 // 10})::bigint as order_id,
        ['card', 'cash', 'voucher', null][1 + (hash(j, {SEED + 5}) % 4)::integer] as payment_method,
        (hash(j, {SEED + 6}) % 20000)::bigint - 1000 as amount_cents from range({half}) t(j)"""
    return (parquet(WORK / "data" / f"orders-{rows}.parquet", orders),
            parquet(WORK / "data" / f"payments-{rows}.parquet", payments))


def fingerprint(answer: Path) -> tuple[int, str]:
    """Rows and what changes with any value or the order: a JSON answer's bytes; a dataset's rows with their places."""
    if not answer.is_dir():
        return len(json.loads(data := answer.read_bytes())), str(hash(data))  # compared within this process
    return duckdb.connect().execute(
        "select count(*), bit_xor(hash(n, j))::varchar from (select row_number() over (order by filename, "
        "file_row_number) n, to_json(struct_pack(*columns(* exclude (filename, file_row_number))))::varchar j "
        "from read_parquet($1, filename = true, file_row_number = true))",
        [sorted(str(p) for p in answer.glob("part-*.parquet"))]).fetchone()


def run(args: argparse.Namespace) -> Result:
    args.strict = True  # answers that differ fail the command
    started, load = time.perf_counter(), quiet_first(args)
    (WORK / "answers").mkdir(parents=True, exist_ok=True)
    base = {**os.environ, "DUCKAPI_TARGET_PATH": str(WORK / "target"), "DUCKAPI_DB_PATH": str(WORK / "shop.duckdb")}
    results: Result = {"machine": machine(), "load": load, "quick": args.quick, "runs": [], "targets": []}
    with standalone_cluster(WORK / "cluster", cores=2, memory="10g") as master:
        worker = next(p for p in psutil.Process().children() if "worker.Worker" in " ".join(p.cmdline()))
        shutil.rmtree(WORK / "spark", ignore_errors=True)  # the catalog and its warehouse, built afresh
        cluster = {**base, "DUCKAPI_SPARK_MASTER": master, "DUCKAPI_SPARK_CATALOG": str(WORK / "spark" / "catalog"),
                   "DUCKAPI_SPARK_CATALOG_WAREHOUSE": str(WORK / "spark" / "warehouse"),
                   "DUCKAPI_SPARK_EXECUTOR_MEMORY": "8g"}
        for engine, env, target_args in (("duckdb", base, []), ("cluster", cluster, ["--target", "cluster"])):
            built = measure_command([*DUCKAPI, "build", "--project", str(SHOP), *target_args], env, args.timeout)
            results["runs"].append({"engine": engine, "step": "build", **shown(f"{engine} build", built)})
        engines = {"duckdb": (base, ["--engine", "duckdb"]), "spark local": (base, ["--engine", "spark"]),
                   "cluster": (cluster, ["--engine", "spark", "--target", "cluster"])}
        for rows in sorted(args.rows or ([1_000_000] if args.quick else SIZES)):
            orders, payments = generate(rows)
            mib, answers = round((orders.stat().st_size + payments.stat().st_size) / MIB), {e: {} for e in ENDPOINTS}
            for (engine, (env, engine_args)), (endpoint, out) in itertools.product(engines.items(), ENDPOINTS.items()):
                answer = WORK / "answers" / f"{rows}-{engine.replace(' ', '-')}-{out}"
                r = shown(f"{rows:,} rows, {engine} {endpoint}", measure_command(
                    [*DUCKAPI, "run", "--project", str(SHOP), *engine_args, "--endpoint", endpoint,
                     f"stg_orders={orders}", f"stg_payments={payments}", "-o", str(answer) + "/" * out.endswith("/")],
                    env, args.timeout, also=[worker] if engine == "cluster" else []))
                results["runs"].append({"engine": engine, "rows": rows, "endpoint": endpoint, "input_mib": mib, **r})
                if r["exit_code"] == 0:  # (a failed run leaves the previous answer in place)
                    answers[endpoint][engine] = answer
            for endpoint, found in answers.items():  # checked after timing
                prints = {fingerprint(answer) for answer in found.values()}
                results["targets"].append(target(f"{rows:,} rows, {endpoint}: the same rows in the same order on "
                                                 "every engine", len(found) == len(engines) and len(prints) == 1,
                                                 ", ".join(f"{n:,} answer rows" for n, _ in sorted(prints))))
    return results | {"total_s": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, "scale", run, lambda r: report(TITLE, r, ABOUT), "1M rows", argv,
                      options=lambda parser: size_options(parser, timeout=3600))


if __name__ == "__main__":
    sys.exit(main())
