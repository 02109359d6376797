"""`duckapi run`: the served pipeline in batch over files, on DuckDB or on Spark.

The same compiled DAG the API runs per request, run once over every row of the input
files. Inputs are CSV, Parquet, NDJSON or JSON (an array of rows, like the API's
body), by name, glob or folder; an endpoint with several inputs takes `NAME=PATH`
arguments, one or more per input. On DuckDB a private connection exposes each input's
files as the view `Input.relation` (DuckDB reads them in parallel and spills to a
temporary folder when the data does not fit in memory), attaches a private snapshot
of the dbt-built warehouse read-only for the reference data (seeds, tables, sources
the models read), and runs `Pipeline.select_sql` over them: the statement the API
runs. On Spark the project is compiled for the `spark` target and run in a
SparkSession (engines/spark.py), the reference data read from its catalog (in local
mode built there first by dbt-spark, in this process); its rows come back as Arrow.

Either way the rows are written by DuckDB in the API's order (`order by o`), so
`--format json` is byte for byte the API's answer for the same rows: a JSON array of
the served model's rows as DuckDB's to_json prints them. Parquet keeps the exact
types (a 128-bit sum is a decimal(38, 0), never a double); CSV prints nested values
as DuckDB prints them.

Exit codes: 0 done, 2 bad arguments or unreadable input (the message names the file
and the reason, or the input name that is unknown or missing), 1 the project or the
pipeline failed (also: a reference relation is not built).

The flow, a module a step:

  command.py     the typer command `run`: checks the options, compiles the project for
                 the engine (`_compile`; on DuckDB against a snapshot of the warehouse,
                 loaded as the Python API loads it: duckapi.Project), picks the served
                 model, assigns the files to its inputs,
                 calls the engine's run and turns failures into exit codes
  inputs.py      names, globs and folders -> InputFile (path and format), each checked;
                 NAME=PATH arguments -> the files of each input
  duckdb_run.py  run_duckdb: each input's files as its relation on a private connection,
                 the contract checked (columns, not_null), the warehouse snapshot
                 attached, the pipeline's statement run
  spark_run.py   build_references (dbt-spark into the session, local mode); run_spark:
                 the files read in a SparkSession, the answer back as Arrow
  outputs.py     write_output: json / parquet / csv by DuckDB, to a temporary file moved
                 into place when complete (or copied to stdout)
  progress.py    Reporter: progress on a terminal (stderr), silent otherwise
  errors.py      InputError (exit code 2), MissingReferences (exit code 1) and which
                 engine errors mean bad input

Tests that replace `_compile` patch `duckapi.batch.command._compile`, where `run` looks it up.
"""

from duckapi.batch.command import Engine, InputFormat, OutputFormat, run
from duckapi.batch.duckdb_run import run_duckdb
from duckapi.batch.errors import InputError, MissingReferences
from duckapi.batch.inputs import InputFile, assign_inputs, resolve_arguments, resolve_inputs
from duckapi.batch.spark_run import build_references, run_spark

__all__ = [
    "Engine", "InputError", "InputFile", "InputFormat", "MissingReferences", "OutputFormat",
    "assign_inputs", "build_references", "resolve_arguments", "resolve_inputs", "run", "run_duckdb", "run_spark",
]
