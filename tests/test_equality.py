"""The HTTP API, the DuckDB batch engine and the Spark engine give the same answer.

Seeded random datasets (unicode group ids with control characters and astral
emoji, negative and 64-bit extreme values, many groups, heavy duplication, no rows
at all) go to POST /analyse_data/ as JSON and to `duckapi run` as files on both
engines. The answers must be the same bytes: the same fields, in the same order,
with the same values, lists in the same order. The oracle checks what they agree on.

The shop example does the same with two inputs (orders and payments, one JSON body
keyed by input name for the API, files of mixed formats per input for the engines)
and reference data (the seeds customers and prices: the warehouse snapshot on DuckDB,
built into the Spark session by dbt-spark). Both projects' own dbt unit tests pass on
both engines too.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Mapping

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from duckapi.batch import InputFile, assign_inputs, resolve_inputs, run_duckdb, run_spark
from duckapi.batch.inputs import Assigned
from duckapi.engines.spark import spark_type
from duckapi.pipeline import Pipeline, build_pipelines
from duckapi.testing.command import run_on_duckdb, run_on_spark
from duckapi.testing.unit import unit_tests
from duckapi.dbt.warehouse import Snapshots
from tests.conftest import Built
from tests.oracle import analyse
from tests.payloads import AWKWARD_IDS, INT64_MAX, INT64_MIN
from tests.shop_support import (  # shop_client: a fixture
    ENDPOINTS, ORDER_TYPES, PAYMENT_TYPES, SHOP, oracle, random_shop, same_rows, shop_answer, shop_build, shop_client,
)
from tests.spark_support import shared_engine, spark_pipelines, spark_pipelines_with_references

URL = "/analyse_data/"

#: Code point ranges group ids are drawn from: ASCII, controls (tab, newline, CR,
#: NUL, ...), Latin-1, combining marks, Greek, CJK, line separators and BOM, emoji.
RANGES = [
    (0x20, 0x7E), (0x00, 0x1F), (0xA0, 0xFF), (0x300, 0x36F), (0x391, 0x3C9),
    (0x4E00, 0x9FFF), (0x2028, 0x2029), (0xFEFF, 0xFEFF), (0x1F300, 0x1FAFF),
]


def random_id(rng: random.Random) -> str:
    chars = []
    for _ in range(rng.randint(0, 8)):
        low, high = rng.choice(RANGES)
        chars.append(chr(rng.randint(low, high)))
    return "".join(chars)


def random_dataset(seed: int, rows: int, groups: int, values: str) -> list[dict[str, Any]]:
    """`rows` rows over `groups` ids; `values` picks the value pool (small, wide or extreme)."""
    rng = random.Random(seed)
    ids = set(rng.sample(AWKWARD_IDS, min(len(AWKWARD_IDS), groups // 2)))
    while len(ids) < groups:
        ids.add(random_id(rng))
    id_list = sorted(ids)
    if values == "small":  # few distinct values: many duplicate (group, value) pairs
        pool = list(range(-3, 4))
    elif values == "wide":
        pool = [rng.randint(-(10**6), 10**6) for _ in range(500)] + [-1, 0, 1]
    else:  # extremes: sums pass 2^63 and -2^63 (exact 128-bit integers in the answer)
        pool = [INT64_MIN, INT64_MIN + 1, INT64_MAX, INT64_MAX - 1, -(2**40), 2**40, -1, 0, 1, 2**53 + 1]
    return [{"group_id": rng.choice(id_list), "event_value": rng.choice(pool)} for _ in range(rows)]


DATASETS = {
    "awkward ids, extreme values": dict(seed=1, rows=3000, groups=40, values="extreme"),
    "many groups": dict(seed=2, rows=20000, groups=4000, values="wide"),
    "heavy duplicates": dict(seed=3, rows=8000, groups=6, values="small"),
    "one row": dict(seed=4, rows=1, groups=1, values="extreme"),
    "no rows": dict(seed=5, rows=0, groups=1, values="small"),
}


# -- writing a dataset as files ---------------------------------------------------------

#: The bundled project's input columns as files carry them.
EVENT_TYPES = {"group_id": pa.string(), "event_value": pa.int64()}
Types = Mapping[str, pa.DataType]


def write_parquet(rows: list[dict[str, Any]], path: Path, types: Types = EVENT_TYPES) -> Path:
    columns = {}
    for name, kind in types.items():
        values = [r[name] for r in rows]
        # Dates are ISO strings in the rows (as JSON carries them), typed here.
        columns[name] = pa.array(values, pa.string()).cast(kind) if pa.types.is_date(kind) else pa.array(values, kind)
    pq.write_table(pa.table(columns), path)
    return path


def _csv_field(value: Any) -> str:
    """Strings quoted ("" is an empty string), null as an empty unquoted field, numbers bare."""
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return str(value)


def write_csv(rows: list[dict[str, Any]], path: Path, types: Types = EVENT_TYPES) -> Path:
    names = list(types)[::-1]  # columns in another order than the contract's
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write(",".join(names) + "\r\n")
        for r in rows:
            handle.write(",".join(_csv_field(r[name]) for name in names) + "\r\n")
    return path


def write_ndjson(rows: list[dict[str, Any]], path: Path, types: Types = EVENT_TYPES) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for r in rows:
            handle.write(json.dumps({**r, "ignored": [1, 2]}, ensure_ascii=False) + "\n")
    return path


def write_json_array(rows: list[dict[str, Any]], path: Path, types: Types = EVENT_TYPES) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")  # \u escapes, as a client might send
    return path


def one_input(pipeline: Pipeline, files: list[InputFile]) -> Assigned:
    """All the files as the pipeline's one input, as `duckapi run` assigns them."""
    return assign_inputs(pipeline, {None: files})


