"""Spark for the tests: one local SparkSession per test process, shared by every module.

Starting a driver JVM costs seconds, so the session starts once, on first use, and
stops when the process exits. Spark needs Java 17+: without `java` the Spark tests
are skipped locally and fail in CI (CI=true), where .ci/run installs a JRE.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from duckapi.batch import build_references
from duckapi.batch.command import Engine, _compile, _spark_settings  # bound now: test_batch swaps command._compile
from duckapi.pipeline import Pipeline, build_pipelines
from duckapi.settings import BUNDLED_PROJECT, Settings


def require_java() -> None:
    if shutil.which("java"):
        return
    message = "Spark tests need Java 17+ (`java` is not on PATH); .ci/run installs a headless JRE"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@lru_cache(maxsize=1)
def shared_engine():  # -> duckapi.engines.spark.SparkEngine
    """The process's one local SparkEngine (two cores, small shuffles for small test data)."""
    require_java()
    from duckapi.engines.spark import SparkEngine, SparkOptions

    engine = SparkEngine(
        SparkOptions(master="local[2]", driver_memory="2g", conf={"spark.sql.shuffle.partitions": "4"})
    )
    engine.session  # start now, so a failure shows up here and not inside a test's timing
    atexit.register(engine.stop)
    return engine


@lru_cache(maxsize=None)
def spark_manifest(project_dir: Path = BUNDLED_PROJECT) -> dict[str, Any]:
    """A project compiled for the spark target (once per process, in a temp folder)."""
    return _compile(spark_settings(project_dir), Engine.spark, None)


def spark_pipelines(project_dir: Path = BUNDLED_PROJECT) -> dict[str, Pipeline]:
    return build_pipelines(spark_manifest(project_dir), project_dir)


@lru_cache(maxsize=None)
def spark_settings(project_dir: Path = BUNDLED_PROJECT) -> Settings:
    """Settings that keep dbt's files for `project_dir` in a temp folder of this process."""
    folder = Path(tempfile.mkdtemp(prefix="duckapi-spark-target-"))
    atexit.register(shutil.rmtree, folder, True)
    return Settings.from_env(env={}, project_dir=project_dir, db_path=folder / "dev.duckdb", target_path=folder)


@lru_cache(maxsize=None)
def spark_pipelines_with_references(project_dir: Path) -> dict[str, Pipeline]:
    """A project compiled for spark, its reference data built into the shared session
    by dbt-spark in this process (as `duckapi run --engine spark` does in local mode)."""
    engine = shared_engine()
    pipelines = spark_pipelines(project_dir)
    references = {r.relation_name: r for p in pipelines.values() for r in p.references}
    build_references(_spark_settings(spark_settings(project_dir), None), list(references.values()))
    assert not engine.missing_references(list(references.values()))
    return pipelines
