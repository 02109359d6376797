"""dbt unit tests as duckapi pipelines: the given rows are the inputs, the model is served.

A dbt unit test (`unit_tests:` in a project's YAML, dbt 1.8+) names a model, rows for the
relations it reads (`given`, each a ref or a source) and the rows it must return
(`expect`). Here each becomes what a request is: the tested model is the served model of a
pipeline whose inputs are the given relations, typed as any input is (declared types, else
the warehouse's: relations.input_columns), and the given rows are the request. The answer
is compared as dbt compares it: only the columns `expect` names, as a multiset (order does
not matter), expected values cast to the model's column types. Fixture rows come as `dict`,
`csv` (inline or a `fixture:` file under the test paths' `fixtures/`) or `sql`; columns a
fixture leaves out are null.

A test that overrides macros or env vars, or gives `this` (an incremental model's previous
state) or an ephemeral model, is rendered by dbt as dbt's own unit-test run renders it
(project.compile_unit_tests): each given is then a relation of its own in that SQL, fed the
given rows as an input, and the rest runs as any test does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import duckdb
import pyarrow as pa

from duckapi.pipeline import relations
from duckapi.library.examples import csv_rows, given_input
from duckapi.errors import PipelineError
from duckapi.pipeline import Endpoint, Input, Node, Pipeline, build_pipeline, quote_identifier

#: How a unit test names its tested model's previous state (an incremental model's rows).
THIS = "this"



class Skipped(Exception):
    """An engine cannot run this test as dbt would: reported as skipped, with the reason."""


@dataclass(frozen=True)
class Fixture:
    """Rows in one of dbt's fixture formats: a list of dicts, or SQL that selects them."""

    rows: tuple[Mapping[str, Any], ...] = ()
    sql: str | None = None


@dataclass(frozen=True)
class Given:
    name: str  # as an input is named: a model or seed, or source_name.table_name
    fixture: Fixture


@dataclass(frozen=True)
class UnitTest:
    name: str
    model: str
    path: str  # the YAML file that declares it
    given: tuple[Given, ...]
    expect: Fixture
    vars: Mapping[str, Any] = field(default_factory=dict)
    #: Why duckapi cannot run it as dbt would, if so.
    skip: str | None = None
    unique_id: str = ""
    #: Its SQL is the tested model as dbt renders it for this test (macro or env var
    #: overrides, a given on `this` or an ephemeral model), not the model as served.
    rendered_by_dbt: bool = False


@dataclass(frozen=True)
class Verdict:
    """One test's result on one engine: a unit test (`model` the tested model) or an
    endpoint fixture (`model` "fixture")."""

    name: str
    model: str
    path: str
    engine: str
    status: str  # passed, failed, skipped, error
    detail: str = ""
    seconds: float = 0.0


def unit_tests(manifest: dict[str, Any], project_dir: Path, select: Sequence[str] = ()) -> list[UnitTest]:
    """The manifest's unit tests (those named in `select`, by test or model name, if any)."""
    found = []
    for raw in sorted((manifest.get("unit_tests") or {}).values(), key=lambda r: (r["model"], r["name"])):
        if select and raw["name"] not in select and raw["model"] not in select:
            continue
        found.append(_unit_test(raw, manifest, project_dir))
    return found


def _unit_test(raw: dict[str, Any], manifest: dict[str, Any], project_dir: Path) -> UnitTest:
    path = raw.get("original_file_path", raw["unique_id"])
    skip = None
    overrides = raw.get("overrides") or {}
    by_dbt = bool(overrides.get("macros") or overrides.get("env_vars"))
    given = []
    for item in raw.get("given") or []:
        text = str(item.get("input", "")).strip()
        name = THIS if text == THIS else given_input(text)
        if name is None:
            skip = skip or f"gives {text}, which is not a ref(), a source() or this"
            continue
        by_dbt = by_dbt or name == THIS or _ephemeral(manifest, name)
        given.append(Given(name, _fixture(item, project_dir, manifest)))
    return UnitTest(
        name=raw["name"], model=raw["model"], path=path, given=tuple(given),
        expect=_fixture(raw.get("expect") or {}, project_dir, manifest), vars=overrides.get("vars") or {}, skip=skip,
        unique_id=raw["unique_id"], rendered_by_dbt=by_dbt,
    )


