"""Every accepted input format and answer format, with the same rules and errors."""

from __future__ import annotations

import gzip
import io
import json
import random
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest
import zstandard
from fastapi.testclient import TestClient

from duckapi.rows.formats import FAST_JSON_BYTES
from duckapi.api.outputs import encode as arrow_bytes
from duckapi.api.app import create_app
from tests.conftest import Built
from tests.oracle import ANIMALS, analyse
from tests.payloads import random_rows

URL = "/analyse_data/"
ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
SCHEMA = pa.schema([("group_id", pa.string()), ("event_value", pa.int64())])


def as_table(rows: list[dict[str, Any]], schema: pa.Schema = SCHEMA) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def encode(rows: list[dict[str, Any]], fmt: str) -> tuple[bytes, str]:
    """The rows in a body format, and its Content-Type."""
    if fmt == "json":
        return json.dumps(rows).encode(), "application/json"
    if fmt == "ndjson":
        return "".join(json.dumps(r) + "\n" for r in rows).encode(), "application/x-ndjson"
    table = as_table(rows)
    if fmt == "csv":
        sink = io.BytesIO()
        pacsv.write_csv(table, sink)
        return sink.getvalue(), "text/csv"
    return _typed(table, fmt)


FORMATS = ["json", "ndjson", "csv", "parquet", "arrow"]


def post(client: TestClient, body: bytes, ctype: str, **headers: str) -> Any:
    return client.post(URL, content=body, headers={"content-type": ctype, **headers})


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", [9, 2000, 60_000])
def test_every_format_gives_the_json_answer(client: TestClient, fmt: str, size: int) -> None:
    rows = random_rows(random.Random(size), size, groups=10, big=size == 2000)
    rows = [r for r in rows if "\u0000" not in r["group_id"]]  # CSV writers cannot carry NUL
    body, ctype = encode(rows, fmt)
    response = post(client, body, ctype)
    assert response.status_code == 200, response.text
    assert response.json() == analyse(rows)


def test_large_json_takes_the_duckdb_path_and_agrees(client: TestClient) -> None:
    rows = random_rows(random.Random(5), 40_000, groups=15, big=True)
    body = json.dumps(rows).encode()
    assert len(body) > FAST_JSON_BYTES
    assert post(client, body, "application/json").json() == analyse(rows)


@pytest.mark.parametrize("accept", [ARROW, PARQUET, "application/x-parquet"])
def test_arrow_and_parquet_answers_read_back_like_the_json_one(client: TestClient, accept: str) -> None:
    rows = random_rows(random.Random(3), 500, groups=6, big=True)
    body = json.dumps(rows).encode()
    as_json = post(client, body, "application/json").json()
    response = post(client, body, "application/json", accept=accept)
    assert response.status_code == 200
    if "arrow" in accept:
        assert response.headers["content-type"] == ARROW
        table = pyarrow.ipc.open_stream(response.content).read_all()
    else:
        assert response.headers["content-type"] == PARQUET
        table = pq.read_table(io.BytesIO(response.content))
    assert table.to_pylist() == as_json


def test_dataframe_to_arrow_to_duckapi_to_dataframe(client: TestClient) -> None:
    """The README's pandas example: DataFrame -> Arrow IPC -> duckapi -> Arrow -> DataFrame."""
    frame = pd.DataFrame(ANIMALS)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:  # as in the README
        writer.write_table(table)
    response = post(client, sink.getvalue().to_pybytes(), ARROW, accept=ARROW)
    answer = pyarrow.ipc.open_stream(response.content).read_all().to_pandas()
    assert list(answer.columns)[0] == "group_sums"
    assert [s["value_sum"] for s in answer["group_sums"][0]] == [32, 12, 33]


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "image/png;q=1, text/plain"])
def test_unanswerable_accept_is_406(client: TestClient, accept: str) -> None:
    response = post(client, json.dumps(ANIMALS).encode(), "application/json", accept=accept)
    assert response.status_code == 406 and ARROW in response.json()["detail"]


@pytest.mark.parametrize("accept", ["*/*", "application/*", "text/html, application/json;q=0.5", "application/json"])
def test_wildcards_and_quality_pick_json(client: TestClient, accept: str) -> None:
    response = post(client, json.dumps(ANIMALS).encode(), "application/json", accept=accept)
    assert response.status_code == 200 and response.json() == analyse(ANIMALS)


def test_quality_prefers_the_higher_one(client: TestClient) -> None:
    response = post(client, json.dumps(ANIMALS).encode(), "application/json",
                    accept=f"application/json;q=0.2, {ARROW};q=0.9")
    assert response.headers["content-type"] == ARROW


# -- the same bad-input classes in every format where they apply ------------------

BAD_VALUES = [
    ({"group_id": "a", "event_value": 1.5}, "event_value"),
    ({"group_id": "a", "event_value": "7"}, "event_value"),
    ({"group_id": "a", "event_value": None}, "event_value"),
    ({"group_id": None, "event_value": 1}, "group_id"),
    ({"group_id": "a", "event_value": 2**63}, "event_value"),
]


def _body_with_bad_row(fmt: str, bad: dict[str, Any], row: int, total: int) -> tuple[bytes, str]:
    rows = [{"group_id": f"g{i % 3}", "event_value": i} for i in range(total)]
    if fmt in ("json", "ndjson"):
        rows[row] = bad
        return encode(rows, fmt)
    # CSV: the value as text, exactly as a CSV export would write it
    lines = ["group_id,event_value"] + [f"{r['group_id']},{r['event_value']}" for r in rows]
    g = "" if bad["group_id"] is None else bad["group_id"]
    v = "" if bad["event_value"] is None else bad["event_value"]
    lines[row + 1] = f"{g},{v}"
    return ("\n".join(lines) + "\n").encode(), "text/csv"


