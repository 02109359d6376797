"""Answers say where they came from: Duckapi-Project (a digest of the compiled SQL that
answered) and Duckapi-Data-Version (derived from the warehouse's bytes), on answers and
on errors from a pipeline, the same in /models, /healthz, the library's Answer and beside
`duckapi run`'s output; Server-Timing gives decode, queue and statement times."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

import duckapi
from duckapi.api.app import create_app
from tests.conftest import Built
from tests.oracle import ANIMALS

URL = "/analyse_data/"


@pytest.fixture(scope="module")
def client(built: Built) -> Iterator[TestClient]:
    with TestClient(create_app(built.settings, built.manifest)) as test_client:
        yield test_client


def file_version(db: Path) -> str:
    """The data version computed here, independently: the warehouse file's (and WAL's) bytes."""
    digest = hashlib.blake2b(digest_size=8)
    for path in (db, db.with_name(db.name + ".wal")):
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_answers_carry_the_project_digest_and_data_version(client: TestClient, built: Built) -> None:
    response = client.post(URL, json=ANIMALS)
    assert response.status_code == 200
    project, version = response.headers["duckapi-project"], response.headers["duckapi-data-version"]
    assert re.fullmatch(r"[0-9a-f]{16}", project) and version == file_version(built.settings.db_path)
    [listed] = [m for m in client.get("/models").json() if m["path"] == URL]
    assert (listed["project_digest"], listed["data_version"]) == (project, version)
    health = client.get("/healthz").json()
    assert health["project_digests"][URL] == project and health["data_version"] == version
    # A small JSON request may be batched with others (api/batcher.py): its wait is its statement's.
    assert re.fullmatch(r"decode;dur=[0-9.]+(, queue;dur=[0-9.]+)?, statement;dur=[0-9.]+", response.headers["server-timing"])
    arrow = client.post(URL, json=ANIMALS, headers={"accept": "application/vnd.apache.arrow.stream"})
    assert re.fullmatch(r"decode;dur=[0-9.]+, queue;dur=[0-9.]+, statement;dur=[0-9.]+", arrow.headers["server-timing"])
    assert arrow.headers["duckapi-project"] == project


def test_a_variant_has_its_own_digest_and_a_new_app_the_same(client: TestClient, built: Built) -> None:
    plain = client.post(URL, json=ANIMALS).headers["duckapi-project"]
    selected = client.post(URL + "?select=group_sums", json=ANIMALS).headers["duckapi-project"]
    assert selected != plain
    # Another process (a worker, a restart) over the same files: the same values.
    with TestClient(create_app(built.settings, built.manifest)) as other:
        again = other.post(URL, json=ANIMALS)
        assert again.headers["duckapi-project"] == plain
        assert again.headers["duckapi-data-version"] == client.post(URL, json=ANIMALS).headers["duckapi-data-version"]


def test_the_library_and_duckapi_run_say_the_same(client: TestClient, built: Built, tmp_path: Path) -> None:
    headers = client.post(URL, json=ANIMALS).headers
    with duckapi.load(built.settings.project_dir, settings=built.settings) as project:
        answer = project.run(URL, ANIMALS)
        assert (answer.project_digest, answer.data_version) == (headers["duckapi-project"], headers["duckapi-data-version"])
    source, output = tmp_path / "rows.json", tmp_path / "answer.json"
    source.write_text(json.dumps(ANIMALS))
    done = subprocess.run(
        [sys.executable, "-m", "duckapi.cli", "run", "--project", str(built.settings.project_dir), "--db",
         str(built.settings.db_path), "--endpoint", URL, str(source), "--output", str(output)],
        env={"DUCKAPI_TARGET_PATH": str(tmp_path / "target"), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    sidecar = json.loads(Path(str(output) + ".duckapi.json").read_text())
    assert sidecar["project_digest"] == headers["duckapi-project"]
    assert sidecar["data_version"] == headers["duckapi-data-version"]
    assert output.read_bytes() == client.post(URL, json=ANIMALS).content  # the same answer, reproduced offline
