"""The typer command `duckapi run`: its options checked, the project compiled, the engine's run, exit codes."""

from __future__ import annotations

import enum
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, Sequence

import typer
from rich.markup import escape

from duckapi.batch.duckdb_run import run_duckdb
from duckapi.batch.errors import InputError, MissingReferences
from duckapi.batch.inputs import Assigned, NamedFiles, assign_inputs, resolve_arguments
from duckapi.batch.outputs import is_dataset, replaceable_dataset
from duckapi.batch.progress import Reporter, err
from duckapi.batch.spark_run import build_references, duckdb_types, render_on_spark, run_spark
from duckapi.engines import ExecutionError, error_message
from duckapi.errors import ProjectError
from duckapi.pipeline.relations import WarehouseSchema
from duckapi.pipeline import (
    Pipeline, PipelineError, build_pipeline, build_pipelines, discover_endpoints, find_endpoint, provenance,
)
from duckapi.rows.files import format_of
from duckapi.settings import Settings

if TYPE_CHECKING:
    from duckapi.engines.spark import SparkOptions
    from duckapi.library.project import Project


class Engine(str, enum.Enum):
    duckdb = "duckdb"
    spark = "spark"


class OutputFormat(str, enum.Enum):
    json = "json"
    parquet = "parquet"
    csv = "csv"


class InputFormat(str, enum.Enum):
    auto = "auto"
    csv = "csv"
    parquet = "parquet"
    json = "json"
    ndjson = "ndjson"


class _Failed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _pick(pipelines: dict[str, Pipeline], endpoint: str | None) -> Pipeline:
    if endpoint is None:
        if len(pipelines) == 1:
            return next(iter(pipelines.values()))
        raise InputError(f"the project serves {len(pipelines)} models; choose one with --endpoint: {', '.join(pipelines)}")
    path = find_endpoint(endpoint, pipelines, lambda pipeline: pipeline.endpoint.output)
    if path is not None:
        return pipelines[path]
    raise InputError(f"--endpoint {endpoint}: no such served model; the project serves {', '.join(pipelines)}")


def _compile(
    settings: Settings, engine: Engine, target: str | None, dbt_vars: dict[str, Any] | None = None,
    recompile: bool = False,
) -> dict[str, Any]:
    """The project's manifest, compiled by dbt for the engine's target, or the one the
    last such compile stored if nothing it read has changed since (dbt/compiled.py).

    For DuckDB against a private snapshot of the warehouse, so relation names are the
    ones `dbt build` wrote; for Spark with no session (only the SQL text is needed).
    """
    from duckapi.dbt import compiled
    from duckapi.dbt import project as dbt_project
    from duckapi.serving.service import compile_project

    try:
        if engine is Engine.duckdb:
            return compile_project(replace(settings, target=target) if target else settings, dbt_vars, recompile)
        spark_settings = _spark_settings(settings, target)
        extra = ["--no-populate-cache"] + (["--vars", dbt_project.vars_argument(dbt_vars)] if dbt_vars else [])

        def compile() -> dict[str, Any]:
            dbt_project.run_dbt(spark_settings, "compile", extra, quiet=True)
            return dbt_project.load_manifest(spark_settings)

        return compiled.reuse_or_compile(spark_settings, "spark", dbt_vars, compile, recompile)[0]
    except ProjectError as exc:  # also a warehouse being written for too long, or not DuckDB
        raise _Failed(1, str(exc)) from exc


def _spark_options(
    settings: Settings, target: str | None, master: str | None, remote: str | None, driver_memory: str,
    conf: dict[str, str],
) -> "SparkOptions":
    """The session's settings: the Spark target's `server_side_parameters` (dbt/profiles.py
    spark_conf: the catalog dbt-spark built into, the master), then --spark-conf. An
    in-memory catalog's warehouse folder is the run's own scratch one (a throwaway catalog);
    --spark-driver-memory sets the driver's memory, --spark-master / --spark-remote win."""
    from duckapi.dbt import profiles
    from duckapi.engines.spark import SPARK_TARGET, SparkOptions

    try:
        shared = profiles.spark_conf(settings.project_dir, target or SPARK_TARGET)
    except ValueError as exc:  # a required env var of the profile is not set
        raise InputError(str(exc)) from exc
    if shared.get("spark.sql.catalogImplementation", "in-memory") == "in-memory":
        shared.pop("spark.sql.warehouse.dir", None)
    shared.pop("spark.driver.memory", None)
    profile_master = shared.pop("spark.master", None)
    return SparkOptions(master=master or (None if remote else profile_master), remote=remote,
                        driver_memory=driver_memory, conf={**shared, **conf})