def split_files(rows: list[dict[str, Any]], folder: Path) -> list[InputFile]:
    """The rows cut into four files of four formats: one input of several files.

    Rows whose group id holds a NUL character stay out of the CSV part: Spark's CSV
    reader (univocity) drops U+0000 from fields, a documented limitation (such data
    goes to Spark as Parquet or JSON); DuckDB keeps it, in every format.
    """
    folder.mkdir(parents=True, exist_ok=True)
    quarter = max(1, len(rows) // 4)
    chunks = [rows[:quarter], rows[quarter:2 * quarter], rows[2 * quarter:3 * quarter], rows[3 * quarter:]]
    chunks[0] = chunks[0] + [r for r in chunks[1] if "\0" in r["group_id"]]
    chunks[1] = [r for r in chunks[1] if "\0" not in r["group_id"]]
    paths = [
        write_parquet(chunks[0], folder / "part-0.parquet"),
        write_csv(chunks[1], folder / "part-1.csv"),
        write_ndjson(chunks[2], folder / "part-2.ndjson"),
        write_json_array(chunks[3], folder / "part-3.json"),
    ]
    return resolve_inputs([str(p) for p in paths])


# -- fixtures ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def duckdb_pipeline(built: Built) -> Pipeline:
    return build_pipelines(built.manifest)[URL]


@pytest.fixture(scope="module")
def spark_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    shared_engine()  # skips (or fails in CI) without Java before compiling anything
    return spark_pipelines()[URL]


def api_answer(client: TestClient, rows: list[dict[str, Any]]) -> bytes:
    response = client.post(URL, content=json.dumps(rows).encode(), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    return response.content


def field_order(answer: bytes) -> Any:
    """Every object as its list of (field, value) pairs: order is part of the comparison."""
    return json.loads(answer, object_pairs_hook=lambda pairs: [(k, v) for k, v in pairs])


# -- the test ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(DATASETS))
def test_api_duckdb_batch_and_spark_return_the_same_analysis(
    name: str, client: TestClient, duckdb_pipeline: Pipeline, spark_pipeline: Pipeline, tmp_path: Path
) -> None:
    rows = random_dataset(**DATASETS[name])
    api = api_answer(client, rows)
    assert json.loads(api) == analyse(rows)

    single = resolve_inputs([str(write_parquet(rows, tmp_path / "all.parquet"))])
    split = split_files(rows, tmp_path / "split")
    answers: dict[str, bytes] = {"api": api}
    for label, files in (("parquet", single), ("4 formats", split)):
        out = tmp_path / f"duckdb-{label}.json"
        assert run_duckdb(duckdb_pipeline, one_input(duckdb_pipeline, files), "json", str(out)) == 1
        answers[f"duckdb, {label}"] = out.read_bytes()
        out = tmp_path / f"spark-{label}.json"
        assert run_spark(shared_engine(), spark_pipeline, one_input(spark_pipeline, files), "json", str(out)) == 1
        answers[f"spark, {label}"] = out.read_bytes()

    expected = field_order(api)
    for label, answer in answers.items():
        assert field_order(answer) == expected, f"{label} differs from the API"
        assert answer == api, f"{label}: same analysis, different bytes"


def test_parquet_and_csv_outputs_are_the_same_on_both_engines(
    duckdb_pipeline: Pipeline, spark_pipeline: Pipeline, tmp_path: Path
) -> None:
    rows = random_dataset(**DATASETS["awkward ids, extreme values"])
    files = resolve_inputs([str(write_parquet(rows, tmp_path / "in.parquet"))])
    for fmt in ("parquet", "csv"):
        duck, spark = tmp_path / f"duckdb.{fmt}", tmp_path / f"spark.{fmt}"
        run_duckdb(duckdb_pipeline, one_input(duckdb_pipeline, files), fmt, str(duck))
        run_spark(shared_engine(), spark_pipeline, one_input(spark_pipeline, files), fmt, str(spark))
        if fmt == "parquet":
            a, b = pq.read_table(duck), pq.read_table(spark)
            assert a.schema.equals(b.schema), (a.schema, b.schema)
            # Exact integers: sums past 2^63 survive as decimal(38, 0), never as doubles.
            sums = a.column("group_sums").to_pylist()[0]
            assert {s["group_id"]: int(s["value_sum"]) for s in sums} == {
                s["group_id"]: s["value_sum"] for s in analyse(rows)[0]["group_sums"]
            }
            assert a.to_pylist() == b.to_pylist()
        else:
            assert duck.read_bytes() == spark.read_bytes()


# -- several inputs and reference data: the shop example --------------------------------

SHOP_DATASETS = {
    "orders and payments": dict(seed=21, orders=1500, payments=2500, unknown=0.05),
    "unknown customers, products and orders": dict(seed=22, orders=300, payments=500, unknown=0.4),
    "orders without payments": dict(seed=23, orders=200, payments=0),
    "no rows": dict(seed=24, orders=0, payments=0),
}


@pytest.fixture(scope="module")
def shop_duckdb() -> Iterator[dict[str, Pipeline]]:
    """The shop's pipelines reading the reference data from a snapshot of its warehouse."""
    shop = shop_build()
    snapshots = Snapshots(shop.settings.db_path)
    try:
        warehouse = snapshots.take()
        yield {path: replace(p, warehouse=warehouse) for path, p in build_pipelines(shop.manifest, SHOP).items()}
    finally:
        snapshots.close()


@pytest.fixture(scope="module")
def shop_spark() -> dict[str, Pipeline]:
    shared_engine()
    return spark_pipelines_with_references(SHOP)


def shop_files(orders: list[dict[str, Any]], payments: list[dict[str, Any]], folder: Path) -> dict[str | None, list[InputFile]]:
    """Each input in two files of two formats: orders as Parquet and CSV, payments as NDJSON and a JSON array."""
    folder.mkdir(parents=True, exist_ok=True)
    half_o, half_p = len(orders) // 2, len(payments) // 2
    return {
        "stg_orders": resolve_inputs([
            str(write_parquet(orders[:half_o], folder / "orders-0.parquet", ORDER_TYPES)),
            str(write_csv(orders[half_o:], folder / "orders-1.csv", ORDER_TYPES)),
        ]),
        "stg_payments": resolve_inputs([
            str(write_ndjson(payments[:half_p], folder / "payments-0.ndjson", PAYMENT_TYPES)),
            str(write_json_array(payments[half_p:], folder / "payments-1.json", PAYMENT_TYPES)),
        ]),
    }


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("name", list(SHOP_DATASETS))
def test_shop_api_duckdb_batch_and_spark_return_the_same_answer(
    name: str, path: str, shop_client: TestClient, shop_duckdb: dict[str, Pipeline], shop_spark: dict[str, Pipeline],
    tmp_path: Path,
) -> None:
    orders, payments = random_shop(**SHOP_DATASETS[name])
    api = shop_answer(shop_client, path, orders, payments)
    assert same_rows(json.loads(api), oracle(path, orders, payments))

    files = shop_files(orders, payments, tmp_path / "in")
    rows = len(json.loads(api))
    duck, spark = tmp_path / "duckdb.json", tmp_path / "spark.json"
    assert run_duckdb(shop_duckdb[path], assign_inputs(shop_duckdb[path], files), "json", str(duck)) == rows
    assert run_spark(shared_engine(), shop_spark[path], assign_inputs(shop_spark[path], files), "json", str(spark)) == rows
    for label, answer in (("duckdb", duck.read_bytes()), ("spark", spark.read_bytes())):
        assert field_order(answer) == field_order(api), f"{label} differs from the API"
        assert answer == api, f"{label}: same answer, different bytes"


# --- the projects' own unit tests, on both engines ------------------------------------------


@pytest.mark.parametrize("which", ["bundled", "shop"])
def test_the_projects_unit_tests_pass_on_duckdb_and_spark(built: Built, which: str) -> None:
    """The unit tests the bundled project and the shop carry (dbt's build passed them) pass
    through duckapi on DuckDB, as requests run, and on Spark, as `duckapi run` runs."""
    project = built if which == "bundled" else shop_build()
    tests = unit_tests(project.manifest, project.settings.project_dir)
    assert tests
    expected = [(t.name, "passed", "") for t in tests]
    on_duckdb = run_on_duckdb(project.settings, project.manifest, tests, lambda verdict: None)
    assert [(v.name, v.status, v.detail) for v in on_duckdb] == expected
    on_spark = run_on_spark(project.settings, project.manifest, tests, lambda verdict: None, shared_engine())
    assert [(v.name, v.status, v.detail) for v in on_spark] == expected
    assert {v.engine for v in on_spark} == {"spark"}


def test_every_input_type_has_a_spark_type() -> None:
    """Each type duckapi takes as input (tests/projects/all_types) maps to a type Spark
    parses, holding the same values where Spark has them."""
    session = shared_engine().session
    mapped = {data_type: spark_type(data_type) for data_type in [
        "TINYINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT", "DECIMAL(38,10)", "FLOAT", "DOUBLE",
        "TIME", "TIMESTAMP WITH TIME ZONE", "UUID", "BLOB", "INTEGER[]", "VARCHAR[]",
        'STRUCT("name" VARCHAR, amount DECIMAL(6,2), "day" DATE)', "STRUCT(k INTEGER)[]",
    ]}
    assert mapped["UBIGINT"] == "decimal(20,0)" and mapped["HUGEINT"] == "decimal(38,0)" and mapped["FLOAT"] == "float"
    for data_type, spark in mapped.items():
        [row] = session.sql(f"select cast(null as {spark}) as v").collect()
        assert row.v is None, data_type
    [row] = session.sql(f"select cast(18446744073709551615 as {mapped['UBIGINT']}) as v").collect()
    assert row.v == 18446744073709551615
