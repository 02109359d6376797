"""The `duckapi` command: build the dbt project, serve it."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from duckapi import batch
from duckapi.testing.command import record_command, test as unit_test_command
from duckapi.settings import Settings

app = typer.Typer(help="Serve a dbt project as a real-time analytics API over DuckDB.", no_args_is_help=True)
err = Console(stderr=True)

ProjectOpt = Annotated[
    Optional[Path], typer.Option("--project", help="dbt project folder [default: the bundled duckapi_dbt]")
]
DbOpt = Annotated[
    Optional[Path], typer.Option("--db", help="DuckDB file dbt builds [env DUCKAPI_DB_PATH, default <project>/dev.duckdb]")
]
TargetOpt = Annotated[Optional[str], typer.Option("--target", help="dbt target in profiles.yml")]


def _settings(**overrides: object) -> Settings:
    return Settings.from_env(**overrides)


def _fail(exc: Exception, settings: Settings | None = None) -> None:
    """Print the error and exit 1; a bare "`duckapi build`" in it becomes the full command
    for the project at hand."""
    message = str(exc)
    if settings is not None:
        message = message.replace("`duckapi build`", f"`{settings.build_command()}`")
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)  # a command stays copyable
    raise typer.Exit(1)


@app.command()
def build(project: ProjectOpt = None, db: DbOpt = None, target: TargetOpt = None) -> None:
    """Run `dbt build` (seeds, models, tests) of the project into its DuckDB file."""
    from duckapi.dbt import project as dbt_project

    settings = _settings(project_dir=project, db_path=db, target=target)
    try:
        dbt_project.build(settings)
    except dbt_project.ProjectError as exc:
        _fail(exc)
    from duckapi.dbt import profiles

    spark = bool(profiles.spark_conf(settings.project_dir, target)) if target else False
    where = f"its Spark catalog (target {target})" if spark else settings.db_path
    err.print(f"built {settings.project_dir} into {where}")


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Interface to bind [env HOST, default 127.0.0.1]")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port [env PORT, default 8000]")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes [env DUCKAPI_WORKERS, default 1]")] = None,
    threads: Annotated[
        Optional[int], typer.Option(help="Pipeline threads per worker [env DUCKAPI_EXECUTOR_THREADS, default: cores]")
    ] = None,
    max_batch: Annotated[
        Optional[int],
        typer.Option("--max-batch", help="Small waiting requests answered per statement; 1 = off [env DUCKAPI_MAX_BATCH, default 16]"),
    ] = None,
    max_body: Annotated[
        Optional[int], typer.Option("--max-body", help="Request body limit in bytes [env DUCKAPI_MAX_BODY_BYTES]")
    ] = None,
    reload: Annotated[
        bool, typer.Option("--reload", help="Recompile when the project's files change [env DUCKAPI_RELOAD]")
    ] = False,
    api_keys_file: Annotated[
        Optional[Path], typer.Option("--api-keys-file", help="Require one of these keys, one per line [env DUCKAPI_API_KEYS_FILE]")
    ] = None,
    max_rows: Annotated[
        Optional[int], typer.Option("--max-rows", help="Rows per request, all inputs; 0 = no limit [env DUCKAPI_MAX_ROWS, default 10000000]")
    ] = None,
    max_queue: Annotated[
        Optional[int], typer.Option("--max-queue", help="Requests waiting for a thread per worker, then 503; 0 = no limit [env DUCKAPI_MAX_QUEUE, default 64]")
    ] = None,
    timeout: Annotated[
        Optional[float], typer.Option("--timeout", help="Seconds per request, then 504; 0 = none [env DUCKAPI_REQUEST_TIMEOUT, default 60]")
    ] = None,
    memory_limit: Annotated[
        Optional[str], typer.Option("--memory-limit", help="DuckDB memory per pipeline thread, e.g. 1GB [env DUCKAPI_DUCKDB_MEMORY_LIMIT, default: half the memory, shared]")
    ] = None,
    project: ProjectOpt = None,
    db: DbOpt = None,
    target: TargetOpt = None,
) -> None:
    """Compile the project once, then serve its models over HTTP with uvicorn.

    SIGHUP recompiles too; a project that fails to compile keeps the old version serving.
    """
    import uvicorn

    from duckapi.dbt import child as dbt_child
    from duckapi.dbt import project as dbt_project
    from duckapi.api.ops.lingering import LingeringHttpToolsProtocol
    from duckapi.api.ops.multiproc import prepare_metrics_dir
    from duckapi.pipeline import PipelineError
    from duckapi.serving.service import Service, compile_project
    from duckapi.dbt.warehouse import WarehouseError

    settings = _settings(
        host=host, port=port, workers=workers, executor_threads=threads, max_batch=max_batch, max_body_bytes=max_body,
        project_dir=project, db_path=db, target=target, reload=reload or None, api_keys_file=api_keys_file,
        max_rows=max_rows, max_queue=max_queue, request_timeout=timeout, duckdb_memory_limit=memory_limit,
    )
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    if settings.api_keys_file:
        from duckapi.api.ops.auth import KeysError, read_keys

        try:
            read_keys(settings.api_keys_file)
        except KeysError as exc:
            _fail(exc)
    try:
        if not settings.db_path.exists():  # a fresh clone: build the warehouse first, as `duckapi build` does
            err.print(f"no warehouse at {settings.db_path} yet: building it (`{settings.build_command()}`)")
            dbt_project.build(settings)
        # Compile and check here once; every worker then loads the manifest this wrote.
        Service(settings, compile_project(settings)).close()
    except (dbt_project.ProjectError, PipelineError, WarehouseError) as exc:
        _fail(exc, settings)
    finally:
        # No warm dbt child in the supervisor: it compiles nothing more (workers compile
        # reloads and vars), and a child retiring under load would take CPU from them.
        dbt_child.stop()
    os.environ.update(settings.to_env())
    prepare_metrics_dir()  # before any worker imports prometheus-client (api/ops/multiproc.py)
    uvicorn.run(
        "duckapi.api.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=settings.access_log,
        loop="uvloop",
        http=LingeringHttpToolsProtocol,  # httptools, with a lingering close
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )


app.command("run")(batch.run)
app.command("test")(unit_test_command)
app.command("record")(record_command)


if __name__ == "__main__":
    app()