def _spark_settings(settings: Settings, target: str | None) -> Settings:
    """The project on its Spark target, compiled into a target folder of its own."""
    from duckapi.engines.spark import SPARK_TARGET

    return replace(
        settings, target=target or SPARK_TARGET, target_path=settings.resolved_target_path / (target or SPARK_TARGET),
    )


def _parse_vars(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    import yaml

    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"--vars: not YAML or JSON ({str(exc).splitlines()[0]})") from exc
    if not isinstance(parsed, dict):
        raise InputError("--vars: expected a mapping, e.g. '{\"min_value\": 3}'")
    return parsed


def _parse_conf(pairs: Sequence[str]) -> dict[str, str]:
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--spark-conf {pair!r}: expected KEY=VALUE")
        conf[key.strip()] = value.strip()
    return conf


def run(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT",
            help="Input files: CSV (with a header), Parquet, NDJSON (.ndjson/.jsonl) or JSON (an array of rows, "
            "like the API's body), optionally .gz/.zst. Several files, globs ('data/*.parquet', quoted) and "
            "folders are allowed; the rows of all of them are one input. For an endpoint with several inputs, "
            "name each: NAME=PATH (stg_orders=orders/ stg_payments='payments/*.csv'); repeating a NAME adds "
            "files to that input. URLs (s3a://, hdfs://) go to Spark as they are.",
            show_default=False,
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="File to write (replaced only once complete); '-' writes to stdout (json, csv); "
                          "a folder (out/) gets a Parquet dataset of part files, on Spark written by the executors.", show_default=False)
    ],
    engine: Annotated[Engine, typer.Option("--engine", help="duckdb: in this process, out-of-core. spark: a SparkSession (local[*] unless --spark-master/--spark-remote).")] = Engine.duckdb,
    format: Annotated[
        Optional[OutputFormat],
        typer.Option("--format", help="Output format (default: from the output's extension, else json). json is exactly the API's answer for the same rows.", show_default=False),
    ] = None,
    input_format: Annotated[InputFormat, typer.Option("--input-format", help="Read every input as this format instead of going by file names.")] = InputFormat.auto,
    endpoint: Annotated[
        Optional[str], typer.Option("--endpoint", help="The served model to run, by path (/analyse_data/) or model name (default: the only one).", show_default=False)
    ] = None,
    project: Annotated[Optional[Path], typer.Option("--project", help="dbt project folder (env DUCKAPI_PROJECT_DIR, default: the bundled duckapi_dbt)", show_default=False)] = None,
    db: Annotated[
        Optional[Path],
        typer.Option("--db", help="The dbt-built DuckDB file the reference data (seeds, tables, sources the models read) comes from on DuckDB; "
                     "a private snapshot of it is read (env DUCKAPI_DB_PATH, default: the profile's path)", show_default=False),
    ] = None,
    target: Annotated[
        Optional[str], typer.Option("--target", help="dbt target to compile (default: the profile's default for duckdb, 'spark' for spark)", show_default=False)
    ] = None,
    dbt_vars: Annotated[
        Optional[str], typer.Option("--vars", help="dbt vars for this run, as YAML or JSON (like `dbt --vars`)", show_default=False)
    ] = None,
    recompile: Annotated[
        bool, typer.Option("--recompile", help="Compile the project even if the manifest of an earlier run is still current "
                           "(it is reused while the project's files, profile, warehouse, target, vars and env_var() values are unchanged)")
    ] = False,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="DuckDB threads (env DUCKAPI_DUCKDB_THREADS, default: all cores)", show_default=False)] = None,
    memory_limit: Annotated[
        Optional[str], typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 4GB; beyond it DuckDB spills to a temporary folder (env DUCKAPI_DUCKDB_MEMORY_LIMIT)", show_default=False)
    ] = None,
    spark_master: Annotated[
        Optional[str], typer.Option("--spark-master", help="Spark master URL: local[*] (default), local[N], spark://host:7077, yarn, k8s://... [env var: DUCKAPI_SPARK_MASTER]", show_default=False)
    ] = None,
    spark_remote: Annotated[
        Optional[str], typer.Option("--spark-remote", help="Spark Connect server, e.g. sc://host:15002 (instead of --spark-master) [env var: DUCKAPI_SPARK_REMOTE]", show_default=False)
    ] = None,
    spark_driver_memory: Annotated[
        str, typer.Option("--spark-driver-memory", envvar="DUCKAPI_SPARK_DRIVER_MEMORY", help="Driver heap of a session started here (the answer is collected in the driver)")
    ] = "4g",
    spark_conf: Annotated[
        Optional[list[str]], typer.Option("--spark-conf", metavar="KEY=VALUE", help="Any Spark setting, repeatable (spark.executor.memory=8g, ...)", show_default=False)
    ] = None,
) -> None:
    """Run the served pipeline over files and write its answer (batch mode).

    The dbt project is compiled for the engine (the `spark` target for Spark), the
    DAG from the inputs to the served model runs once over all input rows, and the
    served model's rows are written in the API's order. With --format json the file
    holds exactly what POST <endpoint> would answer for the same rows.

    Input columns are matched by name to each input's contract; other columns are
    ignored, a missing one or a null in a not_null column is an error.

    Reference data (seeds, tables, sources the models read besides the inputs): on
    DuckDB from a private snapshot of the dbt-built file (--db); on Spark in local mode
    dbt-spark builds it into the run's session first; on a cluster (--spark-master,
    --spark-remote) it must be in the cluster's catalog.

    Progress is shown on a terminal (stderr) and nothing is printed otherwise.
    Exit codes: 0 written; 2 bad arguments or unreadable input (names the file and the
    reason; an unknown or missing input name); 1 the dbt project or the pipeline failed
    (a reference relation that is not built, named).
    """
    reporter = Reporter(err, enabled=err.is_terminal)
    started = time.perf_counter()
    try:
        dataset = is_dataset(output)
        fmt = (format.value if format else None) or ("parquet" if dataset else format_of(output)) or "json"
        if fmt not in ("json", "parquet", "csv"):
            raise InputError(f"--output {output}: cannot write {fmt}; use --format json, parquet or csv")
        if output == "-" and fmt == "parquet":
            raise InputError("--output -: Parquet cannot go to stdout; give a file name")
        if dataset and fmt != "parquet":
            raise InputError(f"--output {output}: a folder holds a Parquet dataset; use --format parquet or a file name")
        if dataset and not replaceable_dataset(Path(output)):
            raise InputError(f"--output {output}: the folder holds other files than an earlier answer's parts; "
                             "give a new or empty folder")
        if output != "-":
            parent = Path(output).resolve().parent
            if not parent.is_dir():
                raise InputError(f"--output {output}: folder {parent} does not exist")
        if engine is Engine.duckdb and (spark_master or spark_remote or spark_conf):
            raise InputError("--spark-master, --spark-remote and --spark-conf need --engine spark")
        if not (spark_master or spark_remote):
            # Only then the environment's: a cluster target's profile reads DUCKAPI_SPARK_MASTER
            # too, so it may be set for a DuckDB run, and a typed flag wins over it.
            spark_master = os.environ.get("DUCKAPI_SPARK_MASTER") or None
            spark_remote = os.environ.get("DUCKAPI_SPARK_REMOTE") or None
        if spark_master and spark_remote:
            raise InputError("give --spark-master or --spark-remote, not both (or DUCKAPI_SPARK_MASTER or "
                             "DUCKAPI_SPARK_REMOTE, not both)")
        conf = _parse_conf(spark_conf or [])
        variables = _parse_vars(dbt_vars)
        named = resolve_arguments(inputs, input_format.value)
        settings = Settings.from_env(project_dir=project, db_path=db, duckdb_threads=threads, duckdb_memory_limit=memory_limit)
        with reporter:
            if engine is Engine.duckdb:
                rows, pipeline = _run_duckdb(settings, target, variables, recompile, endpoint, named, fmt, output, reporter)
            else:
                _require_spark()
                options = _spark_options(settings, target, spark_master, spark_remote, spark_driver_memory, conf)
                rows, pipeline = _run_spark(settings, options, target, variables, recompile, endpoint, named, fmt, output, reporter)
        if output != "-":
            _write_provenance(output, engine.value, pipeline, rows)
        reporter.note(
            f"wrote {rows:,} row{'s' if rows != 1 else ''} of {pipeline.endpoint.output} ({fmt}) to {output} "
            f"in {time.perf_counter() - started:.1f} s"
        )
    except InputError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except _Failed as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.code) from None
    except ExecutionError as exc:
        err.print(f"[bold red]error:[/] pipeline failed: {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _require_spark() -> None:
    """PySpark and dbt-spark are the optional `spark` extra: say how to install them (exit 2)."""
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise InputError(
            f"--engine spark needs PySpark and dbt-spark ({exc.name or exc} is not installed): "
            "install duckapi[spark] (pip install -e '.[spark]')"
        ) from None


#: Beside each output file: where its answer came from (`<output>` + PROVENANCE_SUFFIX).
PROVENANCE_SUFFIX = ".duckapi.json"


def _write_provenance(output: str, engine: str, pipeline: Pipeline, rows: int) -> None:
    """The answer's origin beside it, as the API's headers give it: the digest of the
    compiled SQL that ran and, on DuckDB, the warehouse snapshot's data version (on Spark
    the reference data is the run's own session's: null)."""
    origin = provenance(pipeline)
    Path(output.rstrip("/" + os.sep) + PROVENANCE_SUFFIX).write_text(json.dumps({
        "endpoint": pipeline.endpoint.path, "engine": engine, "rows": rows,
        "project_digest": origin["Duckapi-Project"],
        "data_version": origin["Duckapi-Data-Version"] if engine == "duckdb" else None,
    }, indent=2) + "\n")


def _run_duckdb(
    settings: Settings, target: str | None, variables: dict[str, Any] | None, recompile: bool, endpoint: str | None,
    named: NamedFiles, fmt: str, output: str, reporter: Reporter,
) -> tuple[int, Pipeline]:
    """Load the project as the Python API does (compiled against a private snapshot of
    the warehouse, reference data checked), run its pipeline over the files, free it."""
    from duckapi.library.project import Project
    from duckapi.serving.service import missing_references_error

    with reporter.step(f"compiling {settings.project_dir.name} for duckdb"):
        manifest = _compile(settings, Engine.duckdb, target, variables, recompile)
        settings = replace(settings, target=target) if target else settings
        try:  # the pipelines checked as for serving: reference data missing is named
            served = Project(settings, manifest, variables)
        except ProjectError as exc:
            raise _Failed(1, str(exc)) from exc
    try:
        pipelines = {path: s.pipeline for path, s in served.service.state.endpoints.items()}
        pipeline = _pick(pipelines, endpoint)
        assigned = assign_inputs(pipeline, named)
        if served.service.state.endpoints[pipeline.endpoint.path].renderings is not None:
            with reporter.step(f"rendering {', '.join(pipeline.introspection.dependent)} over the input with dbt"):
                pipeline = _rendered(served, pipeline, assigned)
        try:
            rows = run_duckdb(
                pipeline, assigned, fmt, output, threads=settings.duckdb_threads or None,
                memory_limit=settings.duckdb_memory_limit, reporter=reporter,
            )
        except MissingReferences as exc:
            raise _Failed(1, str(missing_references_error(pipeline, exc.missing, settings))) from exc
        return rows, pipeline
    finally:
        served.close()


def _rendered(served: "Project", pipeline: Pipeline, assigned: Assigned) -> Pipeline:
    """A data-dependent pipeline as dbt renders it over the run's own inputs (read once
    more, as the Python API reads files, for the queries its rendering runs)."""
    from duckapi.errors import CompileBusy, InputError as RowsError, RequestError

    call = served.call(pipeline.endpoint.path)
    files = {item.name: [f.path for f in paths] for item, paths in assigned}
    try:
        tables = call.rows(files if len(files) > 1 else next(iter(files.values())))
        return call.resolved(tables)
    except RowsError as exc:
        raise InputError(str(exc)) from exc
    except (RequestError, CompileBusy) as exc:
        raise _Failed(1, str(exc)) from exc


def _run_spark(
    settings: Settings, options: "SparkOptions", target: str | None, variables: dict[str, Any] | None, recompile: bool,
    endpoint: str | None, named: NamedFiles, fmt: str, output: str, reporter: Reporter,
) -> tuple[int, Pipeline]:
    """Compile for the spark target, start (or join) a session, build the reference data
    into it in local mode, run."""
    with duckdb_types(settings.db_path) as types:  # one snapshot for the run, taken if an input needs it
        return _spark_run(types, settings, options, target, variables, recompile, endpoint, named, fmt, output, reporter)


def _spark_run(
    types: WarehouseSchema, settings: Settings, options: "SparkOptions", target: str | None,
    variables: dict[str, Any] | None, recompile: bool, endpoint: str | None, named: NamedFiles, fmt: str, output: str,
    reporter: Reporter,
) -> tuple[int, Pipeline]:
    from duckapi.dbt import project as dbt_project
    from duckapi.engines.spark import SparkEngine
    from duckapi.serving.service import missing_references_error

    spark_settings = _spark_settings(settings, target)
    with reporter.step(f"compiling {settings.project_dir.name} for spark"):
        try:
            manifest = _compile(settings, Engine.spark, target, variables, recompile)
            pipelines = build_pipelines(manifest, settings.project_dir, types)
            pipeline = _pick(pipelines, endpoint)
            dependent = bool(pipeline.introspection.dependent)
        except (PipelineError, _Failed) as exc:
            # A model that queries the data while it renders fails to compile where the
            # inputs are not in the catalog: then it is rendered over the run's inputs.
            recorded = (dbt_project._recorded_queries(spark_settings.resolved_target_path) or {}).get("queries")
            if not recorded:
                raise exc if isinstance(exc, _Failed) else _Failed(1, str(exc)) from exc
            try:
                dbt_project.run_dbt(spark_settings, "parse", ["--vars", dbt_project.vars_argument(variables or {})], quiet=True)
                parsed = dbt_project.load_manifest(spark_settings)
                pipelines = {e.path: build_pipeline(parsed, e, settings.project_dir, compiled=False, warehouse=types)
                             for e in discover_endpoints(parsed)}
            except (PipelineError, ProjectError) as again:
                raise _Failed(1, str(again)) from again
            pipeline = _pick(pipelines, endpoint)
            dependent = True
    assigned = assign_inputs(pipeline, named)
    spark = SparkEngine(options)
    where = options.remote or options.master or "local[*]"
    try:
        with reporter.step(f"starting Spark ({where})"):
            try:
                spark.session
            except Exception as exc:
                raise _Failed(1, f"could not start Spark ({where}): {error_message(exc, keep=3, limit=800)}") from exc
        if spark.is_local and pipeline.references:
            names = ", ".join(r.name for r in pipeline.references)
            with reporter.step(f"building the reference data ({names}) with dbt-spark"):
                try:
                    build_references(_spark_settings(settings, target), pipeline.references)
                except dbt_project.ProjectError as exc:
                    raise _Failed(1, str(exc)) from exc
        if dependent:
            if not spark.is_local:
                raise _Failed(1, (
                    f"{pipeline.endpoint.output} is data-dependent (dbt renders it from the input's rows): on Spark "
                    "it is rendered in local mode only, where dbt-spark shares the run's session"
                ))
            with reporter.step(f"rendering {pipeline.endpoint.output} over the input with dbt-spark"):
                try:
                    rendered = render_on_spark(spark_settings, spark, pipeline, assigned)
                    pipeline = build_pipeline(rendered, pipeline.endpoint, settings.project_dir, warehouse=types)
                except (dbt_project.ProjectError, PipelineError) as exc:
                    raise _Failed(1, str(exc)) from exc
        try:
            rows = run_spark(spark, pipeline, assigned, fmt, output, reporter=reporter)
        except MissingReferences as exc:
            if spark.is_local:
                remedy = "dbt-spark did not build it (a source must already be in the session's catalog)"
            else:
                remedy = f"build it there: `{replace(settings, target=target or 'cluster').build_command(db=False)}`"
            message = missing_references_error(pipeline, exc.missing, where=f"the Spark catalog ({where})", remedy=remedy)
            raise _Failed(1, str(message)) from exc
        return rows, pipeline
    finally:
        spark.stop()
