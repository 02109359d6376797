"""The dbt side: build and compile a project with dbt's Python API, read its manifest.

This module and child.py (which runs dbtRunner) are the only ones that import dbt.
dbt runs at build time or once at start-up,
never per request. Each invocation runs dbtRunner in a child process (child.py,
kept warm between commands only once it has let go of every database file): dbt's
adapter state is process-global, and dbt-duckdb keeps the database file open (and
locked) while it holds the connection; the server must hold neither.
The one exception is `run_dbt_in_process`, for dbt-spark's `session` method, which must
run in the process that holds the SparkSession (`duckapi run --engine spark`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator

from duckapi.dbt import profiles
from duckapi.errors import ProjectError
from duckapi.settings import Settings


__all__ = ["vars_argument", "ProjectError", "build", "compile_manifest", "compile_unit_tests", "declared_vars", "load_manifest", "render", "run_dbt"]

#: Beside manifest.json: the queries each model's rendering ran (dbt's SQLQuery events
#: while a node was compiling), by unique_id, and the invocation they belong to.
QUERIES_FILE = "duckapi_queries.json"
#: The key `load_manifest` puts them under in the manifest it returns.
QUERIES_KEY = "duckapi_queries"


def vars_argument(dbt_vars: dict[str, Any]) -> str:
    """Vars as dbt's `--vars` takes them: JSON, which dbt reads as YAML. Characters beyond
    the BMP stay themselves (YAML has no surrogate pairs, so `\ud83e\udd86` would fail);
    those YAML does not allow raw (DEL, C1 controls, surrogates, non-characters) are escaped."""
    return _NOT_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(dbt_vars, ensure_ascii=False))


_NOT_YAML = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def _dbt_args(settings: Settings, command: str, extra: list[str], profiles_dir: Path) -> list[str]:
    target_path = settings.resolved_target_path
    args = [
        command,
        "--project-dir", str(settings.project_dir),
        "--profiles-dir", str(profiles_dir),
        "--target-path", str(target_path),
        "--log-path", str(target_path / "logs"),
    ]
    if settings.target:
        args += ["--target", settings.target]
    return args + extra


@contextlib.contextmanager
def _prepared(
    settings: Settings, command: str, extra: list[str] | None, quiet: bool, db_path: str | None
) -> Iterator[tuple[list[str], dict[str, str]]]:
    """dbt's arguments and environment for one command, with a re-pointed profile meanwhile."""
    if db_path is None:
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    database = db_path or str(settings.db_path)
    env = {
        "DUCKAPI_DB_PATH": database,
        "DUCKAPI_QUERY_LOG": str(settings.resolved_target_path / QUERIES_FILE),
        # No usage reporting (there is no network to send it to) and no .user.yml.
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }
    with tempfile.TemporaryDirectory(prefix="duckapi-profiles-") as scratch:
        profiles_dir = profiles.write_profiles(settings.project_dir, database, Path(scratch))
        args = _dbt_args(settings, command, list(extra or []), profiles_dir)
        if quiet:
            args.insert(1, "--quiet")
        yield args, env


