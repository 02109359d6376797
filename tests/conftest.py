"""Shared fixtures: the bundled project built once per session into a temp folder."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from duckapi.dbt import project
from duckapi.api.app import create_app
from duckapi.settings import Settings


#: Two pytest workers share the cores. At the default DUCKAPI_EXECUTOR_NICE the servers under
#: test would let the other worker's dbt runs and servers go first, stretching statements
#: past the deadlines tests give them; the priority itself has its own test (test_limits.py).
TEST_NICE = 0
os.environ.setdefault("DUCKAPI_EXECUTOR_NICE", str(TEST_NICE))


#: The longest test files (each over a minute on one worker), longest first. pytest-xdist's
#: `--dist loadfile --no-loadscope-reorder` hands files to the workers in collection order
#: (without that flag, in order of their number of tests); started last, the cluster file
#: alone kept one worker busy for three minutes after the other had finished.
LONGEST_FIRST = ("test_spark_cluster.py", "test_data_dependent.py", "test_unit_tests.py", "test_docs.py",
                 "test_batch.py", "test_reference_data.py", "test_project_features.py", "test_dbt_semantics.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (a stable sort: every file's tests keep their order)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@dataclass(frozen=True)
class Built:
    settings: Settings
    manifest: dict[str, Any]

    def server_env(self, **extra: str) -> dict[str, str]:
        """DUCKAPI_* for a real server of the bundled project over this warehouse. These
        servers share one target folder (not dbt build's), so after the first start-up
        compile the others reuse its manifest (duckapi/dbt/compiled.py), as a restart does."""
        target = self.settings.db_path.parent / "serve-target"
        return {"DUCKAPI_DB_PATH": str(self.settings.db_path), "DUCKAPI_TARGET_PATH": str(target), **extra}


def settings_in(folder: Path, **overrides: Any) -> Settings:
    """Settings that keep every file dbt writes inside `folder`."""
    overrides.setdefault("executor_nice", TEST_NICE)
    return Settings.from_env(env={}, db_path=folder / "dev.duckdb", target_path=folder / "target", **overrides)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    settings = settings_in(tmp_path_factory.mktemp("bundled"))
    return Built(settings, project.build(settings))


SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"


def copy_shop(folder: Path) -> Path:
    """The shop example in a folder of its own, without its example-answer tests (so a
    test may change its seeds)."""
    target = folder / "shop"
    shutil.copytree(SHOP, target, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb", "tests"))
    return target


@pytest.fixture(scope="session")
def shop() -> Iterator[TestClient]:
    """The shop example (reference data, two inputs) built once and served in-process."""
    from tests.shop_support import shop_build  # imports this module

    built = shop_build()
    with TestClient(create_app(built.settings, built.manifest)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def client(built: Built) -> Iterator[TestClient]:
    with TestClient(create_app(built.settings, built.manifest)) as test_client:
        yield test_client
