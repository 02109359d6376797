"""Inputs of every type a warehouse holds, in every body format, answer what dbt built.

tests/projects/all_types/ builds a table `typed` with a column of each type duckapi takes
(every integer width, unsigned and HUGEINT, DECIMAL(p,s), REAL apart from DOUBLE, TIME,
TIMESTAMP WITH TIME ZONE, UUID, BLOB, lists and structs), declared nowhere: duckapi reads
the types from the warehouse. `echo`, served over it, returns each column and what SQL
computes from it. dbt's build of `echo` over `typed`'s rows is the oracle: the same rows,
sent as JSON (small: bound; mid-size: Arrow; large: parsed by DuckDB), NDJSON, CSV, Parquet
and Arrow, must answer exactly those rows. Values a type cannot hold exactly are a 422
naming row and field, and the next good request still answers right.
"""

from __future__ import annotations

import decimal
import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import duckdb
import msgspec
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from duckapi.dbt import project
from duckapi.api.app import create_app
from duckapi.pipeline.contract import column_type
from duckapi.engines.duckdb import BOUND_ROWS
from duckapi.rows.formats import FAST_JSON_BYTES
from tests.payloads import arrow_body, parquet_body
from tests.conftest import settings_in

PROJECT = Path(__file__).resolve().parent / "projects" / "all_types"
ARROW = "application/vnd.apache.arrow.stream"


