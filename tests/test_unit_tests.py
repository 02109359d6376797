"""`duckapi test`: a project's dbt unit tests run through duckapi's path, checked against dbt.

tests/projects/unit_tests/ is written as real projects are: a source with no columns in its
YAML (loaded by a seed), staging views without contracts, a package installed under
dbt_packages/ whose macros the models call (a decimal amount, a date_trunc), a custom
generate_schema_name, an incremental model, an ephemeral model in between. Its unit tests use
dict, csv (a fixture file) and sql fixtures, partial columns, a vars override, an env var and a
macro override, `is_incremental` with a given on `this`, a given on the ephemeral model. dbt's own `dbt test --select test_type:unit` is the
oracle for each verdict duckapi gives; `duckapi test` never calls it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from duckapi.dbt import project
from duckapi.settings import BUNDLED_PROJECT
from tests.conftest import settings_in
from tests.spark_support import require_java

PROJECT = Path(__file__).resolve().parent / "projects" / "unit_tests"
WRONG = """
unit_tests:
  - name: revenue_with_a_wrong_expectation
    model: monthly_revenue
    given:
      - input: ref('stg_orders')
        rows:
          - {order_id: 1, ordered_at: 2026-03-03, amount_cents: 1999, status: paid}
    expect:
      rows:
        - {month: 2026-03-01, revenue: 19.98}

  - name: summary_without_the_env_var_override
    model: order_summary
    given:
      - input: ref('paid_orders')
        format: sql
        rows: select 1 as order_id, 1 as customer_id, date '2026-01-02' as ordered_at, 100 as amount_cents
    expect:
      rows:
        - {orders: 1, region: us}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project (plus a unit test whose expectation is wrong) built with unit tests
    excluded, as dbt build would skip what a failing unit test guards."""
    folder = tmp_path_factory.mktemp("unit")
    target = folder / "unit_tests"
    shutil.copytree(PROJECT, target, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    (target / "models" / "marts" / "wrong.yml").write_text(WRONG)
    settings = settings_in(folder, project_dir=target)
    project.run_dbt(settings, "build", ["--exclude-resource-type", "unit_test"])
    return target


def duckapi_test(project_dir: Path, *args: str) -> tuple[int, list[str], Path]:
    junit = project_dir.parent / "junit.xml"
    env = {**os.environ, "DUCKAPI_TARGET_PATH": str(project_dir.parent / "duckapi-target")}
    done = subprocess.run(
        [sys.executable, "-m", "duckapi.cli", "test", "--project", str(project_dir), "--db",
         str(project_dir.parent / "dev.duckdb"), "--junit-xml", str(junit), *args],
        env=env, capture_output=True, text=True, timeout=600,
    )
    return done.returncode, done.stdout.splitlines(), junit


def verdicts(junit: Path) -> dict[str, str]:
    """name -> passed / failed / error / skipped, from the JUnit XML report."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        status = next((child.tag for child in case), "passed")
        found[case.get("name")] = {"failure": "failed"}.get(status, status)
    return found


def dbt_verdicts(project_dir: Path) -> dict[str, str]:
    """dbt's own verdict for each unit test (`dbt test --select test_type:unit`)."""
    settings = settings_in(project_dir.parent, project_dir=project_dir)
    try:
        project.run_dbt(settings, "test", ["--select", "test_type:unit"])
    except project.ProjectError:
        pass  # a failing unit test fails the command; its verdict is in run_results.json
    results = json.loads((settings.resolved_target_path / "run_results.json").read_text())["results"]
    return {r["unique_id"].rsplit(".", 1)[-1]: {"pass": "passed", "fail": "failed"}.get(r["status"], r["status"])
            for r in results}


def test_unit_tests_pass_and_fail_as_dbt_says(built: Path) -> None:
    code, lines, junit = duckapi_test(built)
    assert code == 1, lines  # the wrong expectations fail
    assert lines[-1] == "7 passed, 2 failed"
    ours = verdicts(junit)
    assert ours == {
        "customer_totals_from_a_csv_fixture": "passed", "vip_threshold_from_vars": "passed",
        "revenue_by_month_from_paid_orders": "passed", "revenue_with_a_wrong_expectation": "failed",
        "order_log_incremental": "passed", "staging_from_sql": "passed",
        "summary_over_an_ephemeral_model": "passed", "summary_with_env_var_and_macro_overrides": "passed",
        "summary_without_the_env_var_override": "failed",
    }
    assert dbt_verdicts(built) == ours
    # The failures show the differing rows as dbt does.
    text = "\n".join(lines)
    assert "- | 1 | us" in text and "+ | 1 | eu" in text
    failure = text[text.index("FAIL duckdb monthly_revenue.revenue_with_a_wrong_expectation"):]
    assert "- | 2026-03-01 | 19.98" in failure and "+ | 2026-03-01 | 19.99" in failure


