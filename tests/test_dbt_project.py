"""`dbt build` of the bundled project: models, seed and dbt tests, on DuckDB."""

from __future__ import annotations

import json

import duckdb

from tests.conftest import Built
from tests.oracle import ANIMALS, analyse


def test_dbt_build_runs_every_model_and_test(built: Built) -> None:
    results = json.loads((built.settings.resolved_target_path / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert statuses, "dbt build ran nothing"
    assert all(s in ("success", "pass") for s in statuses.values()), statuses
    names = {uid.split(".")[-1] if uid.startswith(("model.", "seed.")) else uid for uid in statuses}
    for model in ["group_event_values", "analysis", "group_sums", "hist_groups", "example_data"]:
        assert model in names
    assert any("analysis_matches_expected" in uid for uid in statuses), "the expected-result data test did not run"
    assert sum(uid.startswith("test.") for uid in statuses) >= 10


def test_built_database_answers_the_seed_like_the_oracle(built: Built) -> None:
    with duckdb.connect(str(built.settings.db_path), read_only=True) as con:
        (answer,) = con.execute("select to_json(a)::varchar from analysis a").fetchall()[0]
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables").fetchall())
    assert json.loads(answer) == analyse(ANIMALS)[0]
    assert kinds["analysis"] == "VIEW" and kinds["group_sums"] == "VIEW"
    assert kinds["example_data"] == "BASE TABLE"
