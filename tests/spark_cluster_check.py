"""Spark for real: a standalone cluster on loopback with a persistent Hive catalog.

The shop (two inputs, reference seeds) is built into the catalog of its `cluster` target
by `duckapi build --target cluster` through the cluster; `duckapi run --target cluster
--engine spark --spark-master spark://...` then reads the seeds from that catalog, in a
process of its own, and runs the pipeline on the cluster's executor: the answer is
byte-identical to the DuckDB run over the same files; the second endpoint too; a rebuild
with changed prices on both engines is read by the next run; the bundled project runs there.
Everything started here is stopped by pid (tests/spark_cluster.py).

About 3.5 minutes: too long for the suite's 10 (`make test` collects test_*.py only), so
`python -m bench.cluster` runs it and commits the result (bench/CLUSTER_RESULTS.md). The
suite checks the cluster target's settings without a cluster (tests/test_batch.py).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

from duckapi.settings import BUNDLED_PROJECT
from tests.conftest import copy_shop
from tests.spark_cluster import standalone_cluster
from tests.spark_support import require_java
from tests.shop_support import ORDER_TYPES, PAYMENT_TYPES, random_shop
from tests.test_equality import write_csv, write_parquet


def duckapi(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "duckapi.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])


def answer(project: Path, engine_args: list[str], inputs: list[str], out: Path, env: dict[str, str]) -> bytes:
    duckapi("run", "--project", str(project), *engine_args, *inputs, "--output", str(out), env=env)
    return out.read_bytes()


def test_the_shop_and_the_bundled_project_on_a_standalone_cluster(tmp_path: Path) -> None:
    require_java()
    shop = copy_shop(tmp_path)
    bundled = tmp_path / "bundled"
    shutil.copytree(BUNDLED_PROJECT, bundled, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    orders, payments = random_shop(3, orders=80, payments=120, unknown=0.2)
    inputs = [f"stg_orders={write_parquet(orders, tmp_path / 'orders.parquet', ORDER_TYPES)}",
              f"stg_payments={write_csv(payments, tmp_path / 'payments.csv', PAYMENT_TYPES)}"]
    env = {**os.environ, "DUCKAPI_TARGET_PATH": str(tmp_path / "target")}
    duck = ["--engine", "duckdb", "--endpoint", "/customers/"]
    duckapi("build", "--project", str(shop), env=env)
    expected = answer(shop, duck, inputs, tmp_path / "duckdb.json", env)
    with standalone_cluster(tmp_path / "cluster") as master:
        cluster_env = {**env, "DUCKAPI_SPARK_MASTER": master, "DUCKAPI_SPARK_CATALOG": str(tmp_path / "catalog"),
                       "DUCKAPI_SPARK_CATALOG_WAREHOUSE": str(tmp_path / "spark-warehouse")}
        on_cluster = ["--engine", "spark", "--target", "cluster", "--spark-master", master, "--endpoint", "/customers/"]
        duckapi("build", "--project", str(shop), "--target", "cluster", env=cluster_env)
        assert (tmp_path / "catalog" / "metastore_db").is_dir()  # the persistent catalog
        assert answer(shop, on_cluster, inputs, tmp_path / "cluster.json", cluster_env) == expected
        orders_args = ["--endpoint", "/orders/"]
        assert answer(shop, on_cluster + orders_args, inputs, tmp_path / "orders-cluster.json", cluster_env) == answer(
            shop, duck + orders_args, inputs, tmp_path / "orders-duckdb.json", env)
        # A rebuild with other prices, on both: the next run reads the new seed.
        prices = shop / "seeds" / "prices.csv"
        with prices.open(newline="") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            row["unit_price_cents"] = str(int(row["unit_price_cents"]) * 2)
        with prices.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        duckapi("build", "--project", str(shop), env=env)
        doubled = answer(shop, duck, inputs, tmp_path / "duckdb-2.json", env)
        assert doubled != expected
        duckapi("build", "--project", str(shop), "--target", "cluster", env=cluster_env)
        assert answer(shop, on_cluster, inputs, tmp_path / "cluster-2.json", cluster_env) == doubled
        # The bundled project (no reference data) on the same cluster.
        rows_file = tmp_path / "events.csv"
        rows_file.write_text("group_id,event_value\na,1\nb,2\na,3\n")
        plain = answer(bundled, ["--engine", "duckdb"], [str(rows_file)], tmp_path / "bundled-duckdb.json", env)
        spark = answer(bundled, ["--engine", "spark", "--target", "cluster", "--spark-master", master], [str(rows_file)],
                       tmp_path / "bundled-cluster.json", cluster_env)
        assert spark == plain