def test_select_and_exit_code(built: Path) -> None:
    code, lines, _ = duckapi_test(built, "--select", "customer_totals", "--select", "staging_from_sql")
    assert code == 0, lines
    assert lines[-1] == "3 passed, 0 failed"
    assert sum(line.startswith("PASS duckdb ") for line in lines) == 3


def test_the_same_unit_tests_on_spark(built: Path) -> None:
    require_java()
    # Not customer_totals: its vars override is a second Spark compile (~20 s) for what the
    # DuckDB run shows; the overrides dbt renders (macros, env vars, this, ephemeral) run here.
    code, lines, junit = duckapi_test(built, "--engine", "spark", "--select", "monthly_revenue", "--select",
                                      "order_summary", "--select", "order_log")
    assert [line for line in lines if line.startswith(("PASS", "FAIL", "ERROR", "SKIP"))] == [
        line for line in lines if line.startswith(("PASS spark", "FAIL spark", "ERROR spark", "SKIP spark"))
    ]
    assert verdicts(junit) == {
        "revenue_by_month_from_paid_orders": "passed", "revenue_with_a_wrong_expectation": "failed",
        "order_log_incremental": "passed", "summary_over_an_ephemeral_model": "passed",
        "summary_with_env_var_and_macro_overrides": "passed", "summary_without_the_env_var_override": "failed",
    }
    assert code == 1 and lines[-1] == "4 passed, 2 failed"


#: Each example and its number of unit tests (the bundled project's and the shop's run on
#: Spark too, in test_equality; web_events has no Spark target).
EXAMPLES = {
    "bundled": (BUNDLED_PROJECT, 2),
    "shop": (BUNDLED_PROJECT.parent / "examples" / "shop", 1),
    "web_events": (BUNDLED_PROJECT.parent / "examples" / "web_events", 1),
}


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_the_examples_unit_tests_pass_as_under_dbt(example: str, tmp_path: Path) -> None:
    """The bundled project and the examples carry unit tests; `dbt build` runs them (and
    fails on any that fails), and `duckapi test` gives each the same verdict."""
    source, count = EXAMPLES[example]
    folder = tmp_path / example
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb", "tests"))
    settings = settings_in(tmp_path, project_dir=folder)
    manifest = project.build(settings)  # dbt's own verdict: every unit test passed
    assert len(manifest["unit_tests"]) == count
    code, lines, junit = duckapi_test(folder)
    assert code == 0 and lines[-1] == f"{count} passed, 0 failed", lines
    assert set(verdicts(junit)) == {test["name"] for test in manifest["unit_tests"].values()}


def test_recorded_requests_are_run_again(tmp_path: Path) -> None:
    """`duckapi record` pins a request's answer in tests/duckapi/NAME.json; `duckapi test`
    runs it again, and fails, showing the changed row, once the model's answer changes."""
    folder = tmp_path / "bundled"
    shutil.copytree(BUNDLED_PROJECT, folder, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    settings = settings_in(tmp_path, project_dir=folder)
    project.build(settings)
    env = {**os.environ, "DUCKAPI_TARGET_PATH": str(tmp_path / "duckapi-target")}
    cli = [sys.executable, "-m", "duckapi.cli"]
    where = ["--project", str(folder), "--db", str(settings.db_path)]
    recorded = subprocess.run(
        [*cli, "record", "analyse_data", str(folder / "seeds" / "example_data.csv"), "--name", "animals",
         "--select", "group_sums", *where], env=env, capture_output=True, text=True, timeout=600,
    )
    assert recorded.returncode == 0, recorded.stderr
    fixture = json.loads((folder / "tests" / "duckapi" / "animals.json").read_text())
    assert fixture["endpoint"] == "/analyse_data/" and fixture["select"] == ["group_sums"]
    assert len(fixture["inputs"]["group_event_values"]) == 9
    assert fixture["expected"] == [{"group_sums": [
        {"group_id": "🐇", "value_sum": 32}, {"group_id": "🐰", "value_sum": 12}, {"group_id": "🦆", "value_sum": 33}]}]

    def duckapi_test() -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, "test", *where], env=env, capture_output=True, text=True, timeout=600)

    passed = duckapi_test()
    assert passed.returncode == 0 and passed.stdout.splitlines()[-1] == "3 passed, 0 failed", passed.stdout
    assert "PASS duckdb fixture.animals" in passed.stdout
    model = folder / "models" / "analyses" / "group_sums.sql"
    model.write_text(model.read_text().replace("as value_sum", "+ 1 as value_sum"))
    failed = duckapi_test()
    assert failed.returncode == 1, failed.stdout
    assert "FAIL duckdb fixture.animals" in failed.stdout and '"value_sum": 33' in failed.stdout
    assert '"value_sum": 34' in failed.stdout  # the recorded row and the row now
