"""`duckapi test`: run the project's dbt unit tests through duckapi, on DuckDB and Spark."""

from __future__ import annotations

import enum
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional

import pyarrow as pa
import typer
from rich.console import Console
from rich.markup import escape

from duckapi.serving import rendering
from duckapi.errors import PipelineError, ProjectError
from duckapi.pipeline import Pipeline
from duckapi.settings import Settings
from duckapi.testing.fixtures import EndpointFixture, check, fixtures, record
from duckapi.testing.unit import Skipped, UnitTest, Verdict, pipeline_of, rendered_pipeline, run_test, unit_tests

if TYPE_CHECKING:
    from duckapi.engines.spark import SparkEngine

out = Console(highlight=False, soft_wrap=True)
MARKS = {"passed": "[green]PASS[/]", "failed": "[red]FAIL[/]", "error": "[red]ERROR[/]", "skipped": "[yellow]SKIP[/]"}


class TestEngine(str, enum.Enum):
    duckdb = "duckdb"
    spark = "spark"
    all = "all"


def test(
    project: Annotated[Optional[Path], typer.Option("--project", help="dbt project folder [default: the bundled duckapi_dbt]")] = None,
    db: Annotated[Optional[Path], typer.Option("--db", help="DuckDB file dbt builds (input types not declared are read there)")] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="dbt target in profiles.yml")] = None,
    engine: Annotated[TestEngine, typer.Option("--engine", help="where to run them")] = TestEngine.duckdb,
    select: Annotated[Optional[list[str]], typer.Option("--select", help="a unit test or a model's name (repeat)")] = None,
    junit_xml: Annotated[Optional[Path], typer.Option("--junit-xml", help="also write the verdicts as JUnit XML")] = None,
) -> None:
    """Run every `unit_tests:` entry of the project through duckapi's own path (the tested
    model served over its given rows), not dbt's; exit 0 only when none failed."""
    from duckapi.serving.service import compile_project

    settings = Settings.from_env(project_dir=project, db_path=db, target=target)
    try:
        manifest = compile_project(settings)
        tests = unit_tests(manifest, settings.project_dir, select or ())
    except ProjectError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1)
    engines = ["duckdb", "spark"] if engine is TestEngine.all else [engine.value]
    verdicts: list[Verdict] = []
    broken = False
    for name in engines:
        runner = run_on_duckdb if name == "duckdb" else run_on_spark
        try:
            verdicts += runner(settings, manifest, tests, _report)
        except Exception as exc:  # the engine could not run the tests at all (a missing target, no Java)
            Console(stderr=True).print(f"[bold red]error:[/] cannot run the unit tests on {name}: "
                                       f"{escape(str(getattr(exc, 'message', exc)))}")
            broken = True
    recorded = fixtures(settings.project_dir, select or ())
    if recorded and "duckdb" in engines:
        verdicts += _fixtures(settings, manifest, recorded, _report)
    counts = {s: sum(v.status == s for v in verdicts) for s in ("passed", "failed", "error", "skipped")}
    failed = counts["failed"] + counts["error"]
    closing = f"{counts['passed']} passed, {failed} failed" + (f", {counts['skipped']} skipped" if counts["skipped"] else "")
    out.print(closing)
    if junit_xml is not None:
        write_junit(verdicts, junit_xml)
    raise typer.Exit(1 if failed or broken else 0)


def _report(verdict: Verdict) -> None:
    out.print(f"{MARKS[verdict.status]} {verdict.engine} {escape(verdict.model)}.{escape(verdict.name)} ({verdict.seconds:.2f} s)")
    if verdict.detail and verdict.status != "passed":
        for line in verdict.detail.splitlines():
            out.print(f"    {escape(line)}")


def _manifests(manifest: dict[str, Any], compile: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[UnitTest], dict[str, Any]]:
    """The manifest each test runs on: the project's, or one compiled with its vars overrides."""
    compiled: dict[str, dict[str, Any]] = {}

    def manifest_for(test: UnitTest) -> dict[str, Any]:
        if not test.vars:
            return manifest
        key = json.dumps(test.vars, sort_keys=True)
        if key not in compiled:
            compiled[key] = compile(dict(test.vars))
        return compiled[key]

    return manifest_for


def _renderings(settings: Settings, tests: list[UnitTest], db_path: Path | None = None) -> dict[str, dict[str, Any]]:
    """dbt's rendering of each test that needs it (UnitTest.rendered_by_dbt), one compile."""
    from duckapi.dbt.project import compile_unit_tests

    return compile_unit_tests(settings, {t.unique_id: t.model for t in tests if t.rendered_by_dbt and not t.skip}, db_path)


