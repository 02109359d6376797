"""The cluster check too long for the suite: a rebuild of the reference data while nothing
runs is picked up by the next run (`python -m bench.cluster` runs this file with
tests/test_spark_cluster.py, whose cluster and persistent catalog it shares; `make test`
collects test_*.py only).

The shop's prices doubled and built again on both engines: the next `duckapi run` on
the cluster reads the new seed from the catalog and answers as DuckDB does over the
rebuilt warehouse, which differs from the first answer.
"""

from __future__ import annotations

import csv

from tests.test_spark_cluster import Cluster, cluster, duckapi  # noqa: F401  (the module's fixture)


def test_a_rebuild_is_picked_up_by_the_next_run(cluster: Cluster) -> None:  # noqa: F811
    duck = {**cluster.env, "DUCKAPI_DB_PATH": str(cluster.folder / "shop.duckdb")}
    duckdb_args = ["--engine", "duckdb", "--endpoint", "/customers/", *cluster.inputs]

    def on_duckdb(out: str) -> bytes:
        duckapi("run", "--project", str(cluster.shop), *duckdb_args, "--output", str(cluster.folder / out), env=duck)
        return (cluster.folder / out).read_bytes()

    duckapi("build", "--project", str(cluster.shop), env=duck)
    before = on_duckdb("before.json")
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
    duckapi("build", "--project", str(cluster.shop), env=duck)
    doubled = on_duckdb("doubled.json")
    assert doubled != before
    duckapi("build", "--project", str(cluster.shop), "--target", "cluster", env=cluster.env)
    assert cluster.run("/customers/", "cluster-doubled.json").read_bytes() == doubled
