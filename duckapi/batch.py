"""`duckapi run`: the served pipeline in batch over files, on DuckDB or on Spark.

The same compiled DAG the API runs per request, run once over every row of the input
files. Inputs are CSV, Parquet, NDJSON or JSON (an array of rows, like the API's
body), by name, glob or folder. On DuckDB a private connection exposes the files as
the view INPUT_RELATION (DuckDB reads them in parallel and spills to a temporary
folder when the data does not fit in memory) and runs `Pipeline.select_sql` over it:
the statement the API runs. On Spark the project is compiled for the `spark` target
and run in a SparkSession (engines/spark.py); its rows come back as Arrow.

Either way the rows are written by DuckDB in the API's order (`order by o`), so
`--format json` is byte for byte the API's answer for the same rows: a JSON array of
the served model's rows as DuckDB's to_json prints them. Parquet keeps the exact
types (a 128-bit sum is a decimal(38, 0), never a double); CSV prints nested values
as DuckDB prints them.

Exit codes: 0 done, 2 bad arguments or unreadable input (the message names the file
and the reason), 1 the project or the pipeline failed.
"""

from __future__ import annotations

import enum
import glob
import gzip
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterator, Optional, Sequence

import duckdb
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

from duckapi.engines import ExecutionError, error_message
from duckapi.pipeline import INPUT_RELATION, Column, Pipeline, PipelineError, build_pipelines, quote_identifier
from duckapi.settings import Settings

if TYPE_CHECKING:
    from duckapi.engines.spark import SparkEngine

# -- inputs ---------------------------------------------------------------------------

#: File name endings -> input format. `json` is a file holding one JSON array of rows
#: (or, for DuckDB, rows one per line too); `ndjson` is one JSON object per line.
SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet", ".parq": "parquet", ".pq": "parquet",
    ".json": "json",
    ".ndjson": "ndjson", ".jsonl": "ndjson",
}
COMPRESSIONS = (".gz", ".zst")


class InputError(ValueError):
    """Bad arguments or an unreadable input file (exit code 2); names the file."""


@dataclass(frozen=True)
class InputFile:
    path: str
    format: str

    @property
    def local(self) -> bool:
        return "://" not in self.path


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


def _format_of(path: str) -> str | None:
    name = path.lower()
    for ending in COMPRESSIONS:
        if name.endswith(ending):
            name = name[: -len(ending)]
    return SUFFIXES.get(os.path.splitext(name)[1])


def _json_kind(path: str) -> str:
    """`json` when the file holds a JSON array, else `ndjson` (a row per line)."""
    try:
        if path.lower().endswith(".zst"):
            import zstandard

            with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as handle:
                head = handle.read(4096)
        else:
            with (gzip.open if path.lower().endswith(".gz") else open)(path, "rb") as handle:
                head = handle.read(4096)
    except (ImportError, OSError, EOFError, ValueError):
        return "json"  # let the reader say what is wrong with it
    return "json" if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"[" else "ndjson"


def resolve_inputs(patterns: Sequence[str], input_format: str = "auto") -> list[InputFile]:
    """Expand names, globs and folders into files with a known format, or raise InputError.

    Local files must exist and be readable; a URL (s3a://, hdfs://, ...) is passed to
    the engine as it is (Spark expands its globs itself).
    """
    if not patterns:
        raise InputError("no input: give one or more files, globs or folders")
    files: list[InputFile] = []
    seen: set[str] = set()
    for pattern in patterns:
        if "://" in pattern:
            fmt = input_format if input_format != "auto" else _format_of(pattern)
            if fmt is None:
                raise InputError(f"{pattern}: cannot tell the format from the name; use --input-format")
            files.append(InputFile(pattern, fmt))
            continue
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise InputError(f"{pattern}: no file matches")
        else:
            matches = [pattern]
        for match in matches:
            path = Path(match)
            if path.is_dir():
                inside = sorted(p for p in path.rglob("*") if p.is_file() and (_format_of(p.name) or input_format != "auto"))
                inside = [p for p in inside if not p.name.startswith((".", "_"))]  # _SUCCESS, .crc
                if not inside:
                    raise InputError(f"{match}: folder holds no CSV, Parquet or JSON file")
                candidates = [str(p) for p in inside]
            else:
                candidates = [match]
            for candidate in candidates:
                files.append(_check_file(candidate, input_format))
    unique = []
    for f in files:
        key = f.path if not f.local else str(Path(f.path).resolve())
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _check_file(name: str, input_format: str) -> InputFile:
    path = Path(name)
    if not path.exists():
        raise InputError(f"{name}: no such file")
    if not path.is_file():
        raise InputError(f"{name}: not a regular file")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    fmt = input_format if input_format != "auto" else _format_of(path.name)
    if fmt is None:
        raise InputError(f"{name}: cannot tell the format from the name (.csv, .parquet, .json, .ndjson); use --input-format")
    if fmt == "json":
        fmt = _json_kind(str(path))
    return InputFile(str(path.resolve()), fmt)


