"""Every knob in one place: environment variables first, then CLI flags override.

No other module reads the environment; they receive a `Settings`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from duckapi.dbt import profiles

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_PROJECT = REPO_ROOT / "duckapi_dbt"


def _profile_db_path(project_dir: Path, env: dict[str, str]) -> Path:
    """The file the project's profile writes (its `path`), else <project>/dev.duckdb."""
    return profiles.default_db_path(project_dir, env.get("DUCKAPI_TARGET") or None) or project_dir / "dev.duckdb"


#: Share of the machine's (or container's) memory all pipeline databases may use together.
MEMORY_SHARE = 0.5
MIN_LANE_MEMORY = 128 * 1024 * 1024


def total_memory() -> int | None:
    """Bytes of memory this process may use: the machine's, or its cgroup's if lower."""
    try:
        total: int | None = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < (total or 1 << 62):
            total = int(raw)
    return total


def default_memory_limit(workers: int, threads: int) -> str | None:
    """Each pipeline thread has its own DuckDB database, and DuckDB's own default is 80%
    of the memory for each, so two of them may together ask for more than there is and
    the kernel kills the worker. Instead: MEMORY_SHARE of the memory, split over every
    pipeline database of every worker (4 GB, 1 worker, 2 threads: 1 GB each), leaving
    the rest to the decoded request rows, answers and Python."""
    total = total_memory()
    if not total:
        return None
    lane = max(MIN_LANE_MEMORY, int(total * MEMORY_SHARE) // max(1, workers * threads))
    return f"{lane // (1024 * 1024)}MB"


def _flag(raw: str | None) -> bool:
    return (raw or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """Configuration of one duckapi process."""

    project_dir: Path = BUNDLED_PROJECT
    # The dbt-built DuckDB file. Requests never open it; dbt builds it.
    db_path: Path = field(default_factory=lambda: BUNDLED_PROJECT / "dev.duckdb")
    # Where dbt writes manifest.json; defaults to <project>/target.
    target_path: Path | None = None
    target: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # Threads that execute pipelines, each with its own in-memory DuckDB; requests
    # beyond this many wait their turn (the work is CPU-bound). 0 = the core count.
    executor_threads: int = 0
    # Pipeline threads run this much nicer than the event loop (api/ops/limits.py
    # lower_priority), so refusals and I/O never wait behind statements for a core.
    executor_nice: int = 10
    # Up to this many small requests waiting for a thread are answered by one statement
    # (duckapi/api/batcher.py); 1 turns batching off.
    max_batch: int = 16
    # DuckDB threads for one query. 0 = adaptive: one for small inputs, all cores for large.
    duckdb_threads: int = 0
    # Per pipeline database (one per executor thread); None = a share of the memory
    # (api/ops/limits.py default_memory_limit), "none" = DuckDB's own default.
    duckdb_memory_limit: str | None = None
    max_body_bytes: int = 256 * 1024 * 1024
    log_level: str = "info"
    # Project variants compiled for per-request dbt vars, kept most recently used first.
    vars_cache_size: int = 16
    # New vars compile one at a time; this many more may wait, beyond that 503 + Retry-After.
    vars_compile_queue: int = 4
    # Data-dependent models (their rendering queries the request's data, docs/serving.md):
    # rendered per request ("render", the default) or refused at start-up ("off"). Renderings
    # kept per endpoint (beyond it they are all dropped and rendered again as needed), and
    # the most bytes of SQL one rendering may produce (422 beyond it).
    data_dependent: str = "render"
    rendered_variants: int = 256
    max_rendered_sql_bytes: int = 1_000_000
    # Recompile when the project's files change (and on SIGHUP), polling this often.
    reload: bool = False
    reload_interval: float = 1.0
    # SIGTERM: /healthz answers 503 for this long while requests are still served, then
    # uvicorn stops accepting and gives requests in flight up to shutdown_timeout to finish.
    drain_seconds: float = 2.0
    shutdown_timeout: float = 30.0
    # An answer sent before the request's body was read (401, 413, 415, 503, ...) is followed
    # by a lingering close (api/ops/lingering.py): the rest of the body is read and dropped,
    # up to this many seconds and bytes, so the client receives the answer.
    linger_seconds: float = 10.0
    linger_bytes: int = 1024 * 1024 * 1024
    # Warm every pipeline thread's lane at start-up and before a reload serves
    # (api/ops/warming.py); off, the first requests on each lane pay for it.
    warm_lanes: bool = True
    # One log line per request costs about as much as parsing a small body: off by default.
    access_log: bool = False
    # DUCKAPI_ACCESS_LOG=json: one JSON line per request instead (api/ops/request_log.py).
    request_log: bool = False
    # API keys (api/ops/auth.py): with a file, every endpoint but /healthz needs a key;
    # the docs and /metrics too unless made public.
    api_keys_file: Path | None = None
    public_docs: bool = False
    public_metrics: bool = False
    # Limits (api/ops/limits.py); 0 = none. Rows per request over all inputs (413),
    # requests waiting for a pipeline thread per worker (503), seconds per request (504).
    max_rows: int = 10_000_000
    max_queue: int = 64
    request_timeout: float = 60.0

    @property
    def pipeline_threads(self) -> int:
        return self.executor_threads or os.cpu_count() or 1

    @property
    def lane_memory_limit(self) -> str | None:
        """The memory_limit of each pipeline database (None: DuckDB's default)."""
        if (self.duckdb_memory_limit or "").strip().lower() == "none":
            return None
        return self.duckdb_memory_limit or default_memory_limit(self.workers, self.pipeline_threads)

    def build_command(self, db: bool = True) -> str:
        """The `duckapi build` that builds this project's warehouse, as a user types it
        (paths relative to the working directory where they are inside it); `db=False`
        leaves out --db (a Spark target's build writes no DuckDB file)."""
        def shown(path: Path) -> str:
            try:
                return str(path.relative_to(Path.cwd()))
            except ValueError:
                return str(path)

        command = "duckapi build"
        if self.project_dir != BUNDLED_PROJECT.resolve():
            command += f" --project {shown(self.project_dir)}"
        if db and self.db_path != Path(_profile_db_path(self.project_dir, {})).resolve():
            command += f" --db {shown(self.db_path)}"
        return command + (f" --target {self.target}" if self.target else "")

    @property
    def manifest_path(self) -> Path:
        return self.resolved_target_path / "manifest.json"

    @property
    def resolved_target_path(self) -> Path:
        return self.target_path or (self.project_dir / "target")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> "Settings":
        """Read DUCKAPI_* (and HOST/PORT) variables; keyword overrides win when not None."""
        env = dict(os.environ if env is None else env)
        project_dir = Path(env.get("DUCKAPI_PROJECT_DIR") or BUNDLED_PROJECT).resolve()
        base = cls(
            project_dir=project_dir,
            db_path=Path(env.get("DUCKAPI_DB_PATH") or _profile_db_path(project_dir, env)).resolve(),
            target_path=Path(env["DUCKAPI_TARGET_PATH"]).resolve() if env.get("DUCKAPI_TARGET_PATH") else None,
            target=env.get("DUCKAPI_TARGET") or None,
            host=env.get("HOST") or "127.0.0.1",
            port=int(env.get("PORT") or 8000),
            workers=int(env.get("DUCKAPI_WORKERS") or 1),
            executor_threads=int(env.get("DUCKAPI_EXECUTOR_THREADS") or 0),
            executor_nice=int(env.get("DUCKAPI_EXECUTOR_NICE") or 10),
            max_batch=int(env.get("DUCKAPI_MAX_BATCH") or 16),
            duckdb_threads=int(env.get("DUCKAPI_DUCKDB_THREADS") or 0),
            duckdb_memory_limit=env.get("DUCKAPI_DUCKDB_MEMORY_LIMIT") or None,
            max_body_bytes=int(env.get("DUCKAPI_MAX_BODY_BYTES") or 256 * 1024 * 1024),
            log_level=env.get("DUCKAPI_LOG_LEVEL") or "info",
            access_log=_flag(env.get("DUCKAPI_ACCESS_LOG")),
            request_log=(env.get("DUCKAPI_ACCESS_LOG") or "").strip().lower() == "json",
            vars_cache_size=int(env.get("DUCKAPI_VARS_CACHE_SIZE") or 16),
            vars_compile_queue=int(env.get("DUCKAPI_VARS_COMPILE_QUEUE") or 4),
            data_dependent=(env.get("DUCKAPI_DATA_DEPENDENT") or "render").strip().lower(),
            rendered_variants=int(env.get("DUCKAPI_RENDERED_VARIANTS") or 256),
            max_rendered_sql_bytes=int(env.get("DUCKAPI_MAX_RENDERED_SQL_BYTES") or 1_000_000),
            reload=_flag(env.get("DUCKAPI_RELOAD")),
            api_keys_file=Path(env["DUCKAPI_API_KEYS_FILE"]).resolve() if env.get("DUCKAPI_API_KEYS_FILE") else None,
            public_docs=_flag(env.get("DUCKAPI_PUBLIC_DOCS")),
            public_metrics=_flag(env.get("DUCKAPI_PUBLIC_METRICS")),
            max_rows=int(env.get("DUCKAPI_MAX_ROWS") or 10_000_000),
            max_queue=int(env.get("DUCKAPI_MAX_QUEUE") or 64),
            request_timeout=float(env.get("DUCKAPI_REQUEST_TIMEOUT") or 60.0),
            reload_interval=float(env.get("DUCKAPI_RELOAD_INTERVAL") or 1.0),
            drain_seconds=float(env.get("DUCKAPI_DRAIN_SECONDS") or 2.0),
            shutdown_timeout=float(env.get("DUCKAPI_SHUTDOWN_TIMEOUT") or 30.0),
            linger_seconds=float(env.get("DUCKAPI_LINGER_SECONDS") or 10.0),
            linger_bytes=int(env.get("DUCKAPI_LINGER_BYTES") or 1024 * 1024 * 1024),
            warm_lanes=_flag(env.get("DUCKAPI_WARM_LANES") or "1"),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        if "project_dir" in given and "db_path" not in given and not env.get("DUCKAPI_DB_PATH"):
            given["db_path"] = _profile_db_path(Path(given["project_dir"]).resolve(), env)
        for key in ("project_dir", "db_path", "target_path", "api_keys_file"):
            if key in given:
                given[key] = Path(given[key]).resolve()  # type: ignore[arg-type]
        return replace(base, **given)

    def to_env(self) -> dict[str, str]:
        """The variables that recreate these settings in a child process (uvicorn workers)."""
        env = {
            "DUCKAPI_PROJECT_DIR": str(self.project_dir),
            "DUCKAPI_DB_PATH": str(self.db_path),
            "DUCKAPI_EXECUTOR_THREADS": str(self.executor_threads),
            "DUCKAPI_EXECUTOR_NICE": str(self.executor_nice),
            "DUCKAPI_MAX_BATCH": str(self.max_batch),
            "DUCKAPI_DUCKDB_THREADS": str(self.duckdb_threads),
            "DUCKAPI_MAX_BODY_BYTES": str(self.max_body_bytes),
            "DUCKAPI_LOG_LEVEL": self.log_level,
            "DUCKAPI_ACCESS_LOG": "json" if self.request_log else "1" if self.access_log else "0",
            "DUCKAPI_VARS_CACHE_SIZE": str(self.vars_cache_size),
            "DUCKAPI_VARS_COMPILE_QUEUE": str(self.vars_compile_queue),
            "DUCKAPI_DATA_DEPENDENT": self.data_dependent,
            "DUCKAPI_RENDERED_VARIANTS": str(self.rendered_variants),
            "DUCKAPI_MAX_RENDERED_SQL_BYTES": str(self.max_rendered_sql_bytes),
            "DUCKAPI_RELOAD": "1" if self.reload else "0",
            "DUCKAPI_PUBLIC_DOCS": "1" if self.public_docs else "0",
            "DUCKAPI_PUBLIC_METRICS": "1" if self.public_metrics else "0",
            "DUCKAPI_MAX_ROWS": str(self.max_rows),
            "DUCKAPI_MAX_QUEUE": str(self.max_queue),
            "DUCKAPI_REQUEST_TIMEOUT": str(self.request_timeout),
            "DUCKAPI_RELOAD_INTERVAL": str(self.reload_interval),
            "DUCKAPI_DRAIN_SECONDS": str(self.drain_seconds),
            "DUCKAPI_SHUTDOWN_TIMEOUT": str(self.shutdown_timeout),
            "DUCKAPI_LINGER_SECONDS": str(self.linger_seconds),
            "DUCKAPI_LINGER_BYTES": str(self.linger_bytes),
            "DUCKAPI_WARM_LANES": "1" if self.warm_lanes else "0",
        }
        if self.target_path:
            env["DUCKAPI_TARGET_PATH"] = str(self.target_path)
        if self.target:
            env["DUCKAPI_TARGET"] = self.target
        if self.duckdb_memory_limit:
            env["DUCKAPI_DUCKDB_MEMORY_LIMIT"] = self.duckdb_memory_limit
        if self.api_keys_file:
            env["DUCKAPI_API_KEYS_FILE"] = str(self.api_keys_file)
        return env
