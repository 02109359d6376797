"""The answer's rows written as json, parquet or csv by DuckDB, in the API's order, replacing the output only when complete."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import pyarrow.parquet as pq

from duckapi.batch.progress import _Poller


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: The name Spark's answer (Arrow) is registered under for the writers.
RESULT_RELATION = "__duckapi_result"

#: The one file DuckDB writes into a Parquet dataset folder (Spark's executors write
#: `part-NNNNN-<uuid>.parquet` files); in name order, the parts hold the API's order.
DUCKDB_PART = "part-00000.parquet"


def is_dataset(output: str) -> bool:
    """`--output out/` (a trailing slash or an existing folder): a Parquet dataset of part
    files written where the work runs, so a large answer never passes through one process."""
    return output != "-" and (output.endswith(("/", os.sep)) or Path(output).is_dir())


def dataset_parts(folder: Path) -> list[Path]:
    """The dataset's Parquet part files, in the order their rows come in."""
    return sorted(p for p in folder.iterdir() if p.name.startswith("part-") and p.name.endswith(".parquet"))


def dataset_rows(folder: Path) -> int:
    """Rows in a dataset, from the part files' footers (nothing else is read)."""
    return sum(pq.ParquetFile(part).metadata.num_rows for part in dataset_parts(folder))


def replaceable_dataset(folder: Path) -> bool:
    """A folder `--output` may replace: missing, empty, or an earlier run's dataset (part
    files and Spark's markers only), never a folder holding anything else."""
    if not folder.exists():
        return True
    return all(p.name.startswith(("part-", ".part-", "_SUCCESS", "._SUCCESS")) for p in folder.iterdir())


def write_output(
    con: duckdb.DuckDBPyConnection, statement: Callable[[str], str], fmt: str, out: Path,
    on_progress: Callable[[float], None] | None = None,
) -> int:
    """Write the rows of `statement(projection)` (already in the API's order) to `out`; rows written.

    `statement` renders the ordered select with a projection over its rows `o`.
    """
    with _Poller(con, on_progress):
        if fmt == "json":
            # Exactly the API's body: [row,row,...] with rows from DuckDB's to_json.
            result = con.execute(statement("to_json(o)::varchar"))
            rows = 0
            with out.open("wb") as handle:
                handle.write(b"[")
                while chunk := result.fetchmany(2048):
                    for (text,) in chunk:
                        if rows:
                            handle.write(b",")
                        handle.write(text.encode())
                        rows += 1
                handle.write(b"]")
            return rows
        if fmt == "parquet":
            # Through Arrow: a HUGEINT becomes decimal128(38, 0) (DuckDB's own Parquet writer
            # would turn it into a double and lose digits past 2^53).
            reader = con.sql(statement("o.*")).to_arrow_reader(65536)
            rows = 0
            with pq.ParquetWriter(str(out), reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    rows += batch.num_rows
            return rows
        if fmt == "csv":
            (rows,) = con.execute(f"copy ({statement('o.*')}) to {_lit(str(out))} (format csv, header true)").fetchone()
            return int(rows)
    raise ValueError(f"unknown output format {fmt!r}")


def result_statement(projection: str) -> str:
    """For rows computed elsewhere (Spark), registered as RESULT_RELATION: the API's `order by o`."""
    return f"select {projection} from {RESULT_RELATION} as o order by o"


@contextmanager
def _atomic_output(output: str) -> Iterator[Path]:
    """A temporary file beside the output, moved into place only when writing succeeded
    (for a dataset, a temporary folder path, not yet created)."""
    if output == "-":
        fd, name = tempfile.mkstemp(prefix="duckapi-run-")
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            with tmp.open("rb") as handle:
                shutil.copyfileobj(handle, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        finally:
            tmp.unlink(missing_ok=True)
        return
    target = Path(output)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    if is_dataset(output):  # a folder: the new one swapped in, then the old one removed
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        try:
            yield tmp
            if target.exists():
                os.replace(target, old)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
        return
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)

