"""Reference data: relations a served model reads that do not depend on the request.

They come from the dbt-built warehouse, read-only, through a private snapshot: the
server never locks the file (`duckapi build` succeeds while it runs), never writes
it, and serves the new data after a reload, one version per request.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pytest
from fastapi.testclient import TestClient

from duckapi.dbt import project
from duckapi.api.app import create_app
from duckapi.pipeline import PipelineError
from duckapi.serving.service import compile_project
from tests.conftest import copy_shop as _copy_shop, settings_in
from tests.servers import Server, running_server

ORDERS = [
    {"order_id": 1, "customer_id": 1, "product_id": 101, "quantity": 2, "order_date": "2026-01-05"},
    {"order_id": 2, "customer_id": 2, "product_id": 103, "quantity": 1, "order_date": "2026-01-06"},
]
PAYMENTS = [{"payment_id": 1, "order_id": 1, "payment_method": "card", "amount_cents": 100}]
BODY = {"stg_orders": ORDERS, "stg_payments": PAYMENTS}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "duckapi.cli", *args], capture_output=True, text=True, timeout=300)


def test_models_lists_inputs_and_reference_relations(shop: TestClient) -> None:
    models = {m["path"]: m for m in shop.get("/models").json()}
    assert set(models) == {"/customers/", "/orders/"}
    customers = models["/customers/"]
    assert [i["name"] for i in customers["inputs"]] == ["stg_orders", "stg_payments"]
    assert [c["name"] for c in customers["inputs"][1]["columns"]] == ["payment_id", "order_id", "payment_method", "amount_cents"]
    references = {r["name"]: r for r in customers["references"]}
    assert set(references) == {"customers", "prices"}
    assert references["prices"] == {"name": "prices", "kind": "seed", "relation": '"shop"."main"."prices"'}
    assert {r["name"] for r in models["/orders/"]["references"]} == {"prices"}


def test_answer_joins_the_request_with_the_warehouse(shop: TestClient) -> None:
    response = shop.post("/customers/", json=BODY)
    assert response.status_code == 200, response.text
    by_id = {row["customer_id"]: row for row in response.json()}
    assert by_id[1]["name"] == "Ada Lovelace" and by_id[1]["order_value_cents"] == 2 * 1299
    assert by_id[1]["paid_cents"] == 100 and by_id[2]["paid_cents"] == 0
    assert by_id[2]["segment"] == "business" and by_id[2]["order_value_cents"] == 8999


def test_requests_never_write_the_warehouse(shop: TestClient) -> None:
    db = shop.app.state.service.settings.db_path  # type: ignore[attr-defined]
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for body in (BODY, {"stg_orders": ORDERS}, {"stg_orders": [{"order_id": "x"}], "stg_payments": []}, BODY):
        shop.post("/customers/", json=body)
        shop.post("/orders/", json=body)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    # and the server holds no lock on it: a writer can open it right now
    duckdb.connect(str(db)).close()


def test_missing_reference_relation_stops_start_up(tmp_path: Path) -> None:
    folder = _copy_shop(tmp_path)
    settings = settings_in(tmp_path, project_dir=folder)
    with pytest.raises(PipelineError, match=r"customer_orders reads .*seed customers \(\"dev\".\"main\".\"customers\"\).*run `duckapi build --project "
                       + re.escape(str(folder)) + " --db " + re.escape(str(settings.db_path)) + "`"):
        create_app(settings)  # nothing built yet: no warehouse file
    project.build(settings)
    with duckdb.connect(str(settings.db_path)) as con:
        con.execute('drop table "main"."prices"')
    with pytest.raises(PipelineError, match=r"reads seed prices \(\"dev\".\"main\".\"prices\"\), which is not in") as caught:
        create_app(settings)
    assert "customers (" not in str(caught.value)  # names only what is missing


def _names_and_values(answer: list[dict[str, Any]]) -> tuple[str, int]:
    ada = next(row for row in answer if row["customer_id"] == 1)
    return ada["name"], ada["order_value_cents"]


@pytest.mark.parametrize("how", ["sighup", "reload"])
def test_rebuild_while_serving_then_reload(tmp_path: Path, how: str) -> None:
    """`duckapi build` succeeds while the server runs; after SIGHUP (or by --reload) the
    new data is served, no request fails during the switch, and every answer comes
    from one version: the customer's name and the price change together."""
    folder = _copy_shop(tmp_path)
    settings = settings_in(tmp_path, project_dir=folder)
    project.build(settings)
    compile_project(settings)  # in this process's warm dbt child: the server's start-up reuses it
    db = settings.db_path
    env = {"DUCKAPI_TARGET_PATH": str(tmp_path / "target"), "DUCKAPI_RELOAD_INTERVAL": "0.3"}
    args = ["--project", str(folder), "--db", str(db)] + (["--reload"] if how == "reload" else [])
    with running_server(args, env, tmp_path) as server:
        old = ("Ada Lovelace", 2 * 1299)
        assert _post(server) == (200, old)
        seen: list[tuple[int, Any]] = []
        stop = threading.Event()

        def hammer() -> None:
            while not stop.wait(0.02):  # steady traffic, leaving the cores to dbt
                seen.append(_post(server))

        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            (folder / "seeds" / "customers.csv").write_text(
                (folder / "seeds" / "customers.csv").read_text().replace("Ada Lovelace", "Ada King")
            )
            (folder / "seeds" / "prices.csv").write_text(
                (folder / "seeds" / "prices.csv").read_text().replace("101,1299", "101,1300")
            )
            rebuilt = _cli("build", "--project", str(folder), "--db", str(db))
            assert rebuilt.returncode == 0, rebuilt.stderr  # the server holds no lock
            if how == "sighup":
                server.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
            new = ("Ada King", 2 * 1300)
            deadline = time.monotonic() + 90
            while _post(server) != (200, new):
                assert time.monotonic() < deadline, "the new data was not served"
                time.sleep(0.2)
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert seen and all(status == 200 for status, _ in seen), {s for s, _ in seen}
    assert {answer for _, answer in seen} <= {old, new}  # never a name of one version with a price of another


def _post(server: Server) -> tuple[int, Any]:
    status, body = server.request("POST", "/customers/", json.dumps(BODY).encode(), {"Content-Type": "application/json"})
    return status, _names_and_values(json.loads(body)) if status == 200 else body


def test_serve_on_a_fresh_clone_builds_the_warehouse_first(tmp_path: Path) -> None:
    """`duckapi serve --project examples/shop` as the README gives it: with no warehouse
    yet, serve builds it (as `duckapi build` would), then serves the shop's reference data."""
    folder = _copy_shop(tmp_path)
    assert not (folder / "shop.duckdb").exists()  # the path its profile names
    with running_server(["--project", str(folder)], {"DUCKAPI_TARGET_PATH": str(tmp_path / "target")}, tmp_path) as server:
        status, body = server.request("GET", "/models")
        assert status == 200 and {m["path"] for m in json.loads(body)} == {"/customers/", "/orders/"}
        orders = [{"order_id": 1, "customer_id": 1, "product_id": 1, "quantity": 2, "order_date": "2026-01-02"}]
        status, _ = server.request("POST", "/orders/", json.dumps({"stg_orders": orders, "stg_payments": []}).encode(),
                                   {"content-type": "application/json"})
        assert status == 200
    assert (folder / "shop.duckdb").exists()
