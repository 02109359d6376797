"""Scale: the shop (two inputs, reference seeds) at 10M and 100M input rows on DuckDB, Spark
local and a 1-worker standalone Spark cluster, side by side in one run.

Half the rows are orders, half payments (seeded Parquet, 100,000 customer ids of which 5
are in the customer list, prices for 4 of 5 products, a tenth of payments for unknown
orders). Each engine answers both endpoints, each command a process of its own, one at a
time: /customers/ as JSON (100,000 rows: collected to the driver on Spark) and /orders/
as a Parquet dataset (`-o orders/`: one row per order; on Spark the executors write the
part files, nothing is collected). The cluster is a master and one 2-core worker on
loopback (tests/spark_cluster.py); the shop is built into its persistent catalog first
(`duckapi build --target cluster`). Peak memory is the summed RSS of the command's
process tree plus, on the cluster, the worker's executors, sampled every 50 ms
(bench/batch.py `measure`). After timing, every engine's answers must be the same rows in
the same order.

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
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import duckdb
import psutil

from bench.batch import BENCH, MIB, ROOT, machine, measure

WORK = BENCH / ".work" / "scale"
SHOP = ROOT / "examples" / "shop"
SEED = 20261206
ENGINES = ("duckdb", "spark local", "cluster")


def generate(folder: Path, rows: int) -> tuple[Path, Path]:
    """Orders and payments, rows // 2 each, as Parquet (kept between runs)."""
    orders, payments = folder / f"orders-{rows}.parquet", folder / f"payments-{rows}.parquet"
    if orders.exists() and payments.exists():
        return orders, payments
    folder.mkdir(parents=True, exist_ok=True)
    half = rows // 2
    con = duckdb.connect()
    con.execute(f"""copy (select i as order_id, hash(i, {SEED}) % 100000 as customer_id,
                           101 + (hash(i, {SEED + 1}) % 5)::bigint as product_id,
                           (1 + hash(i, {SEED + 2}) % 10)::integer as quantity,
                           (date '2025-01-01' + (hash(i, {SEED + 3}) % 365)::integer)::date as order_date
                    from range({half}) t(i)) to '{orders}' (format parquet, row_group_size 1000000)""")
    con.execute(f"""copy (select j as payment_id, (hash(j, {SEED + 4}) % {half * 11 // 10})::bigint as order_id,
                           ['card', 'cash', 'voucher', null][1 + (hash(j, {SEED + 5}) % 4)::integer] as payment_method,
                           (hash(j, {SEED + 6}) % 20000)::bigint - 1000 as amount_cents
                    from range({half}) t(j)) to '{payments}' (format parquet, row_group_size 1000000)""")
    con.close()
    return orders, payments


def fingerprint(answer: Path) -> tuple[int, str]:
    """Rows and a digest that changes with any value or the order: of the bytes for a JSON
    answer; of each row's JSON with its place for a dataset (parts in name order)."""
    if not answer.is_dir():
        data = answer.read_bytes()
        return len(json.loads(data)), hashlib.blake2b(data, digest_size=8).hexdigest()
    parts = sorted(str(p) for p in answer.glob("part-*.parquet"))
    count, digest = duckdb.connect().execute(
        "select count(*), bit_xor(hash(n, j))::varchar from (select row_number() over (order by filename, file_row_number) n, "
        "to_json(struct_pack(*columns(* exclude (filename, file_row_number))))::varchar j "
        "from read_parquet($1, filename = true, file_row_number = true))", [parts]).fetchone()
    return int(count), str(digest)