def _grouped(files: Sequence[InputFile]) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(f.format, []).append(f.path)
    return list(groups.items())


# -- DuckDB ---------------------------------------------------------------------------

def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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


#: The column naming each row's file (DuckDB's `filename` option), for error messages.
FILE_COLUMN = "__duckapi_file"
#: How the engines' errors about bad input data start or what they contain: such a
#: failure during the run is unreadable input (exit code 2), not a pipeline error.
INPUT_ERROR_MARKERS = (
    NULL_MESSAGE_START := "input column ",
    "CSV Error on Line", "Malformed JSON", "JSON transform error", "file = ", "in file",
    "MALFORMED_RECORD_IN_PARSING", "FAILED_READ_FILE", "CANNOT_READ_FILE", "PATH_NOT_FOUND",
)


def is_input_error(message: str) -> bool:
    return message.startswith(NULL_MESSAGE_START) or any(m in message for m in INPUT_ERROR_MARKERS[1:])


def _not_null_checked(columns: Sequence[Column], source: str) -> str:
    """Select the contract columns; a null where the contract says not_null stops the run."""
    items = []
    for c in columns:
        col = quote_identifier(c.name)
        if c.not_null:
            message = _lit(f"{NULL_MESSAGE_START}{c.name} is null or missing in a row of ")
            note = _lit(" (the input model's contract says not_null)")
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

    def check_input(self, files: Sequence[InputFile], columns: Sequence[Column]) -> None:
        """Open every file's schema and look for the contract's columns: InputError names the file."""
        names = [c.name for c in columns]
        for f in files:
            source = duckdb_source(f.format, [f.path], columns)
            try:
                described = self.con.execute(f"describe select * from {source}").fetchall()
            except duckdb.Error as exc:
                raise InputError(f"{f.path}: {error_message(exc, keep=3, limit=800)}") from exc
            present = {row[0] for row in described}
            missing = [n for n in names if n not in present]
            if missing:
                raise InputError(f"{f.path}: no column {', '.join(missing)} (the input model's contract needs {', '.join(names)})")

    def register_input(self, files: Sequence[InputFile], columns: Sequence[Column]) -> None:
        selected = ", ".join(quote_identifier(name) for name in [*(c.name for c in columns), FILE_COLUMN])
        parts = [f"select {selected} from {duckdb_source(fmt, paths, columns)}" for fmt, paths in _grouped(files)]
        source = "\nunion all\n".join(parts)
        self.con.execute(f"create or replace temp view {INPUT_RELATION} as {_not_null_checked(columns, source)}")

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


# -- output ---------------------------------------------------------------------------

RESULT_RELATION = "__duckapi_result"


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


class _Poller:
    """Feeds DuckDB's query progress (0..1) to a callback while a statement runs."""

    def __init__(self, con: duckdb.DuckDBPyConnection, report: Callable[[float], None] | None) -> None:
        self.con, self.report = con, report
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> "_Poller":
        if self.report:
            self.con.execute("set enable_progress_bar = true")
            self.con.execute("set enable_progress_bar_print = false")
            self.thread = threading.Thread(target=self._run, name="duckapi-duckdb-progress", daemon=True)
            self.thread.start()
        return self

    def _run(self) -> None:
        assert self.report
        while not self.done.wait(0.2):
            try:
                value = self.con.query_progress()
            except Exception:
                return
            if value >= 0:
                self.report(value / 100)

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread:
            self.thread.join(timeout=2)


@contextmanager
def _atomic_output(output: str) -> Iterator[Path]:
    """A temporary file beside the output, moved into place only when writing succeeded."""
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
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# -- progress -------------------------------------------------------------------------

