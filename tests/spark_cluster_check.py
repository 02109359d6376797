"""The cluster checks too long for the suite, or needing PostgreSQL (`python -m bench.cluster`
runs this file with tests/test_spark_cluster.py, whose cluster fixture it uses; `make test`
collects test_*.py only).

* The bundled project runs on the cluster as the API answers (moved here, like the next, to keep
  the suite under 10 minutes).
* A Spark Connect server whose driver runs on the cluster with the target's catalog answers
  `--spark-remote` as DuckDB does (~30 s, moved here to keep the suite under 10 minutes).
* A rebuild while nothing runs is picked up by the next run: the shop's prices doubled and
  built again on both engines, the next `duckapi run` on the cluster reads the new seed from
  the catalog and answers as DuckDB does over the rebuilt warehouse.
* A metastore on PostgreSQL (Debian's postgresql and JDBC driver packages) is shared by
  several processes at once, which embedded Derby refuses: a Spark Connect server holds the
  catalog while `duckapi build --target cluster` writes it from another JVM, then the
  server answers from what that build wrote.
"""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from fastapi.testclient import TestClient

from duckapi.dbt import profiles
from duckapi.settings import BUNDLED_PROJECT
from tests.spark_cluster import connect_server, postgres_server
from tests.shop_support import shop_answer, shop_client  # noqa: F401  (a fixture)
from tests.test_spark_cluster import Cluster, cluster, duckapi  # noqa: F401  (the module's fixture)


def connect_conf(
    cluster: Cluster, env: dict[str, str], monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> dict[str, str]:
    """The cluster target's Spark settings with `env` set (the profile's server_side_parameters),
    as a Connect server on the cluster takes them: without the master, which it is given."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    conf = profiles.spark_conf(cluster.shop, "cluster")
    conf.pop("spark.master")
    return conf


def duckdb_answer(cluster: Cluster, db: str, out: str) -> bytes:  # noqa: F811
    """/customers/ on DuckDB over the cluster's rows, the shop (as it is now) built into `db` first."""
    duck = {**cluster.env, "DUCKAPI_DB_PATH": str(cluster.folder / db)}
    duckapi("build", "--project", str(cluster.shop), env=duck)
    duckapi("run", "--project", str(cluster.shop), "--engine", "duckdb", "--endpoint", "/customers/", *cluster.inputs,
            "--output", str(cluster.folder / out), env=duck)
    return (cluster.folder / out).read_bytes()


def test_the_bundled_project_on_the_cluster(cluster: Cluster, client: TestClient) -> None:  # noqa: F811
    bundled = cluster.folder / "bundled"
    shutil.copytree(BUNDLED_PROJECT, bundled, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    rows = [{"group_id": "a", "event_value": 1}, {"group_id": "b", "event_value": 2}, {"group_id": "a", "event_value": 3}]
    (cluster.folder / "events.json").write_text(json.dumps(rows))
    on_cluster = cluster.run("", "bundled.json", project=bundled, inputs=[str(cluster.folder / "events.json")])
    assert on_cluster.read_bytes() == client.post("/analyse_data/", json=rows).content


def test_spark_connect_on_the_cluster_reads_the_same_catalog(
    cluster: Cluster, shop_client: TestClient, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """A Connect server whose driver runs on the cluster with the target's catalog settings:
    `--spark-remote` answers as DuckDB does."""
    conf = connect_conf(cluster, cluster.env, monkeypatch)
    with connect_server(cluster.folder / "connect", cluster.master, conf) as remote:
        answer = cluster.run("/customers/", "customers-connect.json", "--spark-remote", remote)
    assert answer.read_bytes() == shop_answer(shop_client, "/customers/", cluster.orders, cluster.payments)


def test_a_rebuild_is_picked_up_by_the_next_run(cluster: Cluster) -> None:  # noqa: F811
    before = duckdb_answer(cluster, "shop.duckdb", "before.json")
    assert cluster.run("/customers/", "cluster-before.json").read_bytes() == before
    prices = cluster.shop / "seeds" / "prices.csv"
    with prices.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["unit_price_cents"] = str(int(row["unit_price_cents"]) * 2)
    with prices.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    doubled = duckdb_answer(cluster, "shop.duckdb", "doubled.json")
    assert doubled != before
    duckapi("build", "--project", str(cluster.shop), "--target", "cluster", env=cluster.env)
    assert cluster.run("/customers/", "cluster-doubled.json").read_bytes() == doubled


def test_a_postgresql_metastore_is_shared_by_processes_at_once(cluster: Cluster, monkeypatch) -> None:  # noqa: F811
    with postgres_server() as url:
        env = {**cluster.env, "DUCKAPI_SPARK_CATALOG": url, "DUCKAPI_SPARK_CATALOG_USER": "postgres",
               "DUCKAPI_SPARK_CATALOG_JARS": "/usr/share/java/postgresql.jar",
               "DUCKAPI_SPARK_CATALOG_WAREHOUSE": str(cluster.folder / "pg-warehouse")}
        conf = connect_conf(cluster, env, monkeypatch)
        conf["spark.cores.max"] = "1"  # a standalone app takes every free core: leave one for the build
        with connect_server(cluster.folder / "pg-connect", cluster.master, conf) as remote:
            # The server has the catalog open (a first query reads it); a build writes it meanwhile.
            cluster.run("/customers/", "pg-missing.json", "--spark-remote", remote, env=env, expect=1)
            duckapi("build", "--project", str(cluster.shop), "--target", "cluster", env=env)
            out = cluster.run("/customers/", "pg-customers.json", "--spark-remote", remote, env=env)
    # DuckDB over the same project (whose prices an earlier test of this module may have changed).
    expected = duckdb_answer(cluster, "pg-shop.duckdb", "pg-duckdb.json")
    assert out.read_bytes() == expected and json.loads(expected)