# CSV has no types: the text 7 is the integer 7 there, so that case is JSON-only.
BAD_CASES = [(fmt, bad, field) for fmt in ("json", "ndjson", "csv") for bad, field in BAD_VALUES
             if not (fmt == "csv" and bad["event_value"] == "7")]


@pytest.mark.parametrize("total", [10, 30_000])  # small (precise decoder) and large (DuckDB path)
@pytest.mark.parametrize("fmt,bad,field", BAD_CASES)
def test_bad_value_is_422_naming_row_and_column(client: TestClient, fmt: str, total: int, bad: dict[str, Any], field: str) -> None:
    row = total - 3
    body, ctype = _body_with_bad_row(fmt, bad, row, total)
    response = post(client, body, ctype)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["row"] == row and error["field"] == field, error
    assert f"row {row}" in error["detail"] and field in error["detail"]
    assert post(client, *encode(ANIMALS, fmt)).json() == analyse(ANIMALS)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_missing_column_is_422_naming_it(client: TestClient, fmt: str) -> None:
    if fmt == "csv":
        body, ctype = b"group_id,other\na,1\n", "text/csv"
    else:
        body, ctype = _typed(pa.table({"group_id": ["a"], "other": [1]}), fmt)
    response = post(client, body, ctype)
    assert response.status_code == 422 and response.json()["field"] == "event_value"
    assert "missing column 'event_value'" in response.json()["detail"]


def _typed(table: pa.Table, fmt: str) -> tuple[bytes, str]:
    """A typed body: the same Parquet / Arrow IPC writers duckapi answers with."""
    return arrow_bytes(table, fmt), PARQUET if fmt == "parquet" else ARROW


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_typed_formats_check_types_nulls_and_ranges(client: TestClient, fmt: str) -> None:
    wrong_type = pa.table({"group_id": ["a", "b"], "event_value": ["1", "2"]})
    response = post(client, *_typed(wrong_type, fmt))
    assert response.status_code == 422 and response.json()["field"] == "event_value"
    floats = pa.table({"group_id": ["a", "b"], "event_value": [1.0, 2.5]})
    assert post(client, *_typed(floats, fmt)).status_code == 422
    nulls = pa.table({"group_id": ["a", None, "c"], "event_value": pa.array([1, 2, 3], pa.int64())})
    response = post(client, *_typed(nulls, fmt))
    assert response.status_code == 422 and response.json()["row"] == 1 and response.json()["field"] == "group_id"
    big = pa.table({"group_id": ["a", "b", "c"], "event_value": pa.array([1, 2, 2**64 - 1], pa.uint64())})
    response = post(client, *_typed(big, fmt))
    assert response.status_code == 422 and response.json()["row"] == 2
    narrow = pa.table({"group_id": pa.array(["a", "b"], pa.large_string()), "event_value": pa.array([1, 2], pa.int8())})
    response = post(client, *_typed(narrow, fmt))  # lossless widening is fine
    assert response.status_code == 200 and response.json()[0]["group_sums"][0]["value_sum"] == 1


@pytest.mark.parametrize(
    "body,ctype,words",
    [(b"garbage", PARQUET, "not a valid Parquet"), (b"garbage", ARROW, "not a valid Arrow"),
     (b"PAR1\x00\x01", PARQUET, "Parquet"), (b'{"group_id": "a"', "application/x-ndjson", "malformed JSON"),
     (b"group_id,event_value\n\xff\xfe,1\n" * 3, "text/csv", "CSV")],
)
def test_garbage_for_the_declared_type_is_400(client: TestClient, body: bytes, ctype: str, words: str) -> None:
    response = post(client, body, ctype)
    assert response.status_code == 400, response.text
    assert words in response.json()["detail"]


def test_ndjson_names_the_line(client: TestClient) -> None:
    body = b'{"group_id": "a", "event_value": 1}\n\n{"group_id": "b", "event_value": 2.5}\n'
    response = post(client, body, "application/x-ndjson")
    assert response.status_code == 422 and response.json()["row"] == 1 and response.json()["field"] == "event_value"


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_compressed_bodies(client: TestClient, encoding: str, fmt: str) -> None:
    body, ctype = encode(ANIMALS, fmt)
    packed = gzip.compress(body) if encoding == "gzip" else zstandard.ZstdCompressor().compress(body)
    response = post(client, packed, ctype, **{"content-encoding": encoding})
    assert response.status_code == 200 and response.json() == analyse(ANIMALS)


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_zip_bomb_is_413_not_out_of_memory(built: Built, encoding: str) -> None:
    from dataclasses import replace

    limit = 1024 * 1024
    inflated = b"[" + b" " * (64 * limit) + b"]"  # 64 MiB of whitespace, a few KiB packed
    packed = gzip.compress(inflated) if encoding == "gzip" else zstandard.ZstdCompressor().compress(inflated)
    assert len(packed) < limit
    with TestClient(create_app(replace(built.settings, max_body_bytes=limit), built.manifest)) as small:
        response = post(small, packed, "application/json", **{"content-encoding": encoding})
        assert response.status_code == 413 and "decompressed" in response.json()["detail"]
        assert post(small, json.dumps(ANIMALS).encode(), "application/json").json() == analyse(ANIMALS)


@pytest.mark.parametrize("encoding,body,status", [("br", b"x", 415), ("gzip", b"not gzip", 400), ("zstd", b"nope", 400)])
def test_bad_encodings(client: TestClient, encoding: str, body: bytes, status: int) -> None:
    response = post(client, body, "application/json", **{"content-encoding": encoding})
    assert response.status_code == status
