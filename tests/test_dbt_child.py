"""dbt in a warm child process (duckapi/dbt/child.py): reused, never holding the warehouse."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from duckapi.dbt import child as dbt_child, project
from duckapi.errors import ProjectError
from tests.conftest import settings_in


def _warm_pid() -> int | None:
    child = dbt_child._idle
    return child.proc.pid if child is not None and child.proc.poll() is None else None


def test_a_warm_child_takes_the_next_command_and_holds_no_database(tmp_path: Path) -> None:
    dbt_child.stop()
    settings = settings_in(tmp_path)
    project.build(settings)
    pid = _warm_pid()
    assert pid is not None, "the child that ran `dbt build` was not kept"
    # It let go of the warehouse: this process can open it for writing while the child lives.
    with duckdb.connect(str(settings.db_path)) as con:
        con.execute("create table written_meanwhile as select 1 as x")
    held = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert not [path for path in held if path.startswith(str(settings.db_path))], held
    # The next command runs in it, against the database of that command (dbt names the
    # catalog after the file): the environment and profile are the caller's of that moment.
    other = tmp_path / "other.duckdb"
    shutil.copy(settings.db_path, other)
    manifest = project.compile_manifest(settings, db_path=other)
    assert _warm_pid() == pid
    analysis = manifest["nodes"]["model.duckapi.analysis"]
    assert analysis["database"] == "other" and '"other"' in analysis["compiled_code"]
    # A failing command is reported as it was from a fresh child.
    with pytest.raises(ProjectError, match="dbt compile failed"):
        project.run_dbt(settings, "compile", ["--no-such-option"], quiet=True)
    dbt_child.stop()
    assert _warm_pid() is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
