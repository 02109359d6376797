"""The HTTP contract of POST /analyse_data/, in-process (ASGI), against the oracle."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

from duckapi.api.app import create_app
from tests.conftest import Built
from tests.oracle import ANIMALS, analyse
from tests.payloads import INT64_MAX, INT64_MIN, random_rows

URL = "/analyse_data/"
SEVEN = [
    "group_sums", "group_sets", "group_event_value_histogram", "group_histogram",
    "hist_event_values", "hist_group_event_values", "hist_groups",
]


def post(client: TestClient, body: Any, **headers: str) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(URL, content=content, headers={"content-type": "application/json", **headers})


def test_animal_example(client: TestClient) -> None:
    response = post(client, ANIMALS)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer == analyse(ANIMALS)
    assert list(answer[0]) == SEVEN
    assert answer[0]["group_sums"] == [
        {"group_id": "🐇", "value_sum": 32}, {"group_id": "🐰", "value_sum": 12}, {"group_id": "🦆", "value_sum": 33}
    ]


def test_empty_list_has_the_same_shape(client: TestClient) -> None:
    response = post(client, [])
    assert response.status_code == 200
    assert response.json() == [{name: [] for name in SEVEN}]


@pytest.mark.parametrize("seed", range(25))
def test_random_payloads_match_the_oracle(client: TestClient, seed: int) -> None:
    rng = random.Random(seed)
    rows = random_rows(rng, rng.randint(1, 300), groups=rng.randint(1, 12), big=seed % 3 == 0)
    response = post(client, rows)
    assert response.status_code == 200, response.text
    assert response.json() == analyse(rows)


def test_sums_past_64_bits_are_exact(client: TestClient) -> None:
    rows = [{"group_id": "max", "event_value": INT64_MAX}] * 4 + [{"group_id": "min", "event_value": INT64_MIN}] * 4
    sums = post(client, rows).json()[0]["group_sums"]
    assert sums == [{"group_id": "max", "value_sum": 4 * INT64_MAX}, {"group_id": "min", "value_sum": 4 * INT64_MIN}]


def test_sql_text_in_values_is_just_data(client: TestClient) -> None:
    rows = [{"group_id": "'; drop view analysis; --", "event_value": 1}, {"group_id": 'x"); select 1; --', "event_value": 2}]
    assert post(client, rows).json() == analyse(rows)
    assert post(client, ANIMALS).json() == analyse(ANIMALS)


def test_extra_fields_are_ignored(client: TestClient) -> None:
    rows = [{"group_id": "a", "event_value": 1, "note": {"deep": [1, 2]}, "event": None}]
    assert post(client, rows).json() == analyse([{"group_id": "a", "event_value": 1}])


def test_charset_parameter_and_missing_content_type_are_json(client: TestClient) -> None:
    body = json.dumps(ANIMALS).encode()
    assert client.post(URL, content=body, headers={"content-type": "application/json; charset=utf-8"}).json() == analyse(ANIMALS)
    assert client.post(URL, content=body).json() == analyse(ANIMALS)


BAD_ROWS = [
    ({"group_id": "a"}, "event_value", "missing"),
    ({"event_value": 1}, "group_id", "missing"),
    ({"group_id": "a", "event_value": "7"}, "event_value", "got `str`"),
    ({"group_id": "a", "event_value": 1.5}, "event_value", "got `float`"),
    ({"group_id": "a", "event_value": 1e30}, "event_value", "got `float`"),  # whole, but past int64
    ({"group_id": "a", "event_value": True}, "event_value", "got `bool`"),
    ({"group_id": "a", "event_value": None}, "event_value", "got `null`"),
    ({"group_id": 7, "event_value": 1}, "group_id", "got `int`"),
    ({"group_id": None, "event_value": 1}, "group_id", "got `null`"),
    ({"group_id": ["a"], "event_value": 1}, "group_id", "got `array`"),
    ({"group_id": "a", "event_value": INT64_MAX + 1}, "event_value", "<= 9223372036854775807"),
    ({"group_id": "a", "event_value": INT64_MIN - 1}, "event_value", ">= -9223372036854775808"),
    ({"group_id": "a", "event_value": 10**30}, "event_value", "<="),
]


@pytest.mark.parametrize("bad,field,words", BAD_ROWS)
def test_bad_row_is_422_naming_row_and_field(client: TestClient, bad: dict[str, Any], field: str, words: str) -> None:
    rows = ANIMALS[:2] + [bad] + ANIMALS[2:]
    # json.dumps writes 2.0 and 1e3 as 2.0 and 1000.0: both are fractions, both must fail
    response = post(client, rows)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["row"] == 2 and error["field"] == field
    assert "row 2" in error["detail"] and field in error["detail"] and words in error["detail"]


@pytest.mark.parametrize("raw,value", [(b"1e3", 1000), (b"2E0", 2), (b"-0.0", 0), (b"1.0e+2", 100)])
def test_whole_numbers_spelled_as_floats_are_integers(client: TestClient, raw: bytes, value: int) -> None:
    """JSON Schema (OpenAPI 3.1) counts 2.0 as an integer, so the API does too (1.5 is refused: BAD_ROWS)."""
    response = post(client, b'[{"group_id": "a", "event_value": ' + raw + b"}]")
    assert response.status_code == 200, response.text
    assert response.json() == analyse([{"group_id": "a", "event_value": value}])
    # the same over 512 KB, where DuckDB reads the body instead of msgspec
    rows = 20_000
    big = b"[" + b",".join([b'{"group_id": "a", "event_value": ' + raw + b"}"] * rows) + b"]"
    assert len(big) > 512 * 1024
    response = post(client, big)
    assert response.status_code == 200, response.text
    assert response.json() == analyse([{"group_id": "a", "event_value": value}] * rows)


@pytest.mark.parametrize("raw", [b"2.5", b"1e30", b"-0.5"])
def test_fractions_and_out_of_range_floats_are_refused_at_any_size(client: TestClient, raw: bytes) -> None:
    for rows in (1, 20_000):
        body = b"[" + b",".join([b'{"group_id": "a", "event_value": ' + raw + b"}"] * rows) + b"]"
        response = post(client, body)
        assert response.status_code == 422, (rows, response.text)
        assert response.json()["row"] == 0 and response.json()["field"] == "event_value"


@pytest.mark.parametrize("body", [{"group_id": "a", "event_value": 1}, 5, "rows", None])
def test_body_that_is_not_a_list_is_422(client: TestClient, body: Any) -> None:
    response = post(client, body)
    assert response.status_code == 422
    assert "array" in response.json()["detail"]


def test_row_that_is_not_an_object_is_422(client: TestClient) -> None:
    response = post(client, [ANIMALS[0], [1, 2]])
    assert response.status_code == 422 and response.json()["row"] == 1


@pytest.mark.parametrize(
    "raw,words",
    [(b"[{", "malformed JSON"), (b"", "malformed JSON"), (b"[1,", "malformed JSON"),
     (b'[{"group_id": "a", "event_value": 1}] trailing', "malformed JSON"),
     (b'[{"group_id": "\xff\xfe", "event_value": 1}]', "UTF-8"), (b'["\xff"]', "UTF-8")],
)
def test_malformed_json_and_bad_utf8_are_400(client: TestClient, raw: bytes, words: str) -> None:
    response = post(client, raw)
    assert response.status_code == 400, response.text
    assert words in response.json()["detail"]


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/xml", "image/png"])
def test_unknown_content_type_is_415_listing_the_accepted_ones(client: TestClient, ctype: str) -> None:
    response = client.post(URL, content=json.dumps(ANIMALS).encode(), headers={"content-type": ctype})
    assert response.status_code == 415
    detail = response.json()["detail"]
    for accepted in ("application/json", "application/x-ndjson", "text/csv", "application/vnd.apache.parquet",
                     "application/vnd.apache.arrow.stream"):
        assert accepted in detail


def test_error_bodies_never_echo_a_large_input(client: TestClient) -> None:
    huge = "x" * 5_000_000
    for body in ([{"group_id": "a", "event_value": huge}], [{"group_id": huge}], b"[" + huge.encode()):
        response = post(client, body)
        assert response.status_code in (400, 422)
        assert len(response.content) < 1000


def test_good_request_after_every_kind_of_bad_one(client: TestClient) -> None:
    rng = random.Random(99)
    for bad, _, _ in BAD_ROWS:
        assert post(client, [bad]).status_code == 422
        assert post(client, b"[{").status_code == 400
        rows = random_rows(rng, 20)
        assert post(client, rows).json() == analyse(rows)


def test_body_over_the_limit_is_413(built: Built) -> None:
    from dataclasses import replace

    app = create_app(replace(built.settings, max_body_bytes=1000), built.manifest)
    big = json.dumps([{"group_id": "a", "event_value": i} for i in range(200)]).encode()
    with TestClient(app) as small:
        assert post(small, ANIMALS).status_code == 200
        response = post(small, big)
        assert response.status_code == 413 and "1000" in response.json()["detail"]

        def chunks() -> Any:  # no Content-Length: the limit must hold while streaming
            for i in range(0, len(big), 100):
                yield big[i : i + 100]

        streamed = small.post(URL, content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        assert post(small, ANIMALS).json() == analyse(ANIMALS)


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"