def _ephemeral(manifest: dict[str, Any], name: str) -> bool:
    try:
        raw = relations.find_relation(manifest, name)
    except PipelineError:
        return False
    return relations.is_ephemeral(raw)


def _fixture(item: Mapping[str, Any], project_dir: Path, manifest: dict[str, Any]) -> Fixture:
    """A given's or expect's rows, whatever their format (a `fixture:` file read here)."""
    fmt = item.get("format") or "dict"
    rows = item.get("rows")
    if rows is None and item.get("fixture"):
        rows = _fixture_file(project_dir, str(item["fixture"]), fmt)
    if fmt == "sql":
        return Fixture(sql=str(rows or "").strip().rstrip(";"))
    if fmt == "csv" and isinstance(rows, str):
        rows = csv_rows(rows)
    return Fixture(rows=tuple(dict(r) for r in rows or ()))


def _fixture_file(project_dir: Path, name: str, fmt: str) -> str:
    suffix = ".sql" if fmt == "sql" else ".csv"
    matches = sorted(project_dir.rglob(f"fixtures/**/{name}{suffix}")) or sorted(project_dir.rglob(f"{name}{suffix}"))
    matches = [m for m in matches if "target" not in m.relative_to(project_dir).parts]
    if not matches:
        raise PipelineError(f"no fixture file {name}{suffix} under {project_dir}")
    return matches[0].read_text()


def pipeline_of(test: UnitTest, manifest: dict[str, Any], project_dir: Path,
                warehouse: relations.WarehouseSchema | None) -> Pipeline:
    """The tested model served over its given relations."""
    endpoint = Endpoint(path=f"/{test.model}/", output=test.model, inputs=tuple(g.name for g in test.given))
    return build_pipeline(manifest, endpoint, project_dir, warehouse=warehouse)


def rendered_pipeline(test: UnitTest, rendering: Mapping[str, Any], manifest: dict[str, Any], project_dir: Path,
                      warehouse: relations.WarehouseSchema | None, typed_as: Pipeline | None = None) -> Pipeline:
    """The tested model as dbt rendered it for this test (project.compile_unit_tests), its
    givens the inputs. Each given is typed as an input is (declared, else the warehouse's:
    `this` is the model's own relation), or as in `typed_as` (the same test on DuckDB); a
    given with no relation (an ephemeral model) takes the types its SQL fixture yields."""
    if "error" in rendering:
        raise PipelineError(f"dbt cannot render unit test {test.name}: {rendering['error']}")
    model = relations.find_relation(manifest, test.model)
    inputs = []
    for index, (given, relation) in enumerate(zip(test.given, rendering["given"])):
        raw = model if given.name == THIS else relations.find_relation(manifest, given.name)
        if typed_as is not None:
            columns = typed_as.inputs[index].columns
        elif raw.get("relation_name") and not relations.is_ephemeral(raw):
            columns = relations.input_columns(raw, project_dir, warehouse,
                                              relations.not_null_tested(manifest, raw["unique_id"]))
        else:
            columns = _fixture_columns(given, raw)
        node = Node(raw["unique_id"], given.name, relation, "", (), "view", raw.get("original_file_path", ""))
        inputs.append(Input(index, given.name, node, columns))
    output = Node(model["unique_id"], model["name"], None, rendering["sql"], tuple(i.node.unique_id for i in inputs),
                  "view", model.get("original_file_path", ""))
    endpoint = Endpoint(path=f"/{test.model}/", output=test.model, inputs=tuple(g.name for g in test.given))
    return Pipeline(endpoint=endpoint, inputs=tuple(inputs), output_node=output, nodes=(output,))


def _fixture_columns(given: Given, raw: Mapping[str, Any]) -> tuple[relations.Column, ...]:
    if given.fixture.sql is None:
        raise PipelineError(f"{raw.get('original_file_path', raw['unique_id'])}: {given.name} has no relation in the "
                            "warehouse to type its given rows by: give them as `format: sql` (as dbt requires)")
    with duckdb.connect(":memory:") as con:
        shape = con.sql(f"select * from ({given.fixture.sql}) limit 0")
        return tuple(relations.Column(n, str(t), False) for n, t in zip(shape.columns, shape.types))


