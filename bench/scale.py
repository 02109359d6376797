"""Scale: the shop (two inputs, reference seeds) at 10M and 100M input rows on DuckDB, Spark local and a 1-worker
standalone Spark cluster (tests/spark_cluster.py), side by side in one run: /customers/ as JSON, /orders/ as a
Parquet dataset, each command a process of its own (bench/batch.py's measurement); every engine's answers must be
the same rows in the same order. docs/benchmarks.md (Scale) says how it is measured.

    python -m bench.scale                    # 10M and 100M rows
    python -m bench.scale --rows 1000000     # a quick look; writes under bench/.work/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import duckdb
import psutil

from bench.batch import machine, measured
from bench.harness import BENCH, MIB, ROOT, Result, measure_command, write_results

WORK = BENCH / ".work" / "scale"
SHOP = ROOT / "examples" / "shop"
SEED = 20261206
ENGINES = ("duckdb", "spark local", "cluster")
ENDPOINTS = {"/customers/": "customers.json", "/orders/": "orders/"}


def generate(folder: Path, rows: int) -> tuple[Path, Path]:
    """Orders and payments, rows // 2 each, as Parquet (kept between runs): 100,000 customer ids, 5 products,
    a tenth of payments for unknown orders."""
    orders, payments = folder / f"orders-{rows}.parquet", folder / f"payments-{rows}.parquet"
    if not (orders.exists() and payments.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        half = rows // 2
        with duckdb.connect() as con:
            con.execute(f"""copy (select i as order_id, hash(i, {SEED}) % 100000 as customer_id,
                               101 + (hash(i, {SEED + 1}) % 5)::bigint as product_id,
                               (1 + hash(i, {SEED + 2}) % 10)::integer as quantity,
                               (date '2025-01-01' + (hash(i, {SEED + 3}) % 365)::integer)::date as order_date
                        from range({half}) t(i)) to '{orders}' (format parquet, row_group_size 1000000)""")
            con.execute(f"""copy (select j as payment_id, (hash(j, {SEED + 4}) % {half * 11 // 10})::bigint as order_id,
                           ['card', 'cash', 'voucher', null][1 + (hash(j, {SEED + 5}) % 4)::integer] as payment_method,
                               (hash(j, {SEED + 6}) % 20000)::bigint - 1000 as amount_cents
                        from range({half}) t(j)) to '{payments}' (format parquet, row_group_size 1000000)""")
    return orders, payments


def fingerprint(answer: Path) -> tuple[int, str]:
    """Rows and a digest that changes with any value or the order: of the bytes for a JSON
    answer; of each row's JSON with its place for a dataset (parts in name order)."""
    if not answer.is_dir():
        data = answer.read_bytes()
        return len(json.loads(data)), hashlib.blake2b(data, digest_size=8).hexdigest()
    count, digest = duckdb.connect().execute(
        "select count(*), bit_xor(hash(n, j))::varchar from (select row_number() over (order by filename, "
        "file_row_number) n, to_json(struct_pack(*columns(* exclude (filename, file_row_number))))::varchar j "
        "from read_parquet($1, filename = true, file_row_number = true))",
        [sorted(str(p) for p in answer.glob("part-*.parquet"))]).fetchone()
    return int(count), str(digest)


def run(sizes: list[int], timeout: float) -> Result:
    from tests.spark_cluster import standalone_cluster

    started = time.perf_counter()
    WORK.mkdir(parents=True, exist_ok=True)
    base = {**os.environ, "DUCKAPI_TARGET_PATH": str(WORK / "target"), "DUCKAPI_DB_PATH": str(WORK / "shop.duckdb")}
    duckapi = [sys.executable, "-m", "duckapi.cli"]
    results: Result = {"machine": machine(), "seed": SEED, "runs": [], "checks": []}
    with standalone_cluster(WORK / "cluster", cores=2, memory="10g") as master:
        worker = next(p for p in psutil.process_iter(["cmdline"]) if "org.apache.spark.deploy.worker.Worker" in
                      " ".join(p.info["cmdline"] or []) and master.rsplit(":", 1)[1] in " ".join(p.info["cmdline"]))
        for folder in ("catalog", "spark-warehouse"):
            shutil.rmtree(WORK / folder, ignore_errors=True)
        cluster_env = {**base, "DUCKAPI_SPARK_MASTER": master, "DUCKAPI_SPARK_CATALOG": str(WORK / "catalog"),
                       "DUCKAPI_SPARK_CATALOG_WAREHOUSE": str(WORK / "spark-warehouse"),
                       "DUCKAPI_SPARK_EXECUTOR_MEMORY": "8g"}
        for engine, env, target_args in (("duckdb", base, []), ("cluster", cluster_env, ["--target", "cluster"])):
            built = measure_command([*duckapi, "build", "--project", str(SHOP), *target_args], env, timeout)
            assert built["exit_code"] == 0, built["stderr_tail"]
            results["runs"].append({"engine": engine, "step": "build", **built})
        engine_args = {"duckdb": (base, ["--engine", "duckdb"]), "spark local": (base, ["--engine", "spark"]),
                       "cluster": (cluster_env, ["--engine", "spark", "--target", "cluster"])}
        for rows in sizes:
            print(f"generating {rows:,} rows", flush=True)
            orders, payments = generate(WORK / "data", rows)
            answers: dict[tuple[str, str], Path] = {}
            for engine in ENGINES:
                env, args = engine_args[engine]
                for endpoint, out in ENDPOINTS.items():
                    answer = WORK / "answers" / f"{rows}-{engine.replace(' ', '-')}-{out}"
                    answer.parent.mkdir(parents=True, exist_ok=True)
                    shutil.rmtree(answer, ignore_errors=True) if answer.is_dir() else answer.unlink(missing_ok=True)
                    print(f"  {engine} {endpoint} ...", end="", flush=True)
                    r = measure_command([*duckapi, "run", "--project", str(SHOP), *args, "--endpoint", endpoint,
                                         f"stg_orders={orders}", f"stg_payments={payments}", "-o", str(answer) + "/" *
                                         out.endswith("/")], env, timeout, also=[worker] if engine == "cluster" else [])
                    failed = " (FAILED)" if r["exit_code"] else ""
                    print(f" {r['seconds']:.1f} s, peak {r['peak_rss_mib']:,} MiB{failed}", flush=True)
                    results["runs"].append({"engine": engine, "rows": rows, "endpoint": endpoint, "input_mib": round(
                        (orders.stat().st_size + payments.stat().st_size) / MIB), **r})
                    if r["exit_code"] == 0:
                        answers[(engine, endpoint)] = answer
            for endpoint in ENDPOINTS:
                prints = {e: fingerprint(answers[(e, endpoint)]) for e in ENGINES if (e, endpoint) in answers}
                same = len(prints) == len(ENGINES) and len(set(prints.values())) == 1
                results["checks"].append({"rows": rows, "endpoint": endpoint, "answer_rows": next(iter(
                    prints.values()))[0], "check": "the same rows in the same order on every engine", "pass": same})
                print(f"  check {endpoint}: {'ok' if same else 'FAILED'} {prints}", flush=True)
    results["total_s"] = round(time.perf_counter() - started, 1)
    return results


def markdown(results: Result) -> str:
    runs, builds = [r for r in results["runs"] if not r.get("step")], [r for r in results["runs"] if r.get("step")]
    return "\n".join([
        "# Scale: the shop on DuckDB, Spark local and a standalone cluster", "",
        measured(results["machine"], "scale") + " Half the input rows are orders, half payments; /customers/ is "
        "written as JSON (100,000 rows), /orders/ as a Parquet dataset (one row per order; on Spark by the executors). "
        "The cluster is one master and one 2-core worker on the same 2 cores.", "",
        "| input rows | endpoint | engine | wall time | peak memory (process tree, + executors) "
        "| other processes' CPU |",
        "|---:|---|---|---:|---:|---:|",
        *(f"| {r['rows']:,} | {r['endpoint']} | {r['engine']} | {'' if r['exit_code'] == 0 else 'failed after '}"
          f"{r['seconds']:,.1f} s | {r['peak_rss_mib']:,} MiB | {r['other_cpu_pct']}% |" for r in runs), "",
        "Builds of the reference data: " + "; ".join(f"{r['engine']} {r['seconds']:.1f} s" for r in builds) + ".", "",
        "Checks after timing:", "",
        *(f"* {c['rows']:,} rows, {c['endpoint']} ({c['answer_rows']:,} answer rows): {c['check']}: "
          f"{'pass' if c['pass'] else 'FAIL'}" for c in results["checks"]),
        "", f"Total benchmark time: {results['total_s'] / 60:.1f} min.", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 100_000_000])
    parser.add_argument("--timeout", type=float, default=3600, help="kill any one command after this many seconds")
    args = parser.parse_args()
    folder = BENCH if args.rows == [10_000_000, 100_000_000] else WORK
    results = run(sorted(args.rows), args.timeout)
    write_results(results, folder / "scale_results.json", folder / "SCALE_RESULTS.md", markdown, ascii=True)
    if not all(c["pass"] for c in results["checks"]):
        raise SystemExit("an answer check failed")


if __name__ == "__main__":
    main()
