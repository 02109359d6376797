"""The Python API (`duckapi.load(...).run(...)`): the HTTP API's answers, in-process.

Answers are compared with the HTTP API's for the same rows (a TestClient of the same
build) and with independent oracles (tests/oracle.py, tests/shop_support.oracle).
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

import duckapi
from duckapi.dbt import project as dbt_project
from duckapi.settings import BUNDLED_PROJECT, Settings
from tests.conftest import Built, copy_shop
from tests.oracle import analyse
from tests.payloads import random_rows
from tests.shop_support import oracle, random_shop, same_rows, shop_answer, shop_build

ANALYSE = "/analyse_data/"
ROWS = [{"group_id": "🦆", "event_value": 13}, {"group_id": "🐇", "event_value": 8}, {"group_id": "🦆", "event_value": 2}]


@pytest.fixture(scope="module")
def bundled(built: Built) -> Iterator[duckapi.Project]:
    with duckapi.Project(built.settings, built.manifest) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def shop_project() -> Iterator[duckapi.Project]:
    shop = shop_build()
    with duckapi.Project(shop.settings, shop.manifest) as loaded:
        yield loaded


def http_json(client: TestClient, path: str, rows: Any, query: str = "") -> bytes:
    response = client.post(path + query, content=json.dumps(rows).encode(), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    return response.content


def test_endpoints_describe_what_models_lists(bundled: duckapi.Project, client: TestClient) -> None:
    endpoint = bundled.endpoints[ANALYSE]
    assert endpoint.model == "analysis"
    assert [i.name for i in endpoint.inputs] == ["group_event_values"]
    assert "group_sums" in endpoint.parts
    assert [endpoint.to_dict()] == client.get("/models").json()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_json_is_the_http_answer_byte_for_byte(bundled: duckapi.Project, client: TestClient, seed: int) -> None:
    rows = random_rows(random.Random(seed), 40)
    answer = bundled.run(ANALYSE, rows)
    assert answer.json == http_json(client, ANALYSE, rows)
    assert json.loads(answer.json) == analyse(rows)
    assert answer.num_rows == 1


def test_arrow_is_the_http_arrow_answer(bundled: duckapi.Project, client: TestClient) -> None:
    response = client.post(ANALYSE, content=json.dumps(ROWS), headers={"accept": "application/vnd.apache.arrow.stream"})
    assert response.status_code == 200
    assert bundled.run(ANALYSE, ROWS).to_arrow().equals(pa.ipc.open_stream(response.content).read_all())


def test_select_and_endpoint_names(bundled: duckapi.Project, client: TestClient) -> None:
    expected = http_json(client, ANALYSE, ROWS, "?select=group_sums,hist_groups")
    for name in (ANALYSE, "analyse_data", "/analyse_data", "analysis"):
        assert bundled.run(name, ROWS, select=["group_sums", "hist_groups"]).json == expected
    assert list(bundled.run(ANALYSE, ROWS, select=["hist_groups"]).to_pylist()[0]) == ["hist_groups"]


def test_every_kind_of_rows_gives_the_same_answer(bundled: duckapi.Project, tmp_path: Path) -> None:
    rows = random_rows(random.Random(7), 25)
    expected = bundled.run(ANALYSE, rows).json
    table = pa.Table.from_pylist(rows)
    csv_path = tmp_path / "events.csv"
    pd.DataFrame(rows).to_csv(csv_path, index=False)
    parquet_path = tmp_path / "events.parquet"
    pq.write_table(table, parquet_path)
    ndjson_gz = tmp_path / "events.ndjson.gz"
    ndjson_gz.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    json_path = tmp_path / "events.json"
    json_path.write_text(json.dumps(rows[:10]))
    rest = tmp_path / "rest.csv"
    pd.DataFrame(rows[10:]).to_csv(rest, index=False)
    kinds = {
        "pandas": pd.DataFrame(rows),
        "polars": pl.DataFrame(rows),
        "arrow table": table,
        "record batch reader": pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=4)),
        "csv path": str(csv_path),
        "parquet Path": parquet_path,
        "ndjson.gz": ndjson_gz,
        "list of paths": [json_path, rest],
        "keyed by input": {"group_event_values": rows},
    }
    for kind, value in kinds.items():
        assert bundled.run(ANALYSE, value).json == expected, kind


def test_answer_forms_agree(bundled: duckapi.Project) -> None:
    answer = bundled.run(ANALYSE, ROWS, select=["group_histogram"])
    (row,) = answer.to_pylist()
    assert row == {"group_histogram": [{"group_id": "🐇", "group_count": 1}, {"group_id": "🦆", "group_count": 2}]}
    assert answer.to_pandas()["group_histogram"][0][1]["group_count"] == 2
    assert answer.to_polars().to_dicts() == answer.to_pylist()
    assert json.loads(answer.json) == answer.to_pylist()


@pytest.mark.parametrize("rows, row, field", [
    ([{"group_id": "a", "event_value": 1}, {"group_id": "b", "event_value": 1.5}], 1, "event_value"),
    ([{"group_id": "a", "event_value": 1}, {"event_value": 2}], 1, "group_id"),
    ([{"group_id": None, "event_value": 1}], 0, "group_id"),
])
def test_bad_rows_are_the_apis_input_errors(bundled: duckapi.Project, client: TestClient, rows: Any, row: int,
                                            field: str) -> None:
    with pytest.raises(duckapi.InputError) as caught:
        bundled.run(ANALYSE, rows)
    response = client.post(ANALYSE, content=json.dumps(rows))
    assert (caught.value.row, caught.value.field) == (row, field)
    assert caught.value.status == response.status_code == 422
    assert caught.value.body() == response.json()
    assert bundled.run(ANALYSE, ROWS).json == http_json(client, ANALYSE, ROWS)  # the next call is fine


def test_bad_arrow_and_dataframes_name_the_column(bundled: duckapi.Project) -> None:
    with pytest.raises(duckapi.InputError, match="group_id") as caught:
        bundled.run(ANALYSE, pd.DataFrame({"event_value": [1]}))
    assert caught.value.field == "group_id"
    with pytest.raises(duckapi.InputError, match="event_value") as caught:
        bundled.run(ANALYSE, pa.table({"group_id": ["a"], "event_value": ["1"]}))
    with pytest.raises(duckapi.InputError, match="cannot read rows from a int"):
        bundled.run(ANALYSE, 42)
    with pytest.raises(duckapi.InputError, match="no such file|cannot be read"):
        bundled.run(ANALYSE, "/nonexistent/events.csv")


def test_unknown_endpoint_and_part_are_request_errors(bundled: duckapi.Project) -> None:
    with pytest.raises(duckapi.RequestError, match="serves /analyse_data/"):
        bundled.run("/nope/", ROWS)
    with pytest.raises(duckapi.RequestError, match="unknown part"):
        bundled.run(ANALYSE, ROWS, select=["nope"])
    with pytest.raises(duckapi.RequestError, match="cannot be set per request"):
        bundled.run(ANALYSE, ROWS, vars={"anything": 1})
    assert issubclass(duckapi.InputError, duckapi.DuckapiError)


def test_several_inputs_take_a_dict_by_input_name(shop_project: duckapi.Project, shop: TestClient) -> None:
    orders, payments = random_shop(11, 30, 40)
    for path in ("/orders/", "/customers/"):
        answer = shop_project.run(path, {"stg_orders": orders, "stg_payments": pl.DataFrame(payments)})
        assert answer.json == shop_answer(shop, path, orders, payments)
        assert same_rows(json.loads(answer.json), oracle(path, orders, payments))
    with pytest.raises(duckapi.InputError) as caught:
        shop_project.run("/orders/", orders)
    assert "stg_orders, stg_payments" in caught.value.detail
    with pytest.raises(duckapi.InputError) as caught:
        shop_project.run("/orders/", {"stg_orders": orders})
    assert caught.value.input == "stg_payments"
    bad = [dict(orders[0], quantity="three")]
    with pytest.raises(duckapi.InputError) as caught:
        shop_project.run("/orders/", {"stg_orders": bad, "stg_payments": []})
    assert (caught.value.input, caught.value.row, caught.value.field) == ("stg_orders", 0, "quantity")


def test_many_threads_each_get_their_own_answer(bundled: duckapi.Project) -> None:
    datasets = [random_rows(random.Random(100 + i), 5 + i) for i in range(8)]
    wrong: list[int] = []

    def work(i: int) -> None:
        for _ in range(10):
            if json.loads(bundled.run(ANALYSE, datasets[i]).json) != analyse(datasets[i]):
                wrong.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_a_long_answer_does_not_hold_up_other_threads(bundled: duckapi.Project) -> None:
    """Reading an answer runs its statement; another thread's answer meanwhile is not made
    to wait for it (functools.cached_property on Python 3.11 would: one lock for all)."""
    n = 8_000_000
    big = pa.table({"group_id": pa.array(np.tile(np.array(list("abcd"), dtype=object), n // 4), pa.string()),
                    "event_value": pa.array(np.tile(np.arange(1, 6, dtype=np.int64), n // 5))})
    small = random_rows(random.Random(5), 9)
    started, done = threading.Event(), threading.Event()
    long_answer = bundled.run(ANALYSE, big)

    def long_read() -> None:
        started.set()
        long_answer.json
        done.set()

    thread = threading.Thread(target=long_read)
    thread.start()
    started.wait()
    answers = [json.loads(bundled.run(ANALYSE, small).json) for _ in range(3)]
    overtaken = not done.is_set()
    thread.join()
    assert answers == [analyse(small)] * 3
    assert overtaken, "the 9-row answers waited for the 8M-row one"
    assert json.loads(long_answer.json)[0]["group_histogram"] == [
        {"group_id": g, "group_count": n // 4} for g in "abcd"]


def test_load_compiles_a_project_without_a_manifest_and_reload_sees_a_rebuild(tmp_path: Path) -> None:
    """duckapi.load on a fresh copy of the shop: no manifest yet, so it compiles; after
    the seed of prices changes and the warehouse is rebuilt, reload() serves the new
    prices while the old Answer keeps its own."""
    shop_dir = copy_shop(tmp_path)
    db = tmp_path / "shop.duckdb"
    settings = Settings.from_env(env={}, project_dir=shop_dir, db_path=db)
    dbt_project.run_dbt(settings, "seed")
    shutil.rmtree(shop_dir / "target", ignore_errors=True)
    orders, payments = random_shop(5, 10, 10, unknown=0)
    with duckapi.load(shop_dir, db=db) as loaded:
        assert (shop_dir / "target" / "manifest.json").exists()
        before = json.loads(loaded.run("/orders/", {"stg_orders": orders, "stg_payments": payments}).json)
        assert same_rows(before, oracle("/orders/", orders, payments))
        prices = shop_dir / "seeds" / "prices.csv"
        lines = prices.read_text().splitlines()
        header = lines[0].split(",")
        col = header.index("unit_price_cents")
        doubled = [lines[0]] + [
            ",".join(str(int(v) * 2) if i == col else v for i, v in enumerate(line.split(","))) for line in lines[1:]
        ]
        prices.write_text("\n".join(doubled) + "\n")
        dbt_project.run_dbt(settings, "seed")
        assert loaded.changed()
        assert loaded.reload()
        after = json.loads(loaded.run("/orders/", {"stg_orders": orders, "stg_payments": payments}).json)
    by_id = {r["order_id"]: r for r in before}
    assert [r["order_value_cents"] for r in after] == [2 * by_id[r["order_id"]]["order_value_cents"] for r in after]


def test_missing_reference_data_is_a_project_error(tmp_path: Path) -> None:
    shop_dir = copy_shop(tmp_path)
    with pytest.raises(duckapi.ProjectError, match="duckapi build"):
        duckapi.load(shop_dir, db=tmp_path / "never-built.duckdb")


def test_a_plain_script_can_load_a_project_that_must_compile(tmp_path: Path) -> None:
    """duckapi.load at a script's top level, no manifest yet: dbt's child process must not
    re-import the script (a multiprocessing spawn child would, and fail)."""
    project_dir = tmp_path / "bundled"
    shutil.copytree(BUNDLED_PROJECT, project_dir, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    script = tmp_path / "script.py"
    script.write_text(
        "import sys, duckapi\n"
        f"project = duckapi.load({str(project_dir)!r}, db={str(tmp_path / 'dev.duckdb')!r})\n"
        f"sys.stdout.buffer.write(project.run('/analyse_data/', {ROWS!r}).json)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert json.loads(done.stdout.decode().splitlines()[-1]) == analyse(ROWS)
