"""The pipeline, compiled for Spark, over the files in a SparkSession; its rows come back as
Arrow for the writers, or the executors write them as a Parquet dataset (`--output out/`).

Reference data comes from the session's catalog. In local mode it is built there first
(`build_references`: dbt-spark, in this process, joins the session); on a cluster it
must already be in the cluster's catalog.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import duckdb

from duckapi.batch.errors import InputError, MissingReferences, _input_error, missing_columns
from duckapi.batch.inputs import Assigned, _grouped, describe_files
from duckapi.batch.outputs import RESULT_RELATION, _atomic_output, dataset_rows, is_dataset, result_statement, write_output
from duckapi.batch.progress import Reporter, err
from duckapi.engines import ExecutionError
from duckapi.engines.duckdb import relation_columns
from duckapi.pipeline import Pipeline, Reference, quote_identifier
from duckapi.pipeline.relations import WarehouseSchema, split_relation_name
from duckapi.settings import Settings

if TYPE_CHECKING:
    from duckapi.engines.spark import SparkEngine


def reference_selector(references: Sequence[Reference]) -> list[str]:
    """dbt's --select for the reference relations dbt can build, with their parents
    (sources cannot be built: they must exist)."""
    return sorted({f"+{r.name}" for r in references if r.kind != "source"})


def build_references(settings: Settings, references: Sequence[Reference]) -> None:
    """Build reference data into this process's SparkSession with dbt-spark (`dbt build`
    of those relations and their parents, data tests left out: `duckapi build` or
    `dbt build` is where they run).

    `settings` name the project, its spark target and the target folder it was
    compiled into. Call it once the engine's session exists: dbt-spark's `session`
    method joins the running session (SparkSession.builder.getOrCreate()).
    """
    from duckapi.dbt import project

    selector = reference_selector(references)
    if selector:
        extra = ["--select", *selector, "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
        project.run_dbt_in_process(settings, "build", extra, quiet=True)


@contextmanager
def duckdb_types(db_path: Path) -> Iterator[WarehouseSchema]:
    """Types for the inputs that declare none, on Spark: the columns of the DuckDB
    warehouse's relation with the same table name (when exactly one has it), mapped to
    Spark's types where the statement casts them (engines/spark.py spark_type). Read
    from a private snapshot, as serving reads it, taken only if an input needs it."""
    from duckapi.dbt.warehouse import Snapshots

    snapshots = Snapshots(db_path)
    opened: list[duckdb.DuckDBPyConnection] = []

    def schema(relation_name: str) -> list[tuple[str, str]] | None:
        if not opened:
            warehouse = snapshots.take(wait=60.0) if db_path.exists() else None
            if warehouse is None:
                return None
            opened.append(duckdb.connect(str(warehouse.path), read_only=True))
        con = opened[0]
        table = split_relation_name(relation_name)[-1]
        found = con.execute(
            "select database_name, schema_name, table_name from duckdb_tables() where table_name = $1 union all "
            "select database_name, schema_name, view_name from duckdb_views() where view_name = $1 and not internal",
            [table]).fetchall()
        return relation_columns(con, ".".join(quote_identifier(part) for part in found[0])) if len(found) == 1 else None

    try:
        yield schema
    finally:
        for con in opened:
            con.close()
        snapshots.close()


def render_on_spark(
    settings: Settings, engine: "SparkEngine", pipeline: Pipeline, inputs: Assigned,
) -> dict[str, Any]:
    """A data-dependent pipeline rendered by dbt-spark over the run's own inputs: each
    input's files become the table dbt names it by in the session's catalog, then `dbt
    run` (in this process, in that session) renders and builds the pipeline's models in
    DAG order, as `dbt build` would over those rows; returns the manifest it wrote, with
    each model's SQL as rendered. Local mode only: dbt-spark must share the session."""
    from duckapi.dbt import project
    from duckapi.engines.spark import spark_errors, spark_message

    for item, files in inputs:
        frames = [engine.read(fmt_in, paths, item.columns) for fmt_in, paths in _grouped(files)]
        frame = frames[0]
        for other in frames[1:]:
            frame = frame.unionByName(other)
        relation = item.node.relation_name or item.name
        schema = relation.rsplit(".", 1)[0] if "." in relation else None
        try:
            if schema:
                engine.session.sql(f"create database if not exists {schema}")
            engine.session.sql(f"drop table if exists {relation}")
            engine.session.sql(f"drop view if exists {relation}")
            frame.write.mode("overwrite").saveAsTable(relation.replace("`", ""))
        except spark_errors() as exc:
            raise InputError(f"{item.name}: {spark_message(exc)}") from exc
    names = [n.name for n in pipeline.nodes]
    project.run_dbt_in_process(settings, "run", ["--full-refresh", "--select", *names], quiet=True)
    return project.load_manifest(settings)


def run_spark(
    engine: "SparkEngine", pipeline: Pipeline, inputs: Assigned, fmt: str, output: str, *,
    reporter: Reporter | None = None,
) -> int:
    """The pipeline (compiled for Spark) over the files in the engine's session; rows written.

    A reference relation missing from the session's catalog raises MissingReferences
    before any input is read.
    """
    from duckapi.engines.spark import spark_errors, spark_message

    reporter = reporter or Reporter(err, enabled=False)
    missing = engine.missing_references(pipeline.references)
    if missing:
        raise MissingReferences(missing)
    what = describe_files([f for _, group in inputs for f in group])
    with reporter.step(f"reading {what}"):
        for item, files in inputs:
            contract = [c.name for c in item.columns]
            frames = []
            for fmt_in, paths in _grouped(files):
                named = paths[0] if len(paths) == 1 else ", ".join(paths[:3]) + (", ..." if len(paths) > 3 else "")
                try:
                    frames.append(engine.read(fmt_in, paths, item.columns))
                except KeyError as exc:
                    raise missing_columns(named, exc.args[0], item.name, contract) from exc
                except spark_errors() as exc:
                    raise InputError(f"{named}: {spark_message(exc)}") from exc
            engine.register_input(item, frames)
    running = f"running {pipeline.endpoint.output} on Spark over {what}"
    if is_dataset(output):  # the executors write the answer's parts; nothing comes to the driver
        with reporter.step(running, measured=True) as update, _atomic_output(output) as out:
            try:
                engine.write_parquet(pipeline, str(out), update)
            except ExecutionError as exc:
                raise _input_error(exc) from exc
            return dataset_rows(out)
    with reporter.step(running, measured=True) as update:
        try:
            table = engine.execute_arrow(pipeline, update)
        except ExecutionError as exc:
            raise _input_error(exc) from exc
    with reporter.step(f"writing {fmt}"):
        con = duckdb.connect(":memory:", config={"python_enable_replacements": False})
        try:
            con.register(RESULT_RELATION, table)
            with _atomic_output(output) as out:
                return write_output(con, result_statement, fmt, out)
        finally:
            con.close()