def run_on_duckdb(settings: Settings, manifest: dict[str, Any], tests: list[UnitTest], report: Callable[[Verdict], None]) -> list[Verdict]:
    """Each test as a request is run: on a lane of the engine, the warehouse snapshot attached."""
    from duckapi.engines.duckdb import DuckDBEngine
    from duckapi.serving.service import STARTUP_WAIT_S, compile_project
    from duckapi.dbt.warehouse import Snapshots

    snapshots = Snapshots(settings.db_path)
    engine = DuckDBEngine(settings, snapshots.folder)
    try:
        warehouse = snapshots.take(wait=STARTUP_WAIT_S)
        manifest_for = _manifests(manifest, lambda dbt_vars: compile_project(settings, dbt_vars))
        renderings = _renderings(settings, tests, warehouse.path if warehouse else None)

        def pipeline_for(test: UnitTest) -> Pipeline:
            schema = lambda relation: engine.warehouse_schema(warehouse, relation)  # noqa: E731
            if test.rendered_by_dbt:
                pipeline = rendered_pipeline(test, renderings[test.unique_id], manifest, settings.project_dir, schema)
            else:
                pipeline = pipeline_of(test, manifest_for(test), settings.project_dir, schema)
            return replace(pipeline, warehouse=warehouse)

        def execute(test: UnitTest, pipeline: Pipeline, tables: tuple[pa.Table, ...]) -> pa.Table:
            """A data-dependent model rendered by dbt over the given rows first, as a request's
            new rows are (serving/rendering.py), with the test's vars."""
            if pipeline.introspection.refusal is not None:
                raise PipelineError(pipeline.introspection.refusal)
            if pipeline.introspection.dependent:
                rendered = rendering.render_on_snapshot(settings, snapshots, pipeline, tables, dict(test.vars) or None)
                if rendered.error is not None:
                    raise PipelineError(f"dbt cannot render {test.model} over the given rows: {rendered.error}")
                pipeline = pipeline.rendered(rendered.compiled)
            return engine.execute_arrow(pipeline, tables)

        verdicts = []
        for test in tests:
            verdict = run_test(test, "duckdb", pipeline_for, execute)
            report(verdict)
            verdicts.append(verdict)
        return verdicts
    finally:
        engine.close()
        snapshots.close()


def run_on_spark(settings: Settings, manifest: dict[str, Any], tests: list[UnitTest], report: Callable[[Verdict], None],
                 session: "SparkEngine | None" = None) -> list[Verdict]:
    """Each test as `duckapi run --engine spark` runs a pipeline: the project compiled for
    its Spark target, the given rows as the inputs' views, in a local session (`session`,
    else one started and stopped here). A unit test gives every relation the model reads,
    so no reference data is needed, only types: each input typed as on DuckDB (declared,
    else the DuckDB warehouse's)."""
    from duckapi.batch.command import Engine, _compile, _spark_settings
    from duckapi.engines.duckdb import DuckDBEngine
    from duckapi.engines.spark import SparkEngine, SparkOptions
    from duckapi.pipeline.relations import find_relation
    from duckapi.serving.service import STARTUP_WAIT_S, compile_project
    from duckapi.dbt.warehouse import Snapshots

    spark_manifest = _compile(settings, Engine.spark, None)  # the project's `spark` target
    duck_manifest_for = _manifests(manifest, lambda dbt_vars: compile_project(settings, dbt_vars))
    spark_manifest_for = _manifests(spark_manifest, lambda dbt_vars: _compile(settings, Engine.spark, None, dbt_vars))
    snapshots = Snapshots(settings.db_path)
    duck = DuckDBEngine(settings, snapshots.folder)
    spark = session or SparkEngine(SparkOptions(master="local[2]", conf={"spark.sql.shuffle.partitions": "4"}))
    try:
        warehouse = snapshots.take(wait=STARTUP_WAIT_S)
        duck_renderings = _renderings(settings, tests, warehouse.path if warehouse else None)
        spark_renderings = _renderings(_spark_settings(settings, None), tests)

        def pipeline_for(test: UnitTest) -> Pipeline:
            schema = lambda relation: duck.warehouse_schema(warehouse, relation)  # noqa: E731
            if test.rendered_by_dbt:
                typed = rendered_pipeline(test, duck_renderings[test.unique_id], manifest, settings.project_dir, schema)
                return rendered_pipeline(test, spark_renderings[test.unique_id], spark_manifest, settings.project_dir,
                                         None, typed)
            typed = pipeline_of(test, duck_manifest_for(test), settings.project_dir, schema)
            on_spark = spark_manifest_for(test)
            columns = {find_relation(on_spark, item.name)["relation_name"]: [(c.name, c.data_type) for c in item.columns]
                       for item in typed.inputs}
            return pipeline_of(test, on_spark, settings.project_dir, columns.get)

        def execute(test: UnitTest, pipeline: Pipeline, tables: tuple[pa.Table, ...]) -> pa.Table:
            if pipeline.introspection.dependent or pipeline.introspection.refusal:
                raise Skipped(f"{test.model} is data-dependent: `duckapi test` renders it over the given rows on "
                              "DuckDB only (`duckapi run --engine spark` renders it over files)")
            for item, table in zip(pipeline.inputs, tables):
                spark.register_input(item, [spark.session.createDataFrame(table)])
            return spark.execute_arrow(pipeline)

        verdicts = []
        for test in tests:
            verdict = run_test(test, "spark", pipeline_for, execute)
            report(verdict)
            verdicts.append(verdict)
        return verdicts
    finally:
        if session is None:
            spark.stop()
        duck.close()
        snapshots.close()