def input_tables(pipeline: Pipeline, test: UnitTest) -> tuple[pa.Table, ...]:
    """Each given's rows as an Arrow table in its input's types; left-out columns null."""
    tables = []
    with duckdb.connect(":memory:") as con:
        for item, given in zip(pipeline.inputs, test.given):
            _relation(con, given.fixture, [c.name for c in item.columns])
            typed = ", ".join(f"cast({quote_identifier(c.name)} as {c.data_type}) as {quote_identifier(c.name)}"
                              for c in item.columns)
            tables.append(con.sql(f"select {typed} from raw").to_arrow_table())
            con.unregister("raw")
    return tuple(tables)


def _relation(con: duckdb.DuckDBPyConnection, fixture: Fixture, columns: Sequence[str]) -> None:
    """Register the fixture's rows as `raw`, with every one of `columns` (null where left out)."""
    if fixture.sql is not None:
        table = con.sql(fixture.sql).to_arrow_table()
        rows = table.to_pylist()
    else:
        rows = [dict(r) for r in fixture.rows]
    names = list(columns) if columns else list(dict.fromkeys(k for r in rows for k in r))
    lower = {n.lower(): n for n in names}
    data: dict[str, list[Any]] = {n: [] for n in names}
    for row in rows:
        given = {str(k).lower(): v for k, v in row.items()}
        for key, name in lower.items():
            value = given.get(key)
            data[name].append(json.dumps(value) if isinstance(value, (dict, list)) else value)
    arrays = {n: pa.array([None if v is None else str(v) for v in values], pa.string()) for n, values in data.items()}
    con.register("raw", pa.table(arrays) if arrays else pa.table({}))


def compare(answer: pa.Table, expect: Fixture) -> str | None:
    """None when `answer` holds exactly the expected rows (the columns `expect` names, in any
    order, expected values cast to the answer's types), else the differing rows, as dbt shows them."""
    with duckdb.connect(":memory:") as con:
        con.register("actual", answer)
        types = {name: str(t) for name, t in zip(answer.column_names, con.sql("select * from actual").types)}
        if expect.sql is not None:
            expected_names = con.sql(f"select * from ({expect.sql}) limit 0").columns
        else:
            expected_names = list(dict.fromkeys(k for r in expect.rows for k in r))
        by_lower = {n.lower(): n for n in answer.column_names}
        missing = [n for n in expected_names if n.lower() not in by_lower]
        if missing:
            return f"the model has no column {', '.join(missing)} (it has {', '.join(answer.column_names)})"
        named = [by_lower[n.lower()] for n in expected_names]
        _relation(con, expect, expected_names)
        cast = ", ".join(f"cast(raw.{quote_identifier(e)} as {types[n]}) as {quote_identifier(n)}"
                         for e, n in zip(expected_names, named))
        projection = ", ".join(quote_identifier(n) for n in named)
        con.execute(f"create temp table expected as select {cast} from raw")
        extra = con.sql(f"select {projection} from actual except all select * from expected").fetchall()
        short = con.sql(f"select * from expected except all select {projection} from actual").fetchall()
    if not extra and not short:
        return None
    lines = [" | ".join(["+/-", *named])]
    lines += [" | ".join(["-", *map(_shown, row)]) for row in short]
    lines += [" | ".join(["+", *map(_shown, row)]) for row in extra]
    return "actual differs from expected (- expected, + actual):\n" + "\n".join(lines)


def _shown(value: Any) -> str:
    return "null" if value is None else str(value)


def run_test(test: UnitTest, engine: str, pipeline_for: Callable[[UnitTest], Pipeline],
             execute: Callable[[UnitTest, Pipeline, tuple[pa.Table, ...]], pa.Table]) -> Verdict:
    """One unit test on one engine: skipped (with the reason), passed, failed (with the
    differing rows) or error (the pipeline could not be built or run)."""
    started = time.perf_counter()
    if test.skip:
        return Verdict(test.name, test.model, test.path, engine, "skipped", test.skip)
    try:
        pipeline = pipeline_for(test)
        answer = execute(test, pipeline, input_tables(pipeline, test))
        difference = compare(answer, test.expect)
    except Skipped as exc:
        return Verdict(test.name, test.model, test.path, engine, "skipped", str(exc), time.perf_counter() - started)
    except Exception as exc:  # reported as the test's error, never lost
        status, difference = "error", f"{type(exc).__name__}: {exc}"
    else:
        status = "passed" if difference is None else "failed"
    return Verdict(test.name, test.model, test.path, engine, status, difference or "", time.perf_counter() - started)
