"""Every pipeline thread's lane is warm before the first request (api/ops/warming.py):
at start-up each one has the warehouse snapshot attached and has run each endpoint's
statement; on a reload each has the new snapshot before the new state serves. (The
latency this buys is measured in bench/warm.py, not timed here.)"""

from __future__ import annotations

from dataclasses import replace

from fastapi.testclient import TestClient

from duckapi.api.app import create_app
from tests.conftest import Built
from tests.oracle import ANIMALS, analyse


def attached(client: TestClient) -> list[set[str]]:
    """The snapshot files each lane (not the body loaders) has attached."""
    engine = client.app.state.service.engine
    paths = []
    for con in list(engine._lanes):
        if con.execute("select current_setting('enable_external_access')").fetchone()[0]:
            continue  # a loader: parses bodies, attaches nothing
        rows = con.execute("select path from duckdb_databases() where path is not null").fetchall()
        paths.append({path for (path,) in rows})
    return paths


def test_lanes_are_warm_at_start_and_after_a_reload(built: Built) -> None:
    settings = replace(built.settings, executor_threads=3)
    with TestClient(create_app(settings, built.manifest)) as client:
        service = client.app.state.service
        first = str(service.state.warehouse.path)
        # before any request: every pipeline thread's lane (and the start-up check's own)
        assert attached(client).count({first}) >= 3
        assert service.reload()
        second = str(service.state.warehouse.path)
        assert second != first and attached(client).count({second}) >= 3
        response = client.post("/analyse_data/", json=ANIMALS)
        assert response.status_code == 200 and response.json() == analyse(ANIMALS)
