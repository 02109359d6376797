"""Endpoints with several inputs: a JSON object keyed by input name, or multipart/form-data.

Over the shop example (examples/shop: inputs stg_orders and stg_payments), and a small
project with parts and vars (tests/projects/two_inputs).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.ipc
import pytest
from fastapi.testclient import TestClient

from duckapi.dbt import project
from duckapi.api.app import create_app
from tests.payloads import arrow_body, parquet_body
from tests.conftest import settings_in
from tests.test_reference_data import BODY, ORDERS, PAYMENTS

TWO_INPUTS = Path(__file__).resolve().parent / "projects" / "two_inputs"

ORDER_COLUMNS = ["order_id", "customer_id", "product_id", "quantity", "order_date"]


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _payments_table() -> pa.Table:
    return pa.table({
        "payment_id": pa.array([p["payment_id"] for p in PAYMENTS], pa.int64()),
        "order_id": pa.array([p["order_id"] for p in PAYMENTS], pa.int64()),
        "payment_method": pa.array([p["payment_method"] for p in PAYMENTS], pa.string()),
        "amount_cents": pa.array([p["amount_cents"] for p in PAYMENTS], pa.int64()),
    })


def test_json_object_keyed_by_input(shop: TestClient) -> None:
    response = shop.post("/orders/", json=BODY)
    assert response.status_code == 200, response.text
    totals = {row["order_id"]: row for row in response.json()}
    assert totals[1]["paid_cents"] == 100 and totals[1]["payment_count"] == 1
    assert totals[2]["paid_cents"] == 0 and totals[2]["balance_cents"] == 8999


def test_an_empty_array_means_no_rows(shop: TestClient) -> None:
    response = shop.post("/orders/", json={"stg_orders": ORDERS, "stg_payments": []})
    assert response.status_code == 200
    assert all(row["paid_cents"] == 0 for row in response.json())
    assert shop.post("/orders/", json={"stg_orders": [], "stg_payments": []}).json() == []


@pytest.mark.parametrize("body, status, input_name, text", [
    ({"stg_orders": ORDERS}, 422, "stg_payments", "input 'stg_payments' is missing"),
    ({**BODY, "stg_refunds": []}, 422, "stg_refunds", "unknown input(s) 'stg_refunds'"),
    ([{"order_id": 1}], 422, None, "cannot hold several inputs"),
    ({"stg_orders": ORDERS, "stg_payments": [{"payment_id": 1, "order_id": 1, "amount_cents": 1.5}]},
     422, "stg_payments", "input 'stg_payments': row 0, field 'amount_cents'"),
    ({"stg_orders": [ORDERS[0], {**ORDERS[1], "order_date": "yesterday"}], "stg_payments": []},
     422, "stg_orders", "input 'stg_orders': row 1, field 'order_date'"),
    ({"stg_orders": {"order_id": 1}, "stg_payments": []}, 422, "stg_orders", "input 'stg_orders'"),
])
def test_bad_bodies_name_the_input_row_and_field(shop: TestClient, body: Any, status: int, input_name: str | None,
                                                 text: str) -> None:
    response = shop.post("/orders/", json=body)
    assert response.status_code == status, response.text
    assert text in response.json()["detail"]
    assert response.json().get("input") == input_name
    assert shop.post("/orders/", json=BODY).status_code == 200  # and the next good request is answered


def test_malformed_json_is_a_400(shop: TestClient) -> None:
    response = shop.post("/orders/", content=b'{"stg_orders": [', headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "malformed JSON" in response.json()["detail"]


def test_multipart_parts_in_any_format_give_the_json_answer(shop: TestClient) -> None:
    expected = shop.post("/customers/", json=BODY).json()
    payments = _payments_table()
    ndjson = b"\n".join(json.dumps(p).encode() for p in PAYMENTS)
    for orders_part, payments_part in [
        (("o.csv", _csv(ORDERS, ORDER_COLUMNS), "text/csv"), ("p.parquet", parquet_body(payments), "application/vnd.apache.parquet")),
        (("o.json", json.dumps(ORDERS).encode(), "application/json"), ("p.arrow", arrow_body(payments), "application/vnd.apache.arrow.stream")),
        (("o.csv", _csv(ORDERS, ORDER_COLUMNS), "text/csv"), ("p.ndjson", ndjson, "application/x-ndjson")),
    ]:
        response = shop.post("/customers/", files={"stg_orders": orders_part, "stg_payments": payments_part})
        assert response.status_code == 200, response.text
        assert response.json() == expected


def test_multipart_errors_name_the_part(shop: TestClient) -> None:
    good = ("p.json", json.dumps(PAYMENTS).encode(), "application/json")
    bad_row = _csv([ORDERS[0], {**ORDERS[1], "quantity": "many"}], ORDER_COLUMNS)
    response = shop.post("/orders/", files={"stg_orders": ("o.csv", bad_row, "text/csv"), "stg_payments": good})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "input 'stg_orders': row 1, field 'quantity': 'many' is not a valid integer",
        "input": "stg_orders", "row": 1, "field": "quantity",
    }
    response = shop.post("/orders/", files={"stg_orders": ("o.txt", b"x", "text/plain"), "stg_payments": good})
    assert response.status_code == 415 and response.json()["input"] == "stg_orders"
    response = shop.post("/orders/", files={"stg_payments": good})
    assert response.status_code == 422 and response.json()["input"] == "stg_orders"
    response = shop.post("/orders/", content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"})
    assert response.status_code == 400 and "boundary" in response.json()["detail"]


def test_a_whole_csv_body_is_refused_with_how_to_send_it(shop: TestClient) -> None:
    response = shop.post("/orders/", content=_csv(ORDERS, ORDER_COLUMNS), headers={"Content-Type": "text/csv"})
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"] and "stg_payments" in response.json()["detail"]


def test_openapi_shows_the_object_of_inputs(shop: TestClient) -> None:
    post = shop.get("/openapi.json").json()["paths"]["/orders/"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["type"] == "object" and schema["required"] == ["stg_orders", "stg_payments"]
    assert schema["additionalProperties"] is False
    orders = schema["properties"]["stg_orders"]
    assert orders["type"] == "array" and set(orders["items"]["properties"]) == set(ORDER_COLUMNS)
    assert set(post["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]) == {"stg_orders", "stg_payments"}


def test_several_inputs_are_never_batched(shop: TestClient) -> None:
    state = shop.app.state.service.state  # type: ignore[attr-defined]
    assert not any(served.pipeline.batchable for served in state.endpoints.values())


def test_arrow_answer_for_several_inputs(shop: TestClient) -> None:
    response = shop.post("/orders/", json=BODY, headers={"Accept": "application/vnd.apache.arrow.stream"})
    assert response.status_code == 200
    table = pyarrow.ipc.open_stream(response.content).read_all()
    assert table.to_pylist() == [
        {**row, "order_date": dt.date.fromisoformat(row["order_date"])}
        for row in shop.post("/orders/", json=BODY).json()
    ]


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_in(tmp_path_factory.mktemp("two_inputs"), project_dir=TWO_INPUTS)
    with TestClient(create_app(settings, project.build(settings))) as client:
        yield client


def test_select_and_vars_work_with_several_inputs(two_inputs: TestClient) -> None:
    body = {"orders": [{"order_id": 1}, {"order_id": 2}],
            "payments": [{"order_id": 1, "amount": 100}, {"order_id": 2, "amount": 5}, {"order_id": 3, "amount": 7}]}
    assert two_inputs.post("/summary/", json=body).json() == [{"order_count": 2, "paid": 105}]
    assert two_inputs.post("/summary/?select=order_count", json=body).json() == [{"order_count": 2}]
    assert two_inputs.post('/summary/?vars={"min_amount": 10}', json=body).json() == [{"order_count": 2, "paid": 100}]
    assert two_inputs.post('/summary/?select=paid&vars={"min_amount": 10}', json=body).json() == [{"paid": 100}]
    response = two_inputs.post("/summary/?select=nope", json=body)
    assert response.status_code == 422 and "order_count, paid" in response.json()["detail"]
    assert [p["name"] for p in two_inputs.get("/openapi.json").json()["paths"]["/summary/"]["post"]["parameters"]] == [
        "select", "vars"]
