"""A compile's manifest is reused while nothing it was compiled from has changed.

The dbt compile is most of a small `duckapi run` (about 10 s of 12 over 9 rows) and of
`duckapi serve`'s start-up, and both are often repeated with the same project. Each
compile's manifest is kept in `<target>/duckapi-compiled/`, named by a digest of
everything the compile read:

- the project's files (names and contents; installed packages too), the profiles
  file dbt reads, and the warehouse file's size and mtime (a `dbt build` changes them);
- the engine, the dbt target, the warehouse's file name and the vars;
- the values of the environment variables the project or its profile names in
  `env_var(...)`, and of every `DBT_*` variable (dbt's own settings);
- the versions of duckapi, dbt-core and the adapters.

Contents, not mtimes: a file's mtime moves in steps of a clock tick (a few ms here),
so an edit right after a compile could keep its mtime and size. A compile whose digest
has a manifest reads it instead (`duckapi run --recompile` compiles anyway; a reload,
SIGHUP or `--reload`, always compiles). A manifest is kept only if the digest is the
same after its compile (nothing changed while dbt read the files), and at most KEEP
are kept, the most recently made or reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from duckapi.dbt import profiles
from duckapi.settings import Settings

#: Manifests kept: one per engine, target and vars in recent use.
KEEP = 8
FOLDER = "duckapi-compiled"
_IGNORED = {"target", "logs", "dbt_packages", "__pycache__"}
_ENV_VAR = re.compile(r"""env_var\(\s*['"]([^'"]+)['"]""")
_TEXT = (".sql", ".yml", ".yaml", ".py", ".md", ".jinja")


def project_fingerprint(project_dir: Path, warehouse: Path | None = None) -> str:
    """A digest of the project's source files (names, sizes, mtimes), not its outputs,
    and of the warehouse file's size and mtime (a `dbt build` changes them)."""
    digest = hashlib.sha256()
    stamp = _stamp(warehouse)
    if stamp is not None:
        digest.update(f"warehouse\0{stamp[0]}\0{stamp[1]}\n".encode())
    for path in _sources(project_dir):
        stat = path.stat()
        digest.update(f"{path.relative_to(project_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _stamp(warehouse: Path | None) -> tuple[int, int] | None:
    """The warehouse file's size and mtime, None if there is none (yet)."""
    if warehouse is None or not warehouse.exists():
        return None
    stat = warehouse.stat()
    return stat.st_size, stat.st_mtime_ns


def _sources(folder: Path) -> list[Path]:
    """The files under `folder`, in order; outputs, packages, hidden files and DuckDB
    databases (the warehouse and its WAL, stamped on their own) left out."""
    return [
        path for path in sorted(folder.rglob("*"))
        if not any(part in _IGNORED or part.startswith(".") for part in path.relative_to(folder).parts)
        and path.is_file() and not path.name.endswith((".duckdb", ".wal"))
    ]


def _named_env_vars(paths: list[Path]) -> set[str]:
    """The names passed to env_var() in these files: rendering reads their values."""
    names: set[str] = set()
    for path in paths:
        if path.suffix in _TEXT:
            try:
                names.update(_ENV_VAR.findall(path.read_text(errors="replace")))
            except OSError:
                continue
    return names


def _digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "-"


def compile_key(settings: Settings, engine: str, dbt_vars: dict[str, Any] | None) -> str:
    """A digest of everything a compile of the project for `engine` reads (the module's list)."""
    project_dir = settings.project_dir
    packages = project_dir / "dbt_packages"
    files = _sources(project_dir) + (_sources(packages) if packages.is_dir() else [])
    profile = profiles.profiles_file(project_dir)
    if profile is not None and profile not in files:  # the project's own is among its files
        files.append(profile)
    parts = {
        "files": {str(path): _digest(path) for path in files},
        "warehouse": _stamp(settings.db_path if engine == "duckdb" else None),
        "db": settings.db_path.name,
        "engine": engine,
        "target": settings.target,
        "vars": dbt_vars or None,
        "env": {name: os.environ.get(name) for name in sorted(_named_env_vars(files) | {n for n in os.environ if n.startswith("DBT_")})},
        "versions": [_version(d) for d in ("duckapi", "dbt-core", "dbt-duckdb", "dbt-spark")],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def reuse_or_compile(
    settings: Settings, engine: str, dbt_vars: dict[str, Any] | None, compile: Callable[[], dict[str, Any]],
    recompile: bool = False,
) -> tuple[dict[str, Any], Path | None]:
    """The manifest a compile with this key stored, else `compile()`'s; and the stored
    file if one was reused. A compiled manifest is stored if the key is the same after
    the compile; one that cannot be read is compiled again, one that cannot be stored
    (a read-only project) is not kept."""
    key = compile_key(settings, engine, dbt_vars)
    path = settings.resolved_target_path / FOLDER / f"{key}.json"
    if not recompile:
        try:
            manifest = json.loads(path.read_bytes())
            os.utime(path)  # newest first when old ones are dropped: reused counts as new
            return manifest, path
        except (OSError, ValueError):
            pass
    manifest = compile()
    if compile_key(settings, engine, dbt_vars) != key:
        return manifest, None  # a file changed while dbt read it: this manifest is no key's
    try:
        _write(path, json.dumps(manifest).encode())
        kept = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
    return manifest, None


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: a concurrent reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(data)
    os.replace(partial, path)


def publish(settings: Settings, stored: Path) -> None:
    """Make a stored manifest the project's target/manifest.json, which `duckapi serve`'s
    workers and `duckapi.load` read."""
    _write(settings.manifest_path, stored.read_bytes())