def run(sizes: list[int], timeout: float) -> dict[str, Any]:
    from tests.spark_cluster import standalone_cluster

    started = time.perf_counter()
    WORK.mkdir(parents=True, exist_ok=True)
    target = WORK / "target"
    base = {**os.environ, "DUCKAPI_TARGET_PATH": str(target), "DUCKAPI_DB_PATH": str(WORK / "shop.duckdb")}
    duckapi = [sys.executable, "-m", "duckapi.cli"]
    results: dict[str, Any] = {"machine": machine(), "seed": SEED, "runs": [], "checks": []}
    with ExitStack() as stack:
        master = stack.enter_context(standalone_cluster(WORK / "cluster", cores=2, memory="10g"))
        worker = next(p for p in psutil.process_iter(["cmdline"]) if "org.apache.spark.deploy.worker.Worker" in
                      " ".join(p.info["cmdline"] or []) and master.rsplit(":", 1)[1] in " ".join(p.info["cmdline"]))
        shutil.rmtree(WORK / "catalog", ignore_errors=True)
        shutil.rmtree(WORK / "spark-warehouse", ignore_errors=True)
        cluster_env = {**base, "DUCKAPI_SPARK_MASTER": master, "DUCKAPI_SPARK_CATALOG": str(WORK / "catalog"),
                       "DUCKAPI_SPARK_CATALOG_WAREHOUSE": str(WORK / "spark-warehouse"),
                       "DUCKAPI_SPARK_EXECUTOR_MEMORY": "8g"}
        for env, target_args in ((base, []), (cluster_env, ["--target", "cluster"])):
            built = measure([*duckapi, "build", "--project", str(SHOP), *target_args], env, timeout)
            assert built["exit_code"] == 0, built["stderr_tail"]
            results["runs"].append({"engine": "cluster" if target_args else "duckdb", "step": "build", **built})
        engine_args = {"duckdb": (base, ["--engine", "duckdb"]), "spark local": (base, ["--engine", "spark"]),
                       "cluster": (cluster_env, ["--engine", "spark", "--target", "cluster"])}
        for rows in sizes:
            print(f"generating {rows:,} rows", flush=True)
            orders, payments = generate(WORK / "data", rows)
            answers: dict[tuple[str, str], Path] = {}
            for engine in ENGINES:
                env, args = engine_args[engine]
                for endpoint, out in (("/customers/", "customers.json"), ("/orders/", "orders/")):
                    answer = WORK / "answers" / f"{rows}-{engine.replace(' ', '-')}-{out}"
                    answer.parent.mkdir(parents=True, exist_ok=True)
                    shutil.rmtree(answer, ignore_errors=True) if answer.is_dir() else answer.unlink(missing_ok=True)
                    print(f"  {engine} {endpoint} ...", end="", flush=True)
                    r = measure([*duckapi, "run", "--project", str(SHOP), *args, "--endpoint", endpoint,
                                 f"stg_orders={orders}", f"stg_payments={payments}", "-o", f"{answer}{'/' if out.endswith('/') else ''}"],
                                env, timeout, also=[worker] if engine == "cluster" else [])
                    print(f" {r['seconds']:.1f} s, peak {r['peak_rss_mib']:,} MiB{' (FAILED)' if r['exit_code'] else ''}", flush=True)
                    results["runs"].append({"engine": engine, "rows": rows, "endpoint": endpoint,
                                            "input_mib": round((orders.stat().st_size + payments.stat().st_size) / MIB), **r})
                    if r["exit_code"] == 0:
                        answers[(engine, endpoint)] = answer
            for endpoint in ("/customers/", "/orders/"):
                prints = {engine: fingerprint(answers[(engine, endpoint)]) for engine in ENGINES if (engine, endpoint) in answers}
                same = len(prints) == len(ENGINES) and len(set(prints.values())) == 1
                results["checks"].append({"rows": rows, "endpoint": endpoint, "answer_rows": next(iter(prints.values()))[0],
                                          "check": "the same rows in the same order on every engine", "pass": same})
                print(f"  check {endpoint}: {'ok' if same else 'FAILED'} {prints}", flush=True)
    results["total_s"] = round(time.perf_counter() - started, 1)
    return results


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Scale: the shop on DuckDB, Spark local and a standalone cluster", "",
        f"Measured {m['date_utc']} on {m['cpu_count']} cores, {m['memory_gib']} GiB ({m['platform']}); "
        f"{', '.join(f'{k} {v}' for k, v in m['versions'].items())}. Command: `python -m bench.scale`; raw numbers in "
        "`bench/scale_results.json`. Half the input rows are orders, half payments; /customers/ is written as JSON "
        "(100,000 rows), /orders/ as a Parquet dataset (one row per order; on Spark by the executors). The cluster "
        "is one master and one 2-core worker on the same 2 cores.", "",
        "| input rows | endpoint | engine | wall time | peak memory (process tree, + executors) | other processes' CPU |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for r in results["runs"]:
        if r.get("step"):
            continue
        time_s = f"{r['seconds']:,.1f} s" if r["exit_code"] == 0 else f"failed after {r['seconds']:,.1f} s"
        lines.append(f"| {r['rows']:,} | {r['endpoint']} | {r['engine']} | {time_s} | {r['peak_rss_mib']:,} MiB "
                     f"| {r['other_cpu_pct']}% |")
    builds = [r for r in results["runs"] if r.get("step")]
    lines += ["", "Builds of the reference data: " + "; ".join(
        f"{r['engine']} {r['seconds']:.1f} s" for r in builds) + ".", "", "Checks after timing:", ""]
    lines += [f"* {c['rows']:,} rows, {c['endpoint']} ({c['answer_rows']:,} answer rows): {c['check']}: "
              f"{'pass' if c['pass'] else 'FAIL'}" for c in results["checks"]]
    lines += ["", f"Total benchmark time: {results['total_s'] / 60:.1f} min.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 100_000_000])
    parser.add_argument("--timeout", type=float, default=3600, help="kill any one command after this many seconds")
    args = parser.parse_args()
    default = args.rows == [10_000_000, 100_000_000]
    results = run(sorted(args.rows), args.timeout)
    folder = BENCH if default else WORK
    (folder / "scale_results.json").write_text(json.dumps(results, indent=2) + "\n")
    (folder / "SCALE_RESULTS.md").write_text(markdown(results))
    print(f"wrote {folder / 'SCALE_RESULTS.md'}")
    if not all(c["pass"] for c in results["checks"]):
        raise SystemExit("an answer check failed")


if __name__ == "__main__":
    main()
