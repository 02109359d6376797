"""`duckapi run`: the pipeline in batch over files, its arguments, outputs and exit codes.

The command is driven through typer's CliRunner (stderr is not a terminal there, so
the progress display must stay silent). The shop example covers several inputs named
NAME=PATH and reference data (a warehouse snapshot on DuckDB; built into the Spark
session by dbt-spark in local mode). Compiling the project is real but done once
per engine for this module; the dbt project on the Spark target is built for real.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pyarrow.parquet as pq
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from duckapi import batch
from duckapi.dbt import project
from duckapi.batch import command
from duckapi.batch.errors import InputError
from duckapi.engines.spark import spark_sql, spark_type
from duckapi.pipeline import INPUT_RELATION, build_pipelines
from duckapi.settings import BUNDLED_PROJECT
from tests.conftest import Built, settings_in
from tests.oracle import ANIMALS, analyse
from tests.payloads import INT64_MAX, INT64_MIN, random_rows
from tests.shop_support import (  # shop_client: a fixture
    ENDPOINTS, ORDER_TYPES, PAYMENT_TYPES, SHOP, dataset_json, oracle, random_shop, same_rows, shop_answer, shop_build,
    shop_client,
)
from tests.spark_support import require_java, shared_engine, spark_manifest, spark_pipelines
from tests.test_equality import write_csv, write_json_array, write_ndjson, write_parquet

URL = "/analyse_data/"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("run")(batch.run)

    @app.command("noop", hidden=True)  # two commands, so `run` stays a subcommand as in duckapi
    def noop() -> None:
        pass

    return app


APP = _app()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compile once per engine (and project) for the whole module; dbt's files go to a temp folder.

    Swapped in duckapi.batch.command, the module whose `run` looks `_compile` up.
    """
    real = command._compile
    cache: dict[Any, Any] = {}
    folder = tmp_path_factory.mktemp("batch-target")

    def once(settings: Any, engine: batch.Engine, target: str | None, dbt_vars: Any = None, recompile: bool = False) -> Any:
        if engine is batch.Engine.spark and target is None and dbt_vars is None:
            return spark_manifest(settings.project_dir)  # shared with the other Spark tests
        # Relation names depend on the warehouse's file name only, not on what it holds.
        key = (settings.project_dir, engine, target, json.dumps(dbt_vars), settings.db_path.name)
        if key not in cache:
            settings = replace(settings, target_path=folder / str(len(cache)) / "target")
            cache[key] = real(settings, engine, target, dbt_vars)
        return cache[key]

    command._compile = once  # type: ignore[assignment]
    try:
        yield
    finally:
        command._compile = real  # type: ignore[assignment]


def run(*args: str) -> Result:
    return CliRunner().invoke(APP, ["run", *args], catch_exceptions=False)


def api_answer(client: TestClient, rows: list[dict[str, Any]]) -> bytes:
    response = client.post(URL, content=json.dumps(rows).encode(), headers={"content-type": "application/json"})
    assert response.status_code == 200
    return response.content


# -- the help --------------------------------------------------------------------------