class Built:
    def __init__(self, client: TestClient, tables: dict[str, pa.Table], folder: Path) -> None:
        self.client, self.tables, self.folder = client, tables, folder
        self.typed, self.echo = tables["typed"], tables["echo"]

    def post(self, body: bytes, content_type: str, path: str = "/echo/") -> Any:
        return self.client.post(path, content=body, headers={"content-type": content_type, "accept": ARROW})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    folder = tmp_path_factory.mktemp("types")
    target = folder / "all_types"
    shutil.copytree(PROJECT, target, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    settings = settings_in(folder, project_dir=target)
    manifest = project.build(settings)
    with duckdb.connect(str(settings.db_path), read_only=True) as con:
        tables = {name: con.sql(f"select * from {name} order by id").to_arrow_table()
                  for name in ("typed", "echo", "typed_plain", "echo_plain")}
    with TestClient(create_app(settings, manifest)) as client:
        yield Built(client, tables, folder)


def rows_of(answer: Any) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    with pa.ipc.open_stream(answer.content) as stream:
        return stream.read_all().to_pylist()


def key(row: dict[str, Any]) -> str:
    return repr(sorted(row.items()))


def expected(built: Built, copies: int = 1, model: str = "echo") -> list[dict[str, Any]]:
    return sorted(built.tables[model].to_pylist() * copies, key=key)


def repeated(table: pa.Table, copies: int) -> pa.Table:
    return pa.concat_tables([table] * copies)


def as_json(table: pa.Table, decimals: str = "number") -> bytes:
    """The rows as a client writes them: decimals as numbers (or strings), blobs as base64,
    times and instants as ISO text, lists and structs as JSON."""
    return msgspec.json.Encoder(decimal_format=decimals).encode(client_rows(table))  # type: ignore[arg-type]


def client_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as Python values; HUGEINT (Arrow's decimal(38,0)) as the integer it is."""
    rows = table.to_pylist()
    for row in rows:
        if "huge" in row:
            row["huge"] = None if row["huge"] is None else int(row["huge"])
    return rows


def as_csv(built: Built, table: pa.Table) -> bytes:
    """The rows as DuckDB writes CSV (lists and structs in its literal syntax), blobs as base64."""
    path = built.folder / "rows.csv"
    with duckdb.connect() as con:
        con.register("rows", table)
        con.execute(f"copy (select * replace (to_base64(payload) as payload) from rows) to '{path}' (header)")
    return path.read_bytes()


def test_the_input_is_typed_by_the_warehouse(built: Built) -> None:
    """No column declared anywhere: /models shows the types `dbt build` gave the table."""
    [endpoint] = [m for m in built.client.get("/models").json() if m["path"] == "/echo/"]
    [typed] = endpoint["inputs"]
    assert {c["name"]: c["data_type"] for c in typed["columns"]} == {
        f.name: column_type(t).name for f, t in zip(built.typed.schema, _warehouse_types(built))
    }


def _warehouse_types(built: Built) -> list[str]:
    path = next(built.folder.glob("*.duckdb"))
    with duckdb.connect(str(path), read_only=True) as con:
        return [str(t) for t in con.sql("select * from typed").types]


@pytest.mark.parametrize("form", ["json", "json-strings", "ndjson", "csv", "parquet", "arrow"])
def test_every_format_answers_what_dbt_built(built: Built, form: str) -> None:
    typed = built.typed
    body, content_type = {
        "json": lambda: (as_json(typed), "application/json"),
        "json-strings": lambda: (as_json(typed, "string"), "application/json"),
        "ndjson": lambda: (b"\n".join(msgspec.json.encode(r) for r in client_rows(typed)), "application/x-ndjson"),
        "csv": lambda: (as_csv(built, typed), "text/csv"),
        "parquet": lambda: (parquet_body(typed), "application/vnd.apache.parquet"),
        "arrow": lambda: (arrow_body(typed), ARROW),
    }[form]()
    assert sorted(rows_of(built.post(body, content_type)), key=key) == expected(built)


@pytest.mark.parametrize("size", ["arrow", "duckdb"])
@pytest.mark.parametrize("model", ["echo", "echo_plain"])
def test_larger_bodies_take_the_other_paths(built: Built, size: str, model: str) -> None:
    """More rows than DuckDB binds (an Arrow table), and a JSON body large enough for
    DuckDB to parse it (rows/parsing.py load_rows: for echo_plain; echo's long decimals
    and HUGEINT stay with msgspec, as DuckDB would round them), then CSV of that size."""
    typed = built.tables["typed" if model == "echo" else "typed_plain"]
    copies = BOUND_ROWS // 3 + 1
    while size == "duckdb" and len(as_json(repeated(typed, copies))) <= FAST_JSON_BYTES:
        copies *= 2
    rows, path = repeated(typed, copies), f"/{model}/"
    assert sorted(rows_of(built.post(as_json(rows), "application/json", path)), key=key) == expected(built, copies, model)
    if size == "duckdb":
        csv = as_csv(built, rows)
        assert sorted(rows_of(built.post(csv, "text/csv", path)), key=key) == expected(built, copies, model)


def first_row(built: Built, **changes: Any) -> list[dict[str, Any]]:
    row = json.loads(as_json(built.typed.slice(0, 1)))[0]
    row.update(changes)
    return [row]


@pytest.mark.parametrize("field, value, why", [
    ("price", 12.345, "would be rounded"),
    ("price", "100000000", "overflow"),
    ("big_decimal", "1e40", "overflow"),
    ("huge", 10 ** 38, "between"),
    ("i8", 128, "<= 127"),
    ("u8", -1, ">= 0"),
    ("u64", 2 ** 64, "between 0 and 18446744073709551615"),
    ("ref", "not-a-uuid", "uuid"),
    ("payload", "not base64!", "base64"),
    ("at_time", "25:00", "time"),
    ("counts", ["x"], "int"),
    ("detail", {"amount": "abc"}, "decimal"),
])
def test_values_a_type_cannot_hold_are_refused(built: Built, field: str, value: Any, why: str) -> None:
    body = json.dumps(first_row(built, **{field: value})).encode()
    answer = built.post(body, "application/json")
    assert answer.status_code == 422, answer.text
    detail = answer.json()
    assert f"field '{field}" in detail["detail"] and why in detail["detail"].lower(), detail
    # Nothing damaged: the next good request answers what dbt built.
    assert sorted(rows_of(built.post(as_json(built.typed), "application/json")), key=key) == expected(built)


def test_typed_bodies_are_checked_too(built: Built) -> None:
    """Parquet with a decimal of more scale than the column takes, CSV with a bad UUID."""
    price = built.typed.schema.get_field_index("price")
    wider = built.typed.set_column(price, "price", pa.array([decimal.Decimal("1.005")] * 3, pa.decimal128(10, 3)))
    answer = built.post(parquet_body(wider), "application/vnd.apache.parquet")
    assert answer.status_code == 422 and "price" in answer.text, answer.text
    bad = as_csv(built, built.typed).replace(b"0f0e0d0c-0b0a-4908-8706-050403020100", b"0f0e0d0c")
    answer = built.post(bad, "text/csv")
    assert answer.status_code == 422 and "row 0, field 'ref'" in answer.text, answer.text


def test_openapi_describes_each_type(built: Built) -> None:
    document = built.client.get("/openapi.json").json()
    body = document["paths"]["/echo/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    properties = body["items"]["properties"]

    def schema(name: str) -> dict[str, Any]:
        return next(s for s in properties[name]["anyOf"] if s.get("type") != "null")

    assert schema("u64") == {"type": "integer", "minimum": 0, "maximum": 2 ** 64 - 1}
    assert schema("huge")["maximum"] == 10 ** 38 - 1
    assert schema("ref") == {"type": "string", "format": "uuid"}
    assert schema("payload") == {"type": "string", "contentEncoding": "base64"}
    assert schema("at_time") == {"type": "string", "format": "time"}
    assert schema("ratio")["format"] == "float" and schema("share")["format"] == "double"
    assert schema("counts")["type"] == "array"
    assert set(schema("detail")["properties"]) == {"name", "amount", "day"}
