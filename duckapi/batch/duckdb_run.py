"""The pipeline over the files on a private DuckDB connection: each input's files as its
relation (`Input.relation`), checked against its contract; reference data from a snapshot."""

from __future__ import annotations

import shutil
import tempfile
from typing import Sequence

import duckdb

from duckapi.batch.errors import NULL_MESSAGE_START, InputError, MissingReferences, _input_error, missing_columns
from duckapi.batch.inputs import Assigned, InputFile, _grouped, describe_files
from duckapi.batch.outputs import DUCKDB_PART, _atomic_output, _lit, is_dataset, write_output
from duckapi.batch.progress import Reporter, err
from duckapi.engines import ExecutionError, error_message
from duckapi.engines.duckdb import missing_relations
from duckapi.pipeline import Column, Input, Pipeline, quote_identifier
from duckapi.dbt.warehouse import Warehouse

#: The column naming each row's file (DuckDB's `filename` option), for error messages.
FILE_COLUMN = "__duckapi_file"

def duckdb_source(fmt: str, paths: Sequence[str], columns: Sequence[Column]) -> str:
    """A DuckDB table function reading these files; the contract types CSV and JSON columns."""
    files = "[" + ", ".join(_lit(p) for p in paths) + "]"
    types = "{" + ", ".join(f"{_lit(c.name)}: {_lit(c.data_type)}" for c in columns) + "}"
    if fmt == "parquet":
        return f"read_parquet({files}, union_by_name = true, filename = {_lit(FILE_COLUMN)})"
    if fmt == "csv":
        # RFC 4180 (comma, "" escapes a quote), as Spark is told too; an unquoted empty
        # field is null, a quoted one ("") the empty string.
        return (
            f"read_csv({files}, header = true, union_by_name = true, delim = ',', quote = '\"', "
            f"escape = '\"', allow_quoted_nulls = false, types = {types}, filename = {_lit(FILE_COLUMN)})"
        )
    if fmt in ("json", "ndjson"):
        layout = "array" if fmt == "json" else "newline_delimited"
        return f"read_json({files}, format = {_lit(layout)}, columns = {types}, filename = {_lit(FILE_COLUMN)})"
    raise ValueError(f"unknown input format {fmt!r}")


def _not_null_checked(columns: Sequence[Column], source: str) -> str:
    """Select the contract columns; a null where the contract says not_null stops the run."""
    items = []
    for c in columns:
        col = quote_identifier(c.name)
        if c.not_null:
            message = _lit(f"{NULL_MESSAGE_START}{c.name} is null or missing in a row of ")
            note = _lit(" (the input's contract says not_null)")
            items.append(f"case when {col} is null then error({message} || {quote_identifier(FILE_COLUMN)} || {note}) else {col} end as {col}")
        else:
            items.append(col)
    return f"select {', '.join(items)} from ({source})"


class DuckDBBatch:
    """A private DuckDB connection for one batch run: no catalog file, spills to a temp folder."""

    def __init__(self, threads: int | None = None, memory_limit: str | None = None) -> None:
        self.scratch = tempfile.mkdtemp(prefix="duckapi-duckdb-")
        config: dict[str, str | int | bool] = {
            "python_enable_replacements": False,
            "temp_directory": self.scratch,
            # The answer is ordered explicitly; not keeping scan order saves memory.
            "preserve_insertion_order": False,
        }
        if threads:
            config["threads"] = threads
        if memory_limit:
            config["memory_limit"] = memory_limit
        self.con = duckdb.connect(":memory:", config=config)

    def attach(self, warehouse: Warehouse) -> None:
        """The warehouse snapshot, read-only, under the catalog name dbt compiled into the SQL."""
        self.con.execute(f"attach $1 as {quote_identifier(warehouse.database)} (read_only)", [str(warehouse.path)])

    def check_input(self, item: Input, files: Sequence[InputFile]) -> None:
        """Open every file's schema and look for the contract's columns: InputError names the file."""
        names = [c.name for c in item.columns]
        for f in files:
            source = duckdb_source(f.format, [f.path], item.columns)
            try:
                described = self.con.execute(f"describe select * from {source}").fetchall()
            except duckdb.Error as exc:
                raise InputError(f"{f.path}: {error_message(exc, keep=3, limit=800)}") from exc
            present = {row[0] for row in described}
            missing = [n for n in names if n not in present]
            if missing:
                raise missing_columns(f.path, missing, item.name, names)

    def register_input(self, item: Input, files: Sequence[InputFile]) -> None:
        """The input's files as the view `item.relation`, typed and not-null checked by its contract."""
        selected = ", ".join(quote_identifier(name) for name in [*(c.name for c in item.columns), FILE_COLUMN])
        parts = [f"select {selected} from {duckdb_source(fmt, paths, item.columns)}" for fmt, paths in _grouped(files)]
        source = "\nunion all\n".join(parts)
        view = quote_identifier(item.relation)
        self.con.execute(f"create or replace temp view {view} as {_not_null_checked(item.columns, source)}")

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def run_duckdb(
    pipeline: Pipeline, inputs: Assigned, fmt: str, output: str, *,
    threads: int | None = None, memory_limit: str | None = None, reporter: Reporter | None = None,
) -> int:
    """The pipeline over the files on a private DuckDB connection; rows written to `output`.

    Reference data is read from `pipeline.warehouse` (a snapshot), attached read-only;
    a reference it lacks raises MissingReferences before any input is read.
    """
    reporter = reporter or Reporter(err, enabled=False)
    files = [f for _, group in inputs for f in group]
    remote = [f.path for f in files if not f.local]
    if remote:
        raise InputError(f"{remote[0]}: the DuckDB engine reads local files only; use --engine spark for URLs")
    what = describe_files(files)
    batch = DuckDBBatch(threads, memory_limit)
    try:
        if pipeline.warehouse is not None:
            batch.attach(pipeline.warehouse)
        missing = missing_relations(batch.con, pipeline.references)
        if missing:
            raise MissingReferences(missing)
        with reporter.step(f"checking {what}"):
            for item, group in inputs:
                batch.check_input(item, group)
                batch.register_input(item, group)
        with reporter.step(f"running {pipeline.endpoint.output} on DuckDB over {what}", measured=True) as update:
            with _atomic_output(output) as out:
                if is_dataset(output):  # one part file, in the API's order
                    out.mkdir()
                    out = out / DUCKDB_PART
                try:
                    return write_output(batch.con, pipeline.select_sql, fmt, out, update)
                except duckdb.Error as exc:
                    raise _input_error(ExecutionError(error_message(exc, keep=3, limit=800).removeprefix("Invalid Input Error: "))) from exc
    finally:
        batch.close()
