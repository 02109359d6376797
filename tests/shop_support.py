"""The shop example (examples/shop/) for the batch and equality tests.

Two inputs (stg_orders, stg_payments), reference data (the seeds customers and
prices, read from the dbt-built warehouse), two endpoints (/customers/, /orders/).
Built once per test process into a temp folder; seeded random datasets of orders and
payments, and an independent Python oracle for both endpoints' answers.
"""

from __future__ import annotations

import atexit
import csv
import datetime as dt
import json
import random
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from duckapi.dbt import project
from duckapi.api.app import create_app
from duckapi.settings import REPO_ROOT, Settings
from tests.conftest import Built
from tests.payloads import INT64_MAX, INT64_MIN

SHOP = REPO_ROOT / "examples" / "shop"
ENDPOINTS = ("/customers/", "/orders/")
#: The inputs' columns as files carry them (JSON-native values; dates as ISO strings).
ORDER_TYPES = {"order_id": pa.int64(), "customer_id": pa.int64(), "product_id": pa.int64(),
               "quantity": pa.int32(), "order_date": pa.date32()}
PAYMENT_TYPES = {"payment_id": pa.int64(), "order_id": pa.int64(), "payment_method": pa.string(),
                 "amount_cents": pa.int64()}

Rows = list[dict[str, Any]]


@lru_cache(maxsize=1)
def shop_build() -> Built:
    """`dbt build` of the shop example (seeds, models, its data tests) into a temp warehouse."""
    folder = Path(tempfile.mkdtemp(prefix="duckapi-shop-"))
    atexit.register(shutil.rmtree, folder, True)
    settings = Settings.from_env(env={}, project_dir=SHOP, db_path=folder / "shop.duckdb", target_path=folder / "target")
    return Built(settings, project.build(settings))


@pytest.fixture(scope="session")
def shop_client() -> Iterator[TestClient]:
    """The shop served in-process (import this fixture into a test module to use it)."""
    shop = shop_build()
    with TestClient(create_app(shop.settings, shop.manifest)) as test_client:
        yield test_client


def shop_answer(client: TestClient, path: str, orders: Rows, payments: Rows) -> bytes:
    """POST <path> with a JSON body keyed by input name: the API's answer."""
    body = json.dumps({"stg_orders": orders, "stg_payments": payments}).encode()
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    return response.content


def _seed(name: str) -> list[dict[str, str]]:
    with (SHOP / "seeds" / f"{name}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def random_shop(seed: int, orders: int, payments: int, unknown: float = 0.1) -> tuple[Rows, Rows]:
    """Orders (unique ids, some of customers or products missing from the seeds) and
    payments (several per order, some for unknown orders, refunds, null methods)."""
    rng = random.Random(seed)
    customers = [int(c["customer_id"]) for c in _seed("customers")]
    products = [int(p["product_id"]) for p in _seed("prices")]
    strangers, unpriced = [0, 77, INT64_MAX, INT64_MIN], [999, -1]
    order_ids = rng.sample(range(1, 10 * orders + 10), orders)
    if orders:
        order_ids[0] = INT64_MAX  # 64-bit extremes as ids
    order_rows = [
        {
            "order_id": order_id,
            "customer_id": rng.choice(strangers) if rng.random() < unknown else rng.choice(customers),
            "product_id": rng.choice(unpriced) if rng.random() < unknown else rng.choice(products),
            "quantity": rng.randint(0, 40),
            "order_date": (dt.date(2020, 1, 1) + dt.timedelta(days=rng.randint(0, 2500))).isoformat(),
        }
        for order_id in order_ids
    ]
    methods = ["card", "voucher", "bank_transfer", None, "", "chèque \"ça\"", "🦆,\n"]
    payment_rows = [
        {
            "payment_id": payment_id,
            "order_id": rng.choice(order_ids) if order_ids and rng.random() >= unknown else rng.randint(-5, 5),
            "payment_method": rng.choice(methods),
            "amount_cents": rng.randint(-5_000, 1_000_000),
        }
        for payment_id in rng.sample(range(1, 10 * payments + 10), payments)
    ]
    return order_rows, payment_rows


def oracle(path: str, orders: Rows, payments: Rows) -> Rows:
    """What /orders/ (order_totals) or /customers/ (customer_orders) answers, in plain Python
    (rows in any order: compare with `same_rows`)."""
    prices = {int(p["product_id"]): int(p["unit_price_cents"]) for p in _seed("prices")}
    customers = {int(c["customer_id"]): c for c in _seed("customers")}
    known = {o["order_id"] for o in orders}
    paid: dict[int, list[int]] = {}
    for p in payments:
        if p["order_id"] in known:
            paid.setdefault(p["order_id"], []).append(p["amount_cents"])
    totals = []
    for o in orders:
        price = prices.get(o["product_id"])
        value = None if price is None else o["quantity"] * price
        amounts = paid.get(o["order_id"], [])
        totals.append({
            "order_id": o["order_id"], "customer_id": o["customer_id"], "order_date": o["order_date"],
            "order_value_cents": value, "payment_count": len(amounts), "paid_cents": sum(amounts),
            "balance_cents": None if value is None else value - sum(amounts),
        })
    if path == "/orders/":
        return totals
    per_customer: dict[int, list[dict[str, Any]]] = {}
    for t in totals:
        per_customer.setdefault(t["customer_id"], []).append(t)
    answer = []
    for customer_id, mine in per_customer.items():
        values = [t["order_value_cents"] for t in mine if t["order_value_cents"] is not None]
        value = sum(values) if values else None
        paid_cents = sum(t["paid_cents"] for t in mine)
        customer = customers.get(customer_id, {})
        answer.append({
            "customer_id": customer_id, "name": customer.get("name"), "segment": customer.get("segment"),
            "order_count": len(mine), "first_order_date": min(t["order_date"] for t in mine),
            "order_value_cents": value, "paid_cents": paid_cents,
            "balance_cents": None if value is None else value - paid_cents,
        })
    return answer


def same_rows(answer: Rows, expected: Rows) -> bool:
    key = lambda row: sorted((k, repr(v)) for k, v in row.items())  # noqa: E731
    return sorted(map(key, answer)) == sorted(map(key, expected))


def dataset_json(folder: Path) -> bytes:
    """A Parquet dataset's rows (`duckapi run -o folder/`), part files in name order, as the
    API's JSON body: what the batch and cluster tests compare with the API's answer."""
    import duckdb

    parts = sorted(str(p) for p in folder.glob("part-*.parquet"))
    assert parts, list(folder.iterdir())
    rows = duckdb.connect().execute("select to_json(o)::varchar from read_parquet($1) o", [parts]).fetchall()
    return ("[" + ",".join(text for (text,) in rows) + "]").encode()