class Reporter:
    """What is running, on a terminal (stderr); nothing at all when stderr is not one."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self._progress: Progress | None = None

    def __enter__(self) -> "Reporter":
        if self.enabled:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                TimeElapsedColumn(), console=self.console, transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress:
            self._progress.stop()

    @contextmanager
    def step(self, description: str, measured: bool = False) -> Iterator[Callable[..., None] | None]:
        """A line for one step; with `measured`, a callback taking the finished share (0..1)
        and optionally what is running right now (shown after the description)."""
        if not self._progress:
            yield None
            return
        task = self._progress.add_task(escape(description), total=1.0 if measured else None)
        progress = self._progress

        def update(fraction: float, detail: str | None = None) -> None:
            label = escape(description + (f" ({detail})" if detail else ""))
            progress.update(task, completed=max(0.0, min(fraction, 1.0)), description=label)

        try:
            yield update if measured else None
        finally:
            progress.update(task, total=1.0, completed=1.0, description=escape(description))

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(escape(text), highlight=False, soft_wrap=True)


# -- the command ----------------------------------------------------------------------

err = Console(stderr=True)


class _Failed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _pick(pipelines: dict[str, Pipeline], endpoint: str | None) -> Pipeline:
    if endpoint is None:
        if len(pipelines) == 1:
            return next(iter(pipelines.values()))
        raise InputError(f"the project serves {len(pipelines)} models; choose one with --endpoint: {', '.join(pipelines)}")
    wanted = "/" + endpoint.strip("/") + "/"
    for path, pipeline in pipelines.items():
        if path == wanted or pipeline.endpoint.output == endpoint:
            return pipeline
    raise InputError(f"--endpoint {endpoint}: no such served model; the project serves {', '.join(pipelines)}")


def _compile(
    settings: Settings, engine: Engine, target: str | None, dbt_vars: dict[str, Any] | None = None
) -> dict[str, Pipeline]:
    """The project's served pipelines, compiled by dbt for the engine's target."""
    from duckapi import project as dbt_project

    try:
        if engine is Engine.spark:
            from duckapi.engines.spark import SPARK_TARGET

            spark_settings = replace(
                settings, target=target or SPARK_TARGET,
                target_path=settings.resolved_target_path / (target or SPARK_TARGET),
            )
            # No adapter cache: compiling needs no Spark session, only the SQL text.
            extra = ["--no-populate-cache"] + (["--vars", json.dumps(dbt_vars)] if dbt_vars else [])
            dbt_project.run_dbt(spark_settings, "compile", extra, quiet=True)
            manifest = dbt_project.load_manifest(spark_settings)
        else:
            settings = replace(settings, target=target) if target else settings
            manifest = dbt_project.compile_manifest(settings, dbt_vars)
        return build_pipelines(manifest)
    except (dbt_project.ProjectError, PipelineError) as exc:
        raise _Failed(1, str(exc)) from exc


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
            "folders are allowed; the rows of all of them are one input. URLs (s3a://, hdfs://) go to Spark as they are.",
            show_default=False,
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="File to write (replaced only once complete); '-' writes to stdout (json, csv).", show_default=False)
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
    target: Annotated[
        Optional[str], typer.Option("--target", help="dbt target to compile (default: the profile's default for duckdb, 'spark' for spark)", show_default=False)
    ] = None,
    dbt_vars: Annotated[
        Optional[str], typer.Option("--vars", help="dbt vars for this run, as YAML or JSON (like `dbt --vars`)", show_default=False)
    ] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="DuckDB threads (env DUCKAPI_DUCKDB_THREADS, default: all cores)", show_default=False)] = None,
    memory_limit: Annotated[
        Optional[str], typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 4GB; beyond it DuckDB spills to a temporary folder (env DUCKAPI_DUCKDB_MEMORY_LIMIT)", show_default=False)
    ] = None,
    spark_master: Annotated[
        Optional[str], typer.Option("--spark-master", envvar="DUCKAPI_SPARK_MASTER", help="Spark master URL: local[*] (default), local[N], spark://host:7077, yarn, k8s://...", show_default=False)
    ] = None,
    spark_remote: Annotated[
        Optional[str], typer.Option("--spark-remote", envvar="DUCKAPI_SPARK_REMOTE", help="Spark Connect server, e.g. sc://host:15002 (instead of --spark-master)", show_default=False)
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
    DAG from the input model to the served model runs once over all input rows, and
    the served model's rows are written in the API's order. With --format json the
    file holds exactly what POST <endpoint> would answer for the same rows.

    Input columns are matched by name to the input model's contract; other columns
    are ignored, a missing one or a null in a not_null column is an error.

    Progress is shown on a terminal (stderr) and nothing is printed otherwise.
    Exit codes: 0 written; 2 bad arguments or unreadable input (names the file and the
    reason); 1 the dbt project or the pipeline failed.
    """
    reporter = Reporter(err, enabled=err.is_terminal)
    started = time.perf_counter()
    try:
        fmt = (format.value if format else None) or _format_of(output) or "json"
        if fmt not in ("json", "parquet", "csv"):
            raise InputError(f"--output {output}: cannot write {fmt}; use --format json, parquet or csv")
        if output == "-" and fmt == "parquet":
            raise InputError("--output -: Parquet cannot go to stdout; give a file name")
        if output != "-":
            parent = Path(output).resolve().parent
            if not parent.is_dir():
                raise InputError(f"--output {output}: folder {parent} does not exist")
            if Path(output).is_dir():
                raise InputError(f"--output {output}: is a folder; give a file name")
        if engine is Engine.duckdb and (spark_master or spark_remote or spark_conf):
            raise InputError("--spark-master, --spark-remote and --spark-conf need --engine spark")
        if spark_master and spark_remote:
            raise InputError("give --spark-master or --spark-remote, not both")
        conf = _parse_conf(spark_conf or [])
        variables = _parse_vars(dbt_vars)
        files = resolve_inputs(inputs, input_format.value)
        settings = Settings.from_env(project_dir=project, duckdb_threads=threads, duckdb_memory_limit=memory_limit)
        with reporter:
            with reporter.step(f"compiling {settings.project_dir.name} for {engine.value}"):
                pipelines = _compile(settings, engine, target, variables)
            pipeline = _pick(pipelines, endpoint)
            if engine is Engine.duckdb:
                rows = run_duckdb(
                    pipeline, files, fmt, output, threads=settings.duckdb_threads or None,
                    memory_limit=settings.duckdb_memory_limit, reporter=reporter,
                )
            else:
                from duckapi.engines.spark import SparkEngine, SparkOptions

                options = SparkOptions(master=spark_master, remote=spark_remote, driver_memory=spark_driver_memory, conf=conf)
                spark = SparkEngine(options)
                try:
                    where = options.remote or options.master or "local[*]"
                    with reporter.step(f"starting Spark ({where})"):
                        try:
                            spark.session
                        except Exception as exc:
                            raise _Failed(1, f"could not start Spark ({where}): {error_message(exc, keep=3, limit=800)}") from exc
                    rows = run_spark(spark, pipeline, files, fmt, output, reporter=reporter)
                finally:
                    spark.stop()
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


