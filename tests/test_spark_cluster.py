"""Spark for real: a standalone cluster on loopback with a persistent Hive catalog.

A master and a 2-core worker from the installed PySpark (tests/spark_cluster.py, stopped
by pid with every executor). The shop (two inputs, reference seeds) is built into the
catalog of its `cluster` target by `duckapi build --target cluster` through the cluster;
then `duckapi run --target cluster --engine spark --spark-master spark://...`, each in a
process of its own, reads the seeds from that catalog and runs on the cluster's executor:
/customers/ is byte-identical to the API's answer over the same rows, /orders/ is written
by the executors as a Parquet dataset holding the same rows in the same order. (The bundled
project on the cluster, a Spark Connect server on the cluster with the same catalog, a
rebuild picked up by the next run and a PostgreSQL metastore: tests/spark_cluster_check.py,
in `python -m bench.cluster` with this file.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import copy_shop
from tests.shop_support import ORDER_TYPES, PAYMENT_TYPES, Rows, dataset_json, random_shop, shop_answer, shop_client  # noqa: F401
from tests.spark_cluster import standalone_cluster
from tests.spark_support import require_java
from tests.test_equality import write_csv, write_parquet


def duckapi(*args: str, env: dict[str, str], expect: int = 0) -> None:
    """A duckapi command in a process of its own, exiting with `expect`."""
    done = subprocess.run([sys.executable, "-m", "duckapi.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == expect, (args, done.stdout[-3000:], done.stderr[-3000:])


@dataclass
class Cluster:
    master: str
    folder: Path
    shop: Path
    orders: Rows
    payments: Rows
    inputs: list[str]  # NAME=PATH of the same rows
    env: dict[str, str]  # the cluster target's env vars set

    def run(self, endpoint: str, out: str, *extra: str, project: Path | None = None,
            inputs: list[str] | None = None, env: dict[str, str] | None = None, expect: int = 0) -> Path:
        """`duckapi run` on the cluster in a process of its own (with the target's env vars,
        or `env`); `out` ending in / is a folder: a Parquet dataset."""
        args = ["--engine", "spark", "--target", "cluster", *(["--endpoint", endpoint] if endpoint else []), *extra]
        duckapi("run", "--project", str(project or self.shop), *args, *(inputs or self.inputs),
                "--output", f"{self.folder}/{out}", env=env or self.env, expect=expect)
        return self.folder / out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The cluster, with the shop built into its persistent catalog through it."""
    require_java()
    folder = tmp_path_factory.mktemp("cluster")
    shop = copy_shop(folder)
    orders, payments = random_shop(3, orders=80, payments=120, unknown=0.2)
    inputs = [f"stg_orders={write_parquet(orders, folder / 'orders.parquet', ORDER_TYPES)}",
              f"stg_payments={write_csv(payments, folder / 'payments.csv', PAYMENT_TYPES)}"]
    with standalone_cluster(folder / "spark") as master:
        env = {**os.environ, "DUCKAPI_TARGET_PATH": str(folder / "target"), "DUCKAPI_SPARK_MASTER": master,
               "DUCKAPI_SPARK_CATALOG": str(folder / "catalog"),
               "DUCKAPI_SPARK_CATALOG_WAREHOUSE": str(folder / "spark-warehouse")}
        duckapi("build", "--project", str(shop), "--target", "cluster", env=env)
        assert (folder / "catalog" / "metastore_db").is_dir()  # the persistent catalog
        yield Cluster(master, folder, shop, orders, payments, inputs, env)


def test_both_shop_endpoints_on_the_cluster_are_the_duckdb_answers(cluster: Cluster, shop_client: TestClient) -> None:
    """Reference data from the persistent catalog, read by a process of its own; the
    large-answer path (a folder output) written by the executors, in the API's order."""
    customers = cluster.run("/customers/", "customers.json")
    assert customers.read_bytes() == shop_answer(shop_client, "/customers/", cluster.orders, cluster.payments)
    orders = cluster.run("/orders/", "orders/")
    assert dataset_json(orders) == shop_answer(shop_client, "/orders/", cluster.orders, cluster.payments)