def test_help_lists_every_option_and_the_exit_codes() -> None:
    result = CliRunner().invoke(APP, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in [
        "--output", "--engine", "--format", "--input-format", "--endpoint", "--project", "--target", "--vars", "--threads",
        "--memory-limit", "--recompile", "--spark-master", "--spark-remote", "--spark-driver-memory", "--spark-conf",
    ]:
        assert option in result.stdout, option
    for words in ["INPUT", "Exit codes", "0 written", "2 bad arguments or unreadable input", "1 the dbt project",
                  "CSV", "Parquet", "NDJSON", "globs", "sc://host:15002", "local[*]"]:
        assert words in result.stdout, words


# -- answers ---------------------------------------------------------------------------

def test_glob_over_files_of_every_format_is_the_api_answer(
    compiled: None, client: TestClient, tmp_path: Path
) -> None:
    rows = random_rows(random.Random(7), 400, groups=12, big=True)
    data = tmp_path / "data"
    data.mkdir()
    write_parquet(rows[:100], data / "a.parquet")
    write_csv(rows[100:200], data / "b.csv")
    write_ndjson(rows[200:300], data / "c.ndjson")
    write_json_array(rows[300:], data / "d.json")
    out = tmp_path / "answer.json"
    result = run(str(data / "*"), "--output", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == api_answer(client, rows)
    assert json.loads(out.read_bytes()) == analyse(rows)
    # Quiet when stderr is not a terminal: nothing at all on success.
    assert result.stdout == "" and result.stderr == ""


def test_folder_in_and_stdout_out(compiled: None, client: TestClient, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_parquet(ANIMALS[:4], folder / "part-0.parquet")
    write_parquet(ANIMALS[4:], folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")  # Spark's marker files are skipped
    result = run(str(folder), "-o", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.encode() == api_answer(client, ANIMALS)


def test_parquet_output_keeps_128_bit_sums_exact(compiled: None, tmp_path: Path) -> None:
    rows = [{"group_id": "max", "event_value": INT64_MAX}] * 4 + [{"group_id": "min", "event_value": INT64_MIN}] * 4
    source = write_parquet(rows, tmp_path / "in.parquet")
    out = tmp_path / "answer.parquet"
    assert run(str(source), "-o", str(out)).exit_code == 0  # the format from the extension
    table = pq.read_table(out)
    assert str(table.schema.field("group_sums").type) == "list<element: struct<group_id: string, value_sum: decimal128(38, 0)>>"
    sums = {s["group_id"]: int(s["value_sum"]) for s in table.column("group_sums").to_pylist()[0]}
    assert sums == {"max": 4 * INT64_MAX, "min": 4 * INT64_MIN}


def test_csv_output(compiled: None, tmp_path: Path) -> None:
    source = write_ndjson(ANIMALS, tmp_path / "in.jsonl")
    out = tmp_path / "answer.txt"
    assert run(str(source), "-o", str(out), "--format", "csv").exit_code == 0
    with out.open(newline="") as handle:
        header, *lines = list(csv.reader(handle))
    assert header == list(analyse(ANIMALS)[0])
    assert len(lines) == 1 and "🐇" in lines[0][0]


def test_input_larger_than_the_memory_limit(compiled: None, tmp_path: Path) -> None:
    """4M rows (about 60 MiB in memory) through a 32 MB DuckDB: it streams, same answer."""
    source = tmp_path / "big.parquet"
    duckdb.sql(
        "copy (select 'g' || (hash(i * 3) % 50)::varchar as group_id, (hash(i) % 100)::bigint - 50 as event_value "
        f"from range(4000000) t(i)) to '{source}' (format parquet)"
    )
    limited, free = tmp_path / "limited.json", tmp_path / "free.json"
    assert run(str(source), "-o", str(limited), "--memory-limit", "32MB", "--threads", "1").exit_code == 0
    assert run(str(source), "-o", str(free)).exit_code == 0
    assert limited.read_bytes() == free.read_bytes()
    answer = json.loads(limited.read_bytes())[0]
    assert sum(g["group_count"] for g in answer["group_histogram"]) == 4_000_000


# -- exit codes -------------------------------------------------------------------------

def _bad_inputs(folder: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (input arguments, text the message must hold)."""
    (folder / "no_column.csv").write_text("group,event_value\na,1\n")
    (folder / "corrupt.parquet").write_bytes(b"not a parquet file")
    (folder / "bad_value.csv").write_text("group_id,event_value\na,1\nb,x\n")
    (folder / "null.ndjson").write_text('{"group_id": "a", "event_value": 1}\n{"group_id": null, "event_value": 2}\n')
    (folder / "missing_field.json").write_text('[{"group_id": "a"}]')
    (folder / "broken.ndjson").write_text('{"group_id": "a", "event_value": 1}\n{"group_id": "b", "event_v')
    (folder / "notes.txt").write_text("hello")
    unreadable = folder / "unreadable.csv"
    unreadable.write_text("group_id,event_value\n")
    unreadable.chmod(0)
    return {
        "missing file": ([str(folder / "nope.csv")], "nope.csv: no such file"),
        "empty glob": ([str(folder / "*.xlsx")], "no file matches"),
        "unknown format": ([str(folder / "notes.txt")], "notes.txt: cannot tell the format"),
        "missing column": ([str(folder / "no_column.csv")], "no_column.csv"),
        "corrupt parquet": ([str(folder / "corrupt.parquet")], "corrupt.parquet"),
        "bad value": ([str(folder / "bad_value.csv")], "bad_value.csv"),
        "null in a not_null column": ([str(folder / "null.ndjson")], "group_id is null or missing in a row of"),
        "missing field": ([str(folder / "missing_field.json")], "event_value is null or missing in a row of"),
        "malformed json": ([str(folder / "broken.ndjson")], "broken.ndjson"),
        **({} if _is_root() else {"unreadable": ([str(unreadable)], "unreadable.csv: cannot be read")}),
    }


def _is_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0  # root reads a chmod 0 file anyway


@pytest.mark.parametrize("case", [
    "missing file", "empty glob", "unknown format", "missing column", "corrupt parquet", "bad value",
    "null in a not_null column", "missing field", "malformed json",
])
def test_unreadable_input_exits_2_naming_file_and_reason(compiled: None, tmp_path: Path, case: str) -> None:
    inputs, expected = _bad_inputs(tmp_path)[case]
    out = tmp_path / "answer.json"
    out.write_text("previous answer")
    result = run(*inputs, "-o", str(out))
    assert result.exit_code == 2, result.output
    assert expected in result.stderr, result.stderr
    assert out.read_text() == "previous answer"  # a failed run leaves the old output alone
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".answer")] == []


@pytest.mark.parametrize("args, expected", [
    (["--format", "xml"], "Invalid value for '--format'"),
    (["--output", "-", "--format", "parquet"], "Parquet cannot go to stdout"),
    (["--output", "/no/such/folder/answer.json"], "does not exist"),
    (["--spark-master", "local[1]"], "need --engine spark"),
    (["--engine", "spark", "--spark-master", "local[1]", "--spark-remote", "sc://127.0.0.1:15002"], "not both"),
    (["--engine", "spark", "--spark-conf", "no-equals-sign"], "expected KEY=VALUE"),
    (["--endpoint", "/nowhere/"], "no such served model"),
    (["--vars", "[1, 2]"], "expected a mapping"),
])
def test_bad_arguments_exit_2(compiled: None, tmp_path: Path, args: list[str], expected: str) -> None:
    source = write_parquet(ANIMALS, tmp_path / "in.parquet")
    if "--output" not in args:
        args = [*args, "--output", str(tmp_path / "answer.json")]
    result = run(str(source), *args)
    assert result.exit_code == 2, result.output
    assert expected in result.output


def test_a_cluster_targets_env_vars_do_not_stop_a_duckdb_run(
    compiled: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DUCKAPI_SPARK_MASTER (which a `cluster` profile reads) set in the shell is not a
    typed --spark-master: the DuckDB run goes on; both from the environment are ambiguous."""
    source = tmp_path / "rows.csv"
    source.write_text("group_id,event_value\na,1\n")
    monkeypatch.setenv("DUCKAPI_SPARK_MASTER", "spark://10.0.0.7:7077")
    result = run(str(source), "-o", str(tmp_path / "answer.json"))
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("DUCKAPI_SPARK_REMOTE", "sc://10.0.0.7:15002")
    both = run(str(source), "-o", str(tmp_path / "answer.json"), "--engine", "spark")
    assert both.exit_code == 2 and "not both" in both.output


def test_missing_inputs_is_a_usage_error() -> None:
    result = run("--output", "x.json")
    assert result.exit_code == 2
    assert "Missing argument" in result.output


def test_failing_model_exits_1(compiled: None, tmp_path: Path) -> None:
    broken = tmp_path / "project"
    shutil.copytree(BUNDLED_PROJECT, broken, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    model = broken / "models" / "analyses" / "group_sums.sql"
    model.write_text(model.read_text().replace("group by group_id", "group by group_id having no_such_column > 0"))
    source = write_parquet(ANIMALS, tmp_path / "in.parquet")
    result = run(str(source), "-o", str(tmp_path / "answer.json"), "--project", str(broken))
    assert result.exit_code == 1, result.output
    # Checked when the project loads, as for serving: before any input is read.
    assert "the compiled pipeline of analysis does not run" in result.stderr and "no_such_column" in result.stderr
    assert not (tmp_path / "answer.json").exists()


def test_project_that_does_not_compile_exits_1(compiled: None, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    source = write_parquet(ANIMALS, tmp_path / "in.parquet")
    result = run(str(source), "-o", str(tmp_path / "answer.json"), "--project", str(tmp_path / "empty"))
    assert result.exit_code == 1, result.output
    assert "dbt" in result.stderr


# -- Spark ------------------------------------------------------------------------------

def test_spark_statement_is_spark_sql() -> None:
    shared_engine()
    pipeline = spark_pipelines()[URL]
    sql = spark_sql(pipeline)
    for node in (*(i.node for i in pipeline.inputs), *pipeline.nodes):
        assert node.relation_name and f" {node.relation_name}\n" not in sql and f" {node.relation_name})" not in sql
        assert f"`duckapi__{node.name}`" in sql
    assert '"' not in sql  # no ANSI-quoted identifiers: Spark reads "..." as a string
    assert sql.count(INPUT_RELATION) == 1 and f"`{pipeline.inputs[0].relation}`" in sql
    assert "collect_list" in sql and "decimal(38, 0)" in sql  # the default__ macros, rendered for Spark
    assert "cast(`group_id` as string)" in sql  # the contract's varchar, in Spark's spelling
    assert spark_type("varchar") == "string" and spark_type("VARCHAR(10)") == "string" and spark_type("bigint") == "bigint"


def test_run_on_spark_through_the_command(compiled: None, client: TestClient, tmp_path: Path) -> None:
    shared_engine()  # the command joins this process's running session instead of starting a JVM
    rows = random_rows(random.Random(11), 300, groups=10, big=True)
    rows = [r for r in rows if "\0" not in r["group_id"]]  # Spark's CSV reader drops NUL (documented)
    source = write_csv(rows, tmp_path / "in.csv")
    out = tmp_path / "answer.json"
    result = run(str(source), "-o", str(out), "--engine", "spark")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == api_answer(client, rows)
    assert result.stderr == ""
    assert shared_engine().session.range(1).count() == 1  # the shared session is still running

    bad = tmp_path / "bad.csv"
    bad.write_text("group_id,event_value\na,1\n,2\n")
    result = run(str(bad), "-o", str(out), "--engine", "spark")
    assert result.exit_code == 2 and "group_id is null or missing in a row of" in result.stderr


def test_dbt_build_on_the_spark_target_passes_the_same_tests(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dbt build --target spark`: seed, every model, every data test (dbt-spark, session method)."""
    require_java()
    monkeypatch.setenv("DUCKAPI_SPARK_WAREHOUSE", str(tmp_path / "warehouse"))
    settings = settings_in(tmp_path, target="spark")
    project.build(settings)
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert all(s in ("success", "pass") for s in statuses.values()), statuses
    duckdb_results = json.loads((built.settings.resolved_target_path / "run_results.json").read_text())["results"]
    assert set(statuses) == {r["unique_id"] for r in duckdb_results}  # the same models and tests
    assert any("analysis_matches_expected" in uid for uid in statuses)
    assert not (BUNDLED_PROJECT / "metastore_db").exists() and not (BUNDLED_PROJECT / "derby.log").exists()
    spark_manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    assert build_pipelines(spark_manifest)[URL].nodes  # and it compiles to a pipeline


def test_another_project_with_several_endpoints_and_vars(compiled: None, tmp_path: Path) -> None:
    example = BUNDLED_PROJECT.parent / "examples" / "web_events"
    seed = example / "seeds" / "example_events.csv"
    out = tmp_path / "sessions.json"
    result = run(str(seed), "-o", str(out), "--project", str(example))
    assert result.exit_code == 2 and "choose one with --endpoint" in result.stderr
    assert run(str(seed), "-o", str(out), "--project", str(example), "--endpoint", "/sessions/").exit_code == 0
    default = json.loads(out.read_bytes())
    by_name = tmp_path / "by-name.json"
    assert run(str(seed), "-o", str(by_name), "--project", str(example), "--endpoint", "user_sessions").exit_code == 0
    assert json.loads(by_name.read_bytes()) == default
    short = tmp_path / "short-gap.json"
    args = ["--project", str(example), "--endpoint", "/sessions/", "--vars", "{session_gap_minutes: 1}"]
    assert run(str(seed), "-o", str(short), *args).exit_code == 0
    assert default and json.loads(short.read_bytes()) != default  # a 1-minute gap makes more sessions


# -- several inputs and reference data: the shop example ---------------------------------

def _shop_inputs(folder: Path, seed: int = 5) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Random orders and payments as files, and the NAME=PATH arguments that name them:
    orders in two files (the name repeated), payments in a folder of two formats."""
    orders, payments = random_shop(seed, orders=120, payments=200, unknown=0.2)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "payments").mkdir()
    first = write_parquet(orders[:60], folder / "orders-a.parquet", ORDER_TYPES)
    second = write_csv(orders[60:], folder / "orders-b.csv", ORDER_TYPES)
    write_ndjson(payments[:100], folder / "payments" / "p-0.ndjson", PAYMENT_TYPES)
    write_json_array(payments[100:], folder / "payments" / "p-1.json", PAYMENT_TYPES)
    names = [f"stg_orders={first}", f"stg_payments={folder / 'payments'}", f"stg_orders={second}"]
    return orders, payments, names


def _shop_args(path: str, db: Path | None = None) -> list[str]:
    return ["--project", str(SHOP), "--endpoint", path, "--db", str(db or shop_build().settings.db_path)]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_several_inputs_by_name_and_reference_data_on_duckdb(
    compiled: None, shop_client: TestClient, tmp_path: Path, path: str
) -> None:
    orders, payments, names = _shop_inputs(tmp_path / "in")
    out = tmp_path / "answer.json"
    result = run(*names, "-o", str(out), *_shop_args(path))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == shop_answer(shop_client, path, orders, payments)
    assert same_rows(json.loads(out.read_bytes()), oracle(path, orders, payments))
    assert result.stdout == "" and result.stderr == ""


def test_several_inputs_and_reference_data_on_spark(
    compiled: None, shop_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In local mode dbt-spark builds the seeds customers and prices into the run's session
    first (in this process, so it joins the session), quietly."""
    shared_engine()  # the command joins this process's running session
    monkeypatch.setenv("DUCKAPI_TARGET_PATH", str(tmp_path / "target"))  # dbt-spark's files, not in examples/
    orders, payments, names = _shop_inputs(tmp_path / "in", seed=6)
    out = tmp_path / "answer.json"
    result = run(*names, "-o", str(out), "--engine", "spark", *_shop_args("/customers/"))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == shop_answer(shop_client, "/customers/", orders, payments)
    assert result.stdout == "" and result.stderr == ""
    assert (tmp_path / "target" / "spark" / "run_results.json").exists()
    assert not shared_engine().missing_references(spark_pipelines(SHOP)["/customers/"].references)


def test_a_folder_output_is_a_parquet_dataset_written_where_the_work_runs(
    compiled: None, shop_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-o out/`: on Spark the executors write the part files (a global sort in the API's
    order, never collected to the driver), on DuckDB one part; both, read in part order,
    are the API's answer. Replacing an earlier dataset is fine, a folder of other files not."""
    shared_engine()
    monkeypatch.setenv("DUCKAPI_TARGET_PATH", str(tmp_path / "target"))
    orders, payments, names = _shop_inputs(tmp_path / "in", seed=8)
    expected = shop_answer(shop_client, "/orders/", orders, payments)
    for engine in ("duckdb", "spark"):
        out = tmp_path / engine
        for _ in range(2):  # the second run replaces the first's dataset
            result = run(*names, "-o", f"{out}/", "--engine", engine, *_shop_args("/orders/"))
            assert result.exit_code == 0, result.output
            assert dataset_json(out) == expected, engine
        assert json.loads((tmp_path / f"{engine}.duckapi.json").read_text())["rows"] == len(json.loads(expected))
    assert len(list((tmp_path / "spark").glob("part-*.parquet"))) >= 1
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    refused = run(*names, "-o", f"{tmp_path / 'other'}/", *_shop_args("/orders/"))
    assert refused.exit_code == 2 and "other files" in refused.output
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    as_json = run(*names, "-o", f"{tmp_path / 'json'}/", "--format", "json", *_shop_args("/orders/"))
    assert as_json.exit_code == 2 and "Parquet dataset" in as_json.output


@pytest.mark.parametrize("case, expected", [
    ("missing", "input stg_payments is missing: give stg_payments=PATH"),
    ("unknown", "unknown input stg_refunds"),
    ("unnamed", "which input is it? /customers/ takes the inputs stg_orders, stg_payments"),
])
def test_missing_or_unknown_input_name_exits_2(compiled: None, tmp_path: Path, case: str, expected: str) -> None:
    _, _, names = _shop_inputs(tmp_path / "in")
    orders = [n for n in names if n.startswith("stg_orders=")]
    payments = next(n for n in names if n.startswith("stg_payments="))
    arguments = {
        "missing": orders,
        "unknown": [*orders, payments, payments.replace("stg_payments=", "stg_refunds=")],
        "unnamed": [*orders, payments.removeprefix("stg_payments=")],
    }[case]
    result = run(*arguments, "-o", str(tmp_path / "answer.json"), *_shop_args("/customers/"))
    assert result.exit_code == 2, result.output
    assert expected in result.stderr, result.stderr
    assert not (tmp_path / "answer.json").exists()


@pytest.mark.parametrize("warehouse", ["no such file", "built without prices"])
def test_missing_reference_relation_exits_1_before_reading_inputs(compiled: None, tmp_path: Path, warehouse: str) -> None:
    db = tmp_path / "wh" / "shop.duckdb"
    if warehouse == "built without prices":
        db.parent.mkdir()
        shutil.copyfile(shop_build().settings.db_path, db)
        with duckdb.connect(str(db)) as con:
            con.execute("drop table main.prices")
    _, _, names = _shop_inputs(tmp_path / "in")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"not parquet")  # never read: the references are checked first
    out = tmp_path / "answer.json"
    result = run(*names, f"stg_orders={corrupt}", "-o", str(out), *_shop_args("/customers/", db))
    assert result.exit_code == 1, result.output
    message = " ".join(result.stderr.split())
    assert "models/marts/customer_orders.sql: model customer_orders reads" in message
    assert 'seed prices ("shop"."main"."prices")' in message
    shown = SHOP.relative_to(Path.cwd()) if SHOP.is_relative_to(Path.cwd()) else SHOP  # as a user types it
    assert f"run `duckapi build --project {shown} --db {db}`" in message  # the full command for this project
    assert ("seed customers" in message) == (warehouse == "no such file")
    assert f"not in the warehouse {db}" in message
    assert not out.exists()


def test_spark_cluster_without_the_reference_relations_exits_1(
    compiled: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a cluster nothing is built: a relation missing from its catalog is named."""
    from duckapi.engines.spark import SparkEngine

    shared_engine()
    pipelines = {
        path: replace(p, references=tuple(replace(r, relation_name=f"elsewhere.{r.name}") for r in p.references))
        for path, p in spark_pipelines(SHOP).items()
    }
    monkeypatch.setattr(command, "build_pipelines", lambda *args, **kwargs: pipelines)
    monkeypatch.setattr(SparkEngine, "is_local", property(lambda self: False))
    _, _, names = _shop_inputs(tmp_path / "in")
    result = run(*names, "-o", str(tmp_path / "answer.json"), "--engine", "spark", *_shop_args("/orders/"))
    assert result.exit_code == 1, result.output
    message = " ".join(result.stderr.split())
    assert "model order_totals reads seed prices (elsewhere.prices), which is not in the Spark catalog" in message
    shown = SHOP.relative_to(Path.cwd()) if SHOP.is_relative_to(Path.cwd()) else SHOP
    assert f"build it there: `duckapi build --project {shown} --target cluster`" in message


def test_engine_spark_without_the_spark_extra_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PySpark missing (simulated: its import fails): exit 2 naming the extra, before any compile."""
    import builtins

    real_import = builtins.__import__

    def no_pyspark(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pyspark" or name.startswith("pyspark."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    for module in [m for m in list(sys.modules) if m == "pyspark" or m.startswith("pyspark.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    source = tmp_path / "rows.json"
    source.write_text("[]")
    result = CliRunner().invoke(APP, ["run", str(source), "-o", str(tmp_path / "out.json"), "--engine", "spark"])
    assert result.exit_code == 2, result.output
    assert "install duckapi[spark] (pip install -e '.[spark]')" in " ".join(result.output.split())
    assert not (tmp_path / "out.json").exists()


def test_the_cluster_target_is_the_one_source_of_spark_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shop's `cluster` target, rendered as dbt renders it, is what `duckapi run` starts
    its session from: a persistent Hive catalog (Derby folder or JDBC URL), the master, the
    warehouse; --spark-conf on top; a missing env var is exit 2 naming it. (The real cluster:
    tests/spark_cluster_check.py, run by `python -m bench.cluster`.)"""
    from duckapi.batch.command import _spark_options

    settings = settings_in(tmp_path, project_dir=SHOP)  # profiles only: nothing is built
    monkeypatch.delenv("DUCKAPI_SPARK_CATALOG", raising=False)
    monkeypatch.setenv("DUCKAPI_SPARK_MASTER", "spark://10.0.0.7:7077")
    monkeypatch.setenv("DUCKAPI_SPARK_CATALOG_WAREHOUSE", str(tmp_path / "warehouse"))
    with pytest.raises(InputError, match="env var DUCKAPI_SPARK_CATALOG is required but not set"):
        _spark_options(settings, "cluster", None, None, "4g", {})
    monkeypatch.setenv("DUCKAPI_SPARK_CATALOG", str(tmp_path / "catalog"))
    options = _spark_options(settings, "cluster", None, None, "4g", {"spark.executor.cores": "1"})
    assert options.master == "spark://10.0.0.7:7077" and options.driver_memory == "4g"
    assert options.conf["spark.sql.catalogImplementation"] == "hive"
    assert options.conf["spark.hadoop.javax.jdo.option.ConnectionURL"] == (
        f"jdbc:derby:;databaseName={tmp_path / 'catalog'}/metastore_db;create=true")
    assert options.conf["spark.sql.warehouse.dir"] == str(tmp_path / "warehouse")
    assert options.conf["spark.executor.cores"] == "1" and "spark.master" not in options.conf
    monkeypatch.setenv("DUCKAPI_SPARK_CATALOG", "jdbc:postgresql://db/metastore")
    assert _spark_options(settings, "cluster", "local[2]", None, "4g", {}).conf[
        "spark.hadoop.javax.jdo.option.ConnectionURL"] == "jdbc:postgresql://db/metastore"
    assert _spark_options(settings, "cluster", "local[2]", None, "4g", {}).master == "local[2]"  # the flag wins
    # The local `spark` target keeps an in-memory catalog in the run's own scratch folder.
    local = _spark_options(settings, None, None, None, "4g", {})
    assert local.conf["spark.sql.catalogImplementation"] == "in-memory" and "spark.sql.warehouse.dir" not in local.conf
