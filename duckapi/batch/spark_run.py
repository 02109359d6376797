"""The pipeline, compiled for Spark, over the files in a SparkSession; its rows come back as Arrow for the writers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import duckdb

from duckapi.batch.errors import InputError, _input_error
from duckapi.batch.inputs import InputFile, _grouped, describe_files
from duckapi.batch.outputs import RESULT_RELATION, _atomic_output, result_statement, write_output
from duckapi.batch.progress import Reporter, err
from duckapi.engines import ExecutionError
from duckapi.pipeline import Pipeline

if TYPE_CHECKING:
    from duckapi.engines.spark import SparkEngine


def run_spark(
    engine: "SparkEngine", pipeline: Pipeline, files: Sequence[InputFile], fmt: str, output: str, *,
    reporter: Reporter | None = None,
) -> int:
    """The pipeline (compiled for Spark) over the files in the engine's session; rows written."""
    from duckapi.engines.spark import spark_errors, spark_message

    reporter = reporter or Reporter(err, enabled=False)
    what = describe_files(files)
    contract = ", ".join(c.name for c in pipeline.input_columns)
    with reporter.step(f"reading {what}"):
        frames = []
        for fmt_in, paths in _grouped(files):
            named = paths[0] if len(paths) == 1 else ", ".join(paths[:3]) + (", ..." if len(paths) > 3 else "")
            try:
                frames.append(engine.read(fmt_in, paths, pipeline.input_columns))
            except KeyError as exc:
                raise InputError(f"{named}: no column {exc.args[0]} (the input model's contract needs {contract})") from exc
            except spark_errors() as exc:
                raise InputError(f"{named}: {spark_message(exc)}") from exc
        engine.register_input(frames, pipeline.input_columns)
    with reporter.step(f"running {pipeline.endpoint.output} on Spark over {what}", measured=True) as update:
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
