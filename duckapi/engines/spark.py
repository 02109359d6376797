"""The pipeline on Apache Spark: the same compiled DAG, run in a SparkSession.

The manifest comes from `dbt compile --target spark`, so every dispatch macro is
rendered as Spark SQL; this module only renders the statement the way Spark wants
it (backtick-quoted CTE names, no `as materialized`, dbt-spark's relation names
rewritten by relations.spark_rewrite) and runs it over one temp view per input,
named `Input.relation`, that reads that input's files. Reference data (seeds,
tables, sources the pipeline reads) comes from the session's catalog, under the
names dbt-spark gave it. The session is local (`local[*]`) by default, or a cluster
master URL (spark://, yarn, k8s://), or a Spark Connect server (sc://host:15002).

The answer comes back to the driver as Arrow; the caller serialises it the way the
API does (DuckDB's to_json over the rows in `order by o`), so both engines write the
same bytes. Spark runs with ANSI mode off, as dbt-spark runs the models in
`dbt build --target spark`.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

import pyarrow as pa

from duckapi.pipeline import relations
from duckapi.pipeline.contract import column_type
from duckapi.engines import ExecutionError, ResourceError
from duckapi.pipeline import Column, Dialect, Input, Pipeline, Reference

if TYPE_CHECKING:  # pyspark is an optional dependency (the `spark` extra)
    from pyspark.sql import DataFrame, SparkSession

T = TypeVar("T")

#: dbt target (in the project's profiles.yml) whose compiled SQL this engine runs.
SPARK_TARGET = "spark"

#: Session settings every run needs. ANSI off as dbt-spark sets it (Spark 4 defaults
#: to on), so `dbt build --target spark` and this engine agree on edge cases; an
#: in-memory catalog so no Hive metastore (metastore_db/, derby.log) is written.
SESSION_CONF: dict[str, str] = {
    "spark.sql.ansi.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.catalogImplementation": "in-memory",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Parquet answers' timestamps as every reader reads them (Spark's default is INT96).
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
#: Only for a local master: the driver listens on loopback only.
LOCAL_CONF: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
DEFAULT_DRIVER_MEMORY = "4g"

_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""

def spark_type(data_type: str) -> str:
    """An input's type as Spark SQL spells it, from the Arrow type DuckDB gives it
    (pipeline/contract.py): a bare varchar is `string`, DuckDB's unsigned and huge integers become
    the types that hold them, lists are arrays, structs structs. A type duckapi does not
    take as input is passed through as written."""
    try:
        return _spark(column_type(data_type).arrow)
    except ValueError:
        return data_type.strip()


def _spark(arrow: pa.DataType) -> str:
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return f"array<{_spark(arrow.value_type)}>"
    if pa.types.is_struct(arrow):
        fields = (arrow.field(i) for i in range(arrow.num_fields))
        return "struct<" + ", ".join(f"{quote(f.name)}: {_spark(f.type)}" for f in fields) + ">"
    if pa.types.is_integer(arrow):
        signed = {8: "tinyint", 16: "smallint", 32: "int", 64: "bigint"}
        unsigned = {8: "smallint", 16: "int", 32: "bigint", 64: "decimal(20,0)"}
        return (signed if pa.types.is_signed_integer(arrow) else unsigned)[arrow.bit_width]
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if pa.types.is_timestamp(arrow):
        return "timestamp"  # the session is UTC: a TIMESTAMP and a TIMESTAMP WITH TIME ZONE alike
    if pa.types.is_time(arrow):
        return "string"  # Spark has no time of day: HH:MM:SS text, ordered as the times are
    names = {pa.string(): "string", pa.float32(): "float", pa.float64(): "double", pa.bool_(): "boolean",
             pa.date32(): "date", pa.binary(): "binary"}
    return names[arrow]


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


#: Spark SQL: backticks, `string` for a bare varchar, dbt-spark's unquoted relation
#: names (rewritten lexically, each aliased to its own name), and no `as materialized`
#: (Spark plans CTEs its own way).
SPARK = Dialect(quote=quote, type_name=spark_type, materialized_ctes=False, rewrite=relations.spark_rewrite)


def spark_sql(pipeline: Pipeline) -> str:
    """The pipeline as one Spark SQL statement over its inputs' temp views.

    Pipeline.body_sql's CTE chain in the Spark dialect, from a manifest compiled for
    the spark target. No final ORDER BY: the rows are ordered where they are
    serialised, exactly as the API orders them.
    """
    columns = ", ".join(map(quote, pipeline.columns)) if pipeline.columns else "*"
    return f"{pipeline.body_sql('table', SPARK)}\nselect {columns} from {SPARK.cte(pipeline.output_node.name)}"


@dataclass(frozen=True)
class SparkOptions:
    """Where and how the session runs."""

    #: Master URL: local[*] (default), local[N], spark://host:7077, yarn, k8s://...
    master: str | None = None
    #: Spark Connect URL (sc://host:15002); excludes `master`.
    remote: str | None = None
    driver_memory: str = DEFAULT_DRIVER_MEMORY
    #: Any other Spark settings (spark.executor.memory, spark.sql.shuffle.partitions, ...).
    conf: dict[str, str] = field(default_factory=dict)
    app_name: str = "duckapi"


def _quiet_python_loggers() -> None:
    # PySpark logs every SQL error with its JVM stack before raising it; the error
    # itself still reaches the caller.
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger", "py4j"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def start_session(options: SparkOptions, scratch: Path) -> tuple["SparkSession", bool]:
    """A SparkSession for these options, and whether it is new (so ours to stop).

    Files Spark writes (warehouse, shuffle spill, its log) go under `scratch`. A
    process has one driver JVM: if a local session is already running, it is joined
    (with this run's SQL settings) and left running afterwards.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ExecutionError("the Spark engine needs PySpark: pip install 'duckapi[spark]'") from exc
    _quiet_python_loggers()
    if options.remote:
        builder = SparkSession.builder.remote(options.remote)
        conf = {**SESSION_CONF, **options.conf}
        # Static settings belong to the Connect server; a client may set runtime SQL ones.
        conf = {k: v for k, v in conf.items() if k.startswith("spark.sql.") and k != "spark.sql.catalogImplementation"}
    else:
        master = options.master or "local[*]"
        log4j = scratch / "log4j2.properties"
        log4j.write_text(_LOG4J)
        java = f"-Dlog4j2.configurationFile={log4j.as_uri()}"
        conf = {
            **SESSION_CONF,
            **(LOCAL_CONF if master.startswith("local") else {}),
            **({"spark.local.dir": str(scratch / "local")} if master.startswith("local") else {}),
            "spark.driver.memory": options.driver_memory,
            "spark.sql.warehouse.dir": str(scratch / "warehouse"),
            **options.conf,
            "spark.driver.extraJavaOptions": f"{options.conf.get('spark.driver.extraJavaOptions', '')} {java}".strip(),
        }
    new = True
    if options.remote:
        builder = builder.appName(options.app_name)
        for key, value in conf.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
    else:
        from pyspark import SparkContext

        if SparkContext._active_spark_context is not None:  # one JVM per process: join it
            session, new = SparkSession.builder.getOrCreate(), False
            for key, value in conf.items():
                if session.conf.isModifiable(key):
                    session.conf.set(key, value)
        else:
            session = _start_local_jvm(options, conf, scratch)
    for key in ("spark.sql.ansi.enabled", "spark.sql.session.timeZone"):
        # An already running session keeps its own runtime settings: set them again.
        session.conf.set(key, conf.get(key, SESSION_CONF[key]))
    return session, new


def _start_local_jvm(options: SparkOptions, conf: dict[str, str], scratch: Path) -> "SparkSession":
    """Start the driver JVM with its console output in scratch/spark.log, not on our stderr.

    (PySpark's documented hook for capturing the gateway's output; the JVM prints
    start-up notices and warnings that a batch command should not show.)
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    spark_conf = SparkConf().setMaster(options.master or "local[*]").setAppName(options.app_name)
    spark_conf.setAll(list(conf.items()))
    with (scratch / "spark.log").open("ab") as log:
        try:
            gateway = launch_gateway(spark_conf, popen_kwargs={"stdout": log, "stderr": log})
        except Exception as exc:
            tail = (scratch / "spark.log").read_text(errors="replace").strip().splitlines()[-5:]
            raise ExecutionError(f"the Spark driver did not start: {exc} {' '.join(tail)}".strip()) from exc
    context = SparkContext(conf=spark_conf, gateway=gateway)
    return SparkSession(context)


def _stop_local_jvm() -> None:
    """End the gateway JVM PySpark launched (it only exits with its parent otherwise)."""
    import subprocess

    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    try:
        gateway.shutdown()
    except Exception:
        pass
    SparkContext._gateway = None
    SparkContext._jvm = None
    if proc is not None:
        try:
            proc.stdin.close()  # the JVM exits when its stdin closes
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


#: Spark's CSV reader turns a field equal to its nullValue into null, and reads an
#: unquoted empty field as nullValue; this never occurs in real data.
CSV_NULL_SENTINEL = "\u0000duckapi:null\u0000"

#: Input file formats Spark reads, as the batch command names them.
FORMATS = ("csv", "parquet", "json", "ndjson")


class SparkEngine:
    """Runs pipelines over files in one SparkSession (started lazily, or handed in)."""

    def __init__(self, options: SparkOptions | None = None, session: "SparkSession | None" = None) -> None:
        self.options = options or SparkOptions()
        self._session = session
        self._owned = session is None
        self._scratch: Path | None = None

    @property
    def session(self) -> "SparkSession":
        if self._session is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="duckapi-spark-"))
            self._session, self._owned = start_session(self.options, self._scratch)
        return self._session

    @property
    def is_connect(self) -> bool:
        return bool(self.options.remote) or type(self.session).__module__.startswith("pyspark.sql.connect")

    # -- input ---------------------------------------------------------------------

    def read(self, fmt: str, paths: Sequence[str], columns: Sequence[Column]) -> "DataFrame":
        """The contract columns of these files, typed by the contract where the format has no types."""
        spark = self.session
        names = [c.name for c in columns]
        if fmt == "parquet":
            frame = spark.read.parquet(*paths)
        elif fmt == "csv":
            # RFC 4180 CSV: "" escapes a quote, fields may span lines. The header names the
            # columns; the contract types them, and a value that does not parse fails the run.
            # An unquoted empty field is null, a quoted one ("") the empty string, as DuckDB
            # reads it with allow_quoted_nulls off: Spark maps unquoted empties to nullValue.
            reader = spark.read.options(
                header=True, multiLine=True, escape='"', mode="FAILFAST", nullValue=CSV_NULL_SENTINEL, emptyValue=""
            )
            header = reader.csv(list(paths)).columns
            types = {c.name: spark_type(c.data_type) for c in columns}
            schema = ", ".join(f"{quote(h)} {types.get(h, 'string')}" for h in header)
            frame = reader.schema(schema).csv(list(paths))
        elif fmt in ("json", "ndjson"):
            # `json`: files holding one JSON array of rows (the API's body); `ndjson`: a row per line.
            schema = ", ".join(f"{quote(c.name)} {spark_type(c.data_type)}" for c in columns)
            frame = spark.read.options(mode="FAILFAST", multiLine=(fmt == "json")).schema(schema).json(list(paths))
        else:
            raise ValueError(f"unknown input format {fmt!r}")
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise KeyError(missing)
        return frame.select(*[quote(n) for n in names])

    def register_input(self, item: Input, frames: Sequence["DataFrame"]) -> None:
        """The input's files as the temp view `item.relation`: the union of its frames.

        A null in a contract column declared not_null stops the run, as the API
        refuses such a row (the files are data, not a validated request).
        """
        from pyspark.sql import functions as F

        frame = frames[0]
        for other in frames[1:]:
            frame = frame.unionByName(other)
        checked = []
        for c in item.columns:
            col = F.col(quote(c.name))
            if c.not_null:
                message = F.concat(
                    F.lit(f"input column {c.name} is null or missing in a row of "), F.input_file_name(),
                    F.lit(" (the input's contract says not_null)"),
                )
                col = F.when(col.isNull(), F.raise_error(message)).otherwise(col)
            checked.append(col.alias(c.name))
        frame.select(*checked).createOrReplaceTempView(item.relation)

    # -- reference data ----------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        """The driver and the catalog are in this process (local[*], local[N])."""
        return not self.options.remote and (self.options.master or "local").startswith("local")

    def missing_references(self, references: Sequence[Reference]) -> list[Reference]:
        """The reference relations the session's catalog does not have."""
        missing = []
        for reference in references:
            try:
                exists = self.session.catalog.tableExists(reference.relation_name)
            except spark_errors():
                exists = False
            if not exists:
                missing.append(reference)
        return missing

    # -- execution -----------------------------------------------------------------

    def execute_arrow(self, pipeline: Pipeline, on_progress: Callable[..., None] | None = None) -> pa.Table:
        """Run the statement over the inputs' views and bring its rows to the driver as Arrow.

        `on_progress(fraction, detail)` hears, a few times a second, the finished share of
        the tasks of the stages running now and which stages those are.
        """
        return self._run(pipeline, on_progress, lambda frame: frame.toArrow())

    def write_parquet(self, pipeline: Pipeline, folder: str, on_progress: Callable[..., None] | None = None) -> None:
        """Run the statement and have the executors write its rows as a Parquet dataset in
        `folder` (which must not exist), never collecting them: a global sort in the API's
        order (`order by o`: column by column, nulls last), so part files in name order
        hold the rows in that order. On a cluster the folder must be on storage every
        executor and this process reach (a shared file system, an object store URL)."""
        from pyspark.sql import functions as F

        def write(frame: "DataFrame") -> None:
            ordered = frame.orderBy(*[F.col(quote(name)).asc_nulls_last() for name in frame.columns])
            ordered.write.mode("errorifexists").parquet(folder)

        self._run(pipeline, on_progress, write)

    def _run(self, pipeline: Pipeline, on_progress: Callable[..., None] | None, consume: Callable[["DataFrame"], T]) -> T:
        """The statement as a DataFrame handed to `consume`, with progress and Spark's errors mapped."""
        poller = _ProgressPoller(self.session, on_progress) if on_progress and not self.is_connect else None
        try:
            if poller:
                poller.start()
            return consume(self.session.sql(spark_sql(pipeline)))
        except spark_errors() as exc:
            raise _execution_error(exc) from exc
        finally:
            if poller:
                poller.stop()

    def stop(self) -> None:
        """Stop a session this engine started, and its driver JVM (waited for, not left behind)."""
        if self._owned and self._session is not None:
            try:
                self._session.stop()
                if not self.options.remote:
                    _stop_local_jvm()
            finally:
                self._session = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


def spark_errors() -> tuple[type[BaseException], ...]:
    """What PySpark raises when Spark refuses a read or a statement (classic and Connect)."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JError)


_JAVA_CLASS = re.compile(r"^(?:[\w$]+\.)+[\w$]*(?:Exception|Error):\s*")


def spark_message(exc: BaseException) -> str:
    """What went wrong, from a PySpark or py4j error: the root cause, without JVM stacks.

    A failed job arrives as `An error occurred while calling ...` with a chain of
    `Caused by:` lines; the first cause that carries a Spark error class
    ([USER_RAISED_EXCEPTION], [MALFORMED_RECORD_IN_PARSING], ...) says it best.
    """
    text = str(exc).strip()
    causes = []
    for line in text.splitlines():
        if line.startswith("Caused by:"):
            cause = line.split("Caused by:", 1)[1].strip()
            while _JAVA_CLASS.match(cause):
                cause = _JAVA_CLASS.sub("", cause, count=1)
            cause = re.sub(r"\s*SQLSTATE: \w+$", "", cause).strip()
            if cause and "awaitResult" not in cause and cause not in causes:
                causes.append(cause)
    if causes:
        # The outermost classified error, then what caused it (the root last).
        first = next((i for i, c in enumerate(causes) if c.startswith("[")), 0)
        chain = causes[first:]
        message = " | ".join(chain if len(chain) <= 3 else [chain[0], chain[1], chain[-1]])
    else:
        lines = []
        for line in text.splitlines():
            if line.startswith(("== ", "JVM stacktrace")) or line.lstrip().startswith("at "):
                break
            if line.strip():
                lines.append(line.strip())
        message = _JAVA_CLASS.sub("", " ".join(lines[:3]))
    message = re.sub(r"^\[USER_RAISED_EXCEPTION\]\s*", "", message)
    message = re.sub(r"\s*SQLSTATE: \w+$", "", message)
    return message[:800] or type(exc).__name__


def _execution_error(exc: BaseException) -> ExecutionError:
    message = spark_message(exc)
    text = str(exc)
    if "OutOfMemoryError" in text or "Java heap space" in text:
        return ResourceError(f"Spark ran out of memory: {message} (raise --spark-driver-memory)")
    return ExecutionError(message)


class _ProgressPoller:
    """Reports the share of finished tasks of the running Spark jobs (classic sessions only)."""

    def __init__(self, session: "SparkSession", report: Callable[..., None], interval: float = 0.25) -> None:
        self._tracker = session.sparkContext.statusTracker()
        self._report = report
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="duckapi-spark-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            try:
                total = done = 0
                stages = sorted(self._tracker.getActiveStageIds())
                for stage_id in stages:
                    info = self._tracker.getStageInfo(stage_id)
                    if info is not None:
                        total += info.numTasks
                        done += info.numCompletedTasks
                if total:
                    names = ", ".join(map(str, stages[:4])) + (", ..." if len(stages) > 4 else "")
                    label = "stage" if len(stages) == 1 else "stages"
                    self._report(done / total, f"Spark {label} {names}: {done}/{total} tasks")
            except Exception:  # the session is going away; progress is cosmetic
                return