def _fixtures(settings: Settings, manifest: dict[str, Any], recorded: list[EndpointFixture],
              report: Callable[[Verdict], None]) -> list[Verdict]:
    """Each recorded request run again through the Python API, its answer compared."""
    from duckapi.library.project import Project

    verdicts = []
    with Project(settings, manifest) as served:
        for fixture in recorded:
            status, detail, seconds = check(served, fixture)
            verdict = Verdict(fixture.name, "fixture", str(fixture.path.relative_to(settings.project_dir)), "duckdb",
                              status, detail, seconds)
            report(verdict)
            verdicts.append(verdict)
    return verdicts


def record_command(
    endpoint: Annotated[str, typer.Argument(help="the served path or model")],
    inputs: Annotated[list[str], typer.Argument(help="input files, globs or folders (NAME=PATH for several inputs)")],
    name: Annotated[str, typer.Option("--name", help="the fixture's name: tests/duckapi/NAME.json")],
    project: Annotated[Optional[Path], typer.Option("--project", help="dbt project folder [default: the bundled duckapi_dbt]")] = None,
    db: Annotated[Optional[Path], typer.Option("--db", help="DuckDB file dbt builds")] = None,
    select: Annotated[Optional[list[str]], typer.Option("--select", help="a part to compute (repeat)")] = None,
    dbt_vars: Annotated[Optional[str], typer.Option("--vars", help="request-settable dbt vars as JSON")] = None,
) -> None:
    """Record a request and its current answer as an endpoint fixture, which `duckapi test`
    then runs again: pin today's answers before changing a model."""
    from duckapi.batch.inputs import resolve_arguments
    from duckapi.library.project import Project
    from duckapi.serving.service import compile_project

    settings = Settings.from_env(project_dir=project, db_path=db)
    errors = Console(stderr=True)
    try:
        named = resolve_arguments(inputs)
        files = {key or "": [f.path for f in group] for key, group in named.items()}
        with Project(settings, compile_project(settings)) as served:
            path = record(served, endpoint, files, name, select or (), json.loads(dbt_vars) if dbt_vars else None)
    except Exception as exc:  # a bad argument, input or project: said, exit 1
        errors.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1)
    out.print(f"recorded {path}")


def write_junit(verdicts: list[Verdict], path: Path) -> None:
    """The verdicts as a JUnit XML report (one testcase per test and engine)."""
    suite = ET.Element("testsuite", name="duckapi test", tests=str(len(verdicts)),
                       failures=str(sum(v.status == "failed" for v in verdicts)),
                       errors=str(sum(v.status == "error" for v in verdicts)),
                       skipped=str(sum(v.status == "skipped" for v in verdicts)))
    for verdict in verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"{verdict.engine}.{verdict.model}",
                             name=verdict.name, time=f"{verdict.seconds:.3f}", file=verdict.path)
        if verdict.status in ("failed", "error", "skipped"):
            tag = {"failed": "failure", "error": "error", "skipped": "skipped"}[verdict.status]
            ET.SubElement(case, tag, message=verdict.detail.splitlines()[0] if verdict.detail else tag).text = verdict.detail
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
