"""A compile is reused while the project, profile, warehouse, vars and env_var() values
are unchanged (duckapi/dbt/compiled.py), and made again when any of them changes: each
`duckapi run`'s answer is compared with what the project now says, and `duckapi serve`'s
start-up compile finds its manifest where its workers read it.

Runs the real command with the real dbt compile (tests/test_batch.py swaps the compile
for a module-wide cache); dbt invocations are counted, not replaced.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from duckapi.dbt import project
from duckapi.dbt import compiled
from duckapi.serving.service import compile_project
from duckapi.settings import BUNDLED_PROJECT, Settings
from tests.oracle import ANIMALS, analyse
from tests.test_batch import APP
from tests.test_equality import write_json_array

GROUP_SUMS = "models/analyses/group_sums.sql"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(BUNDLED_PROJECT, folder, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb*"))
    return folder


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The dbt commands run, in order (each still runs for real)."""
    seen: list[str] = []
    real = project.run_dbt

    def counting(settings: Any, command: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(command)
        return real(settings, command, *args, **kwargs)

    monkeypatch.setattr(project, "run_dbt", counting)
    return seen


def run(folder: Path, source: Path, out: Path, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        APP, ["run", str(source), "-o", str(out), "--project", str(folder), "--db", str(folder / "dev.duckdb"), *extra],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    [answer] = json.loads(out.read_bytes())
    return answer


def sums(answer: dict[str, Any]) -> dict[str, int]:
    return {s["group_id"]: int(s["value_sum"]) for s in answer["group_sums"]}


def test_a_run_reuses_the_last_compile_until_the_project_changes(
    copy: Path, compiles: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_json_array(ANIMALS, tmp_path / "in.json")
    out = tmp_path / "answer.json"
    expected = analyse(ANIMALS)[0]

    assert run(copy, source, out) == expected and compiles == ["compile"]
    assert run(copy, source, out) == expected and compiles == ["compile"]  # reused: dbt not run
    assert len(list((copy / "target" / compiled.FOLDER).glob("*.json"))) == 1

    # An edited model, reading an environment variable: compiled again, the edited answer.
    model = copy / GROUP_SUMS
    model.write_text(model.read_text().replace("event_value') }}", "event_value') }} * {{ env_var('DUCKAPI_TEST_FACTOR', '1') }}"))
    monkeypatch.setenv("DUCKAPI_TEST_FACTOR", "3")
    tripled = run(copy, source, out)
    assert compiles == ["compile"] * 2
    assert sums(tripled) == {group: 3 * value for group, value in sums(expected).items()}
    assert run(copy, source, out) == tripled and compiles == ["compile"] * 2

    # `duckapi serve`'s start-up compile finds it too, and puts it where the workers read it.
    settings = Settings.from_env(env={}, project_dir=copy, db_path=copy / "dev.duckdb")
    settings.manifest_path.unlink()
    served = compile_project(settings)
    assert compiles == ["compile"] * 2 and json.loads(settings.manifest_path.read_bytes()) == served

    # --recompile always compiles.
    assert run(copy, source, out, "--recompile") == tripled and compiles == ["compile"] * 3


def test_the_key_moves_with_what_the_compile_reads(copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without dbt: every input of a compile moves the key, and nothing else does."""
    settings = Settings.from_env(env={}, project_dir=copy, db_path=copy / "dev.duckdb")
    model, profile = copy / GROUP_SUMS, copy / "profiles.yml"
    model.write_text(model.read_text() + "\n-- {{ env_var('DUCKAPI_TEST_NAMED', 'x') }}\n")
    seen = {compiled.compile_key(settings, "duckdb", None)}

    def moved() -> bool:
        key = compiled.compile_key(settings, "duckdb", None)
        new = key not in seen
        seen.add(key)
        return new

    monkeypatch.setenv("DUCKAPI_TEST_UNNAMED", "1")
    (copy / "target").mkdir(exist_ok=True)
    (copy / "target" / "run_results.json").write_text("{}")
    os.utime(model)  # a new mtime, the same contents
    assert not moved()
    model.write_text(model.read_text().replace("value_sum", "value_total"))
    assert moved()
    monkeypatch.setenv("DUCKAPI_TEST_NAMED", "y")
    assert moved()
    monkeypatch.setenv("DBT_PARTIAL_PARSE", "false")
    assert moved()
    profile.write_text(profile.read_text() + "\n# edited\n")
    assert moved()
    (copy / "dev.duckdb").write_bytes(b"")  # a warehouse appears (dbt build)
    assert moved()
    assert compiled.compile_key(settings, "duckdb", {"scale": 2}) not in seen
    assert compiled.compile_key(settings, "spark", None) not in seen
    assert compiled.compile_key(replace(settings, target="other"), "duckdb", None) not in seen


def test_a_file_changed_during_the_compile_keeps_no_manifest(copy: Path) -> None:
    settings = Settings.from_env(env={}, project_dir=copy, db_path=copy / "dev.duckdb")
    model = copy / GROUP_SUMS

    def compile() -> dict[str, Any]:
        model.write_text(model.read_text() + "\n-- edited while dbt read the files\n")
        return {"nodes": {}}

    assert compiled.reuse_or_compile(settings, "duckdb", None, compile) == ({"nodes": {}}, None)
    assert not (copy / "target" / compiled.FOLDER).exists()
    manifest, reused = compiled.reuse_or_compile(settings, "duckdb", None, lambda: {"nodes": {"n": 1}})
    assert reused is None and compiled.reuse_or_compile(settings, "duckdb", None, compile)[0] == manifest


def test_at_most_keep_manifests_the_most_recently_made_or_reused(copy: Path) -> None:
    settings = Settings.from_env(env={}, project_dir=copy, db_path=copy / "dev.duckdb")
    folder = copy / "target" / compiled.FOLDER

    def never() -> dict[str, Any]:
        raise AssertionError("compiled, but a stored manifest was expected")

    for i in range(compiled.KEEP):
        compiled.reuse_or_compile(settings, "duckdb", {"i": i}, lambda: {"i": i})
    first = folder / f"{compiled.compile_key(settings, 'duckdb', {'i': 0})}.json"
    others = sorted(set(folder.glob("*.json")) - {first})
    for age, path in enumerate([first, *others]):
        os.utime(path, (1_000_000 + age, 1_000_000 + age))  # all made long ago, the first the longest
    assert compiled.reuse_or_compile(settings, "duckdb", {"i": 0}, never) == ({"i": 0}, first)
    compiled.reuse_or_compile(settings, "duckdb", {"i": "new"}, lambda: {"i": "new"})
    assert len(list(folder.glob("*.json"))) == compiled.KEEP
    assert compiled.reuse_or_compile(settings, "duckdb", {"i": 0}, never)[0] == {"i": 0}  # reused, so kept
    assert compiled.reuse_or_compile(settings, "duckdb", {"i": "new"}, never)[0] == {"i": "new"}