def run_dbt(
    settings: Settings, command: str, extra: list[str] | None = None, quiet: bool = False, db_path: str | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run one dbt command; raise ProjectError naming the failing files.

    dbt's duckdb outputs write `db_path` (default: the warehouse, settings.db_path),
    whatever path the project's profiles.yml names: dbt gets a re-pointed copy of it.
    """
    from duckapi.dbt import child as dbt_child  # not at import: `python -m duckapi.dbt.child` must find it unloaded

    with _prepared(settings, command, extra, quiet, db_path) as (args, prepared):
        error = dbt_child.run(args, str(settings.project_dir), {**prepared, **(env or {})})
    _check(settings, command, error)


def run_dbt_in_process(settings: Settings, command: str, extra: list[str] | None = None, quiet: bool = False) -> None:
    """Run one dbt command in this process, not a child; raise ProjectError as run_dbt does.

    Only for dbt-spark's `session` method, which runs its SQL in this process's
    SparkSession (SparkSession.builder.getOrCreate()): `duckapi run --engine spark`
    builds the reference data into the session it then runs the pipeline in. The
    environment is restored afterwards; dbt's adapter state stays, which is harmless
    for the Spark adapter (it keeps no file open).
    """
    from duckapi.dbt import child as dbt_child

    with _prepared(settings, command, extra, quiet, None) as (args, env):
        saved = {name: os.environ.get(name) for name in env}
        try:
            error = dbt_child.invoke(args, str(settings.project_dir), env)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    _check(settings, command, error)


def _check(settings: Settings, command: str, error: str | None) -> None:
    if error is not None:
        raise ProjectError(f"dbt {command} failed for {settings.project_dir}: {error}")


def build(settings: Settings) -> dict[str, Any]:
    """`dbt build`: seeds, models and tests into the DuckDB file; returns the manifest."""
    run_dbt(settings, "build")
    return load_manifest(settings)


def compile_manifest(
    settings: Settings, dbt_vars: dict[str, Any] | None = None, db_path: Path | None = None
) -> dict[str, Any]:
    """`dbt compile`: every model's SQL rendered, written to <target>/manifest.json.

    Compiles against `db_path`, a private copy of the warehouse (warehouse.Snapshots),
    so relation names are the ones `dbt build` uses and macros that look at the
    warehouse (columns of a seed, ...) see what it holds, while the server never opens
    (or locks) the dbt-built file. With none, against an empty file of the warehouse's
    name in a scratch folder. `--no-populate-cache`: compiling needs no catalog.
    `--full-refresh`: an incremental model on a pipeline is computed from the request's
    rows alone, so it must compile as on a first build (is_incremental() false).
    """
    extra = ["--no-populate-cache", "--full-refresh"] + (["--vars", vars_argument(dbt_vars)] if dbt_vars else [])
    if db_path is not None:
        run_dbt(settings, "compile", extra, quiet=True, db_path=str(db_path))
        return load_manifest(settings)
    with tempfile.TemporaryDirectory(prefix="duckapi-empty-") as scratch:
        run_dbt(settings, "compile", extra, quiet=True, db_path=str(Path(scratch) / settings.db_path.name))
    return load_manifest(settings)


def compile_unit_tests(
    settings: Settings, unit_tests: dict[str, str], db_path: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Unit tests (unique_id -> tested model's name) rendered as dbt's unit-test run renders
    them (`_unit_test_renderings`), by `dbt compile --select <their models>` into a scratch
    target folder (the project's manifest stays the full one). {unique_id: {"sql": the
    tested model's SQL, "given": the relation standing for each given, in order} or
    {"error": why dbt could not render it}}."""
    from dataclasses import replace

    from duckapi.dbt import child as dbt_child

    if not unit_tests:
        return {}
    with tempfile.TemporaryDirectory(prefix="duckapi-unit-") as scratch:
        out = Path(scratch) / "unit_tests.json"
        env = {dbt_child.UNIT_TESTS_ENV: json.dumps(sorted(unit_tests)), dbt_child.UNIT_TESTS_OUT_ENV: str(out)}
        # --log-level none: dbt would print the SQL of a lone selected model to stdout.
        extra = ["--log-level", "none", "--no-populate-cache", "--full-refresh", "--select", *sorted(set(unit_tests.values()))]
        run_dbt(replace(settings, target_path=Path(scratch) / "target"), "compile", extra, quiet=True,
                db_path=str(db_path or Path(scratch) / settings.db_path.name), env=env)
        return json.loads(out.read_text())


def declared_vars(settings: Settings) -> dict[str, Any]:
    """The vars dbt_project.yml declares with defaults (global and this project's)."""
    import yaml

    config = yaml.safe_load((settings.project_dir / "dbt_project.yml").read_text()) or {}
    raw = config.get("vars") or {}
    name = config.get("name")
    scoped = raw.get(name) if isinstance(raw.get(name), dict) else {}
    declared = {k: v for k, v in raw.items() if not isinstance(v, dict) or k != name}
    declared.update(scoped)
    return declared


def load_manifest(settings: Settings) -> dict[str, Any]:
    """The manifest dbt wrote, with the queries each model's rendering ran (QUERIES_KEY)
    when duckapi ran that dbt command; without them (plain `dbt compile`), none."""
    path = settings.manifest_path
    try:
        manifest = json.loads(Path(path).read_bytes())
    except FileNotFoundError as exc:
        raise ProjectError(f"no dbt manifest at {path}: run `{settings.build_command()}` first") from exc
    if QUERIES_KEY not in manifest:
        recorded = _recorded_queries(settings.resolved_target_path)
        invocation = manifest.get("metadata", {}).get("invocation_id")
        if recorded is not None and recorded.get("invocation_id") == invocation:
            manifest[QUERIES_KEY] = recorded["queries"]
    return manifest


def _recorded_queries(target: Path) -> dict[str, Any] | None:
    try:
        return json.loads((target / QUERIES_FILE).read_bytes())
    except (OSError, ValueError):
        return None


def render(
    settings: Settings, db_path: Path, models: list[str], dbt_vars: dict[str, Any] | None = None,
) -> tuple[dict[str, str], dict[str, list[str]], str | None]:
    """`dbt run --select models` against `db_path` (a scratch copy of the warehouse whose
    inputs hold a request's rows): each model's SQL as dbt rendered it over that data (those
    it got to), the queries each rendering ran by unique_id, and what failed, if anything.
    `--full-refresh` as in `compile_manifest`. Into a scratch target folder
    (settings.target_path)."""
    extra = ["--full-refresh", "--select", *models] + (["--vars", vars_argument(dbt_vars)] if dbt_vars else [])
    error = None
    try:
        run_dbt(settings, "run", extra, quiet=True, db_path=str(db_path))
    except ProjectError as exc:
        error = str(exc).replace(str(settings.project_dir), settings.project_dir.name)
    target = settings.resolved_target_path
    try:
        results = json.loads((target / "run_results.json").read_bytes())["results"]
    except (OSError, ValueError, KeyError):
        results = []
    compiled = {r["unique_id"]: (r.get("compiled_code") or "").strip().rstrip(";") for r in results}
    return compiled, (_recorded_queries(target) or {}).get("queries", {}), error
