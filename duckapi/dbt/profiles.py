"""The project's dbt profile, read and re-pointed at the DuckDB file duckapi chooses.

A real project's profiles.yml names its own DuckDB file (`path: jaffle_shop.duckdb`).
duckapi must compile against a private copy of that file (so the server never locks
the warehouse `dbt build` writes), so it hands dbt a copy of the profile in which
every duckdb output's `path` is replaced; everything else stays as the user wrote it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

_ENV_VAR = re.compile(r"""\{\{\s*env_var\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)\s*\}\}""")


def profiles_file(project_dir: Path) -> Path | None:
    """Where dbt would find profiles.yml for this project: beside it, DBT_PROFILES_DIR, ~/.dbt."""
    candidates = [project_dir / "profiles.yml"]
    if os.environ.get("DBT_PROFILES_DIR"):
        candidates.append(Path(os.environ["DBT_PROFILES_DIR"]) / "profiles.yml")
    candidates.append(Path.home() / ".dbt" / "profiles.yml")
    return next((c for c in candidates if c.is_file()), None)


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text()) or {}
    return loaded if isinstance(loaded, dict) else {}


def profile_name(project_dir: Path) -> str | None:
    config = _load(project_dir / "dbt_project.yml") if (project_dir / "dbt_project.yml").is_file() else {}
    return config.get("profile")


def default_db_path(project_dir: Path, target: str | None = None) -> Path | None:
    """The DuckDB file the profile's target writes, when it can be read without dbt.

    Understands a literal path and `{{ env_var('NAME', 'default') }}`; a relative path is
    relative to the project folder (duckapi runs dbt from there). None when unknown.
    """
    path = profiles_file(project_dir)
    name = profile_name(project_dir)
    if path is None or name is None:
        return None
    profile = _load(path).get(name) or {}
    outputs = profile.get("outputs") or {}
    chosen = outputs.get(target or profile.get("target") or "dev") or {}
    raw = chosen.get("path") if chosen.get("type") == "duckdb" else None
    if not isinstance(raw, str):
        return None
    text = _ENV_VAR.sub(lambda m: os.environ.get(m[1], m[2] or ""), raw).strip()
    if not text or "{{" in text or text == ":memory:" or text.startswith(("md:", "motherduck:")):
        return None
    return (project_dir / text).resolve()


def write_profiles(project_dir: Path, db_path: str, folder: Path) -> Path:
    """A profiles folder whose duckdb outputs all write `db_path`; the project's own otherwise.

    Returns the folder to pass as --profiles-dir.
    """
    source = profiles_file(project_dir)
    name = profile_name(project_dir)
    if source is None or name is None:
        return project_dir
    profiles = _load(source)
    profile = profiles.get(name)
    if not isinstance(profile, dict):
        return source.parent
    for output in (profile.get("outputs") or {}).values():
        if isinstance(output, dict) and output.get("type") == "duckdb":
            output["path"] = db_path
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profiles.yml").write_text(yaml.safe_dump({name: profile, **{k: v for k, v in profiles.items() if k == "config"}}))
    return folder


def spark_conf(project_dir: Path, target: str) -> dict[str, str]:
    """A Spark target's `server_side_parameters`, rendered as dbt renders a profile
    (`env_var`, `modules.datetime`): the one source of Spark settings that dbt-spark and
    duckapi's own session share (a `cluster` target's persistent catalog, its master).
    A relative `spark.sql.warehouse.dir` is relative to the project folder, where dbt runs.
    Empty when the profile has no such target."""
    import datetime
    from types import SimpleNamespace

    import jinja2

    path = profiles_file(project_dir)
    name = profile_name(project_dir)
    if path is None or name is None:
        return {}
    output = ((_load(path).get(name) or {}).get("outputs") or {}).get(target) or {}
    if output.get("type") != "spark":
        return {}

    def env_var(var: str, default: str | None = None) -> str:
        if var in os.environ:
            return os.environ[var]
        if default is None:
            raise ValueError(f"profile {name}, target {target}: env var {var} is required but not set")
        return default

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    context = {"env_var": env_var, "modules": SimpleNamespace(datetime=datetime)}
    conf = {str(k): environment.from_string(str(v)).render(**context)
            for k, v in (output.get("server_side_parameters") or {}).items()}
    warehouse = conf.get("spark.sql.warehouse.dir")
    if warehouse and "://" not in warehouse and not Path(warehouse).is_absolute():
        conf["spark.sql.warehouse.dir"] = str((project_dir / warehouse).resolve())
    return conf