def describe_files(files: Sequence[InputFile]) -> str:
    size = sum(os.path.getsize(f.path) for f in files if f.local)
    return f"{len(files)} file{'s' if len(files) != 1 else ''}" + (f", {size / 2**20:,.1f} MiB" if size else "")


def _input_error(exc: ExecutionError) -> ExecutionError | InputError:
    return InputError(str(exc)) if is_input_error(str(exc)) else exc


def run_duckdb(
    pipeline: Pipeline, files: Sequence[InputFile], fmt: str, output: str, *,
    threads: int | None = None, memory_limit: str | None = None, reporter: Reporter | None = None,
) -> int:
    """The pipeline over the files on a private DuckDB connection; rows written to `output`."""
    reporter = reporter or Reporter(err, enabled=False)
    remote = [f.path for f in files if not f.local]
    if remote:
        raise InputError(f"{remote[0]}: the DuckDB engine reads local files only; use --engine spark for URLs")
    what = describe_files(files)
    batch = DuckDBBatch(threads, memory_limit)
    try:
        with reporter.step(f"checking {what}"):
            batch.check_input(files, pipeline.input_columns)
            batch.register_input(files, pipeline.input_columns)
        with reporter.step(f"running {pipeline.endpoint.output} on DuckDB over {what}", measured=True) as update:
            with _atomic_output(output) as out:
                try:
                    return write_output(batch.con, pipeline.select_sql, fmt, out, update)
                except duckdb.Error as exc:
                    raise _input_error(ExecutionError(error_message(exc, keep=3, limit=800).removeprefix("Invalid Input Error: "))) from exc
    finally:
        batch.close()


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
