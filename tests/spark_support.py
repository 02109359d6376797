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

import pytest

from duckapi.batch.command import Engine, _compile  # bound now: test_batch swaps command._compile
from duckapi.pipeline import Pipeline
from duckapi.settings import Settings


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


@lru_cache(maxsize=1)
def spark_pipelines() -> dict[str, Pipeline]:
    """The bundled project compiled for the spark target (once per process, in a temp folder)."""
    folder = Path(tempfile.mkdtemp(prefix="duckapi-spark-target-"))
    atexit.register(shutil.rmtree, folder, True)
    settings = Settings.from_env(env={}, db_path=folder / "dev.duckdb", target_path=folder)
    return _compile(settings, Engine.spark, None)  # type: ignore[return-value]
