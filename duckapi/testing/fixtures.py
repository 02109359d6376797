"""Endpoint fixtures: recorded requests and the answers they must keep getting.

`duckapi record ENDPOINT INPUT... --name NAME` runs a request over the input files (any
format `duckapi run` takes) and writes `tests/duckapi/NAME.json` in the project: the endpoint,
its rows per input (as JSON rows), the parts selected, the vars, and the answer. `duckapi
test` runs every such file again and compares the answer, row for row, in order (duckapi's
answers are ordered). A team pins today's answers before it changes a model.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa

from duckapi.library.examples import RECORDED as FOLDER, json_value


@dataclass(frozen=True)
class EndpointFixture:
    name: str
    path: Path
    endpoint: str
    inputs: Mapping[str, list[dict[str, Any]]]
    select: tuple[str, ...]
    vars: Mapping[str, Any]
    expected: list[Any]


def fixtures(project_dir: Path, select: Sequence[str] = ()) -> list[EndpointFixture]:
    """The project's endpoint fixtures (those named in `select`, by name or endpoint, if any)."""
    found = []
    for path in sorted((project_dir / FOLDER).glob("*.json")):
        raw = json.loads(path.read_text())
        fixture = EndpointFixture(
            name=path.stem, path=path, endpoint=raw["endpoint"], inputs=raw["inputs"],
            select=tuple(raw.get("select") or ()), vars=raw.get("vars") or {}, expected=raw["expected"],
        )
        if not select or fixture.name in select or fixture.endpoint.strip("/") in {s.strip("/") for s in select}:
            found.append(fixture)
    return found


def rows_of(table: pa.Table) -> list[dict[str, Any]]:
    """An input's rows as JSON rows (dates and times as ISO text, as the API takes them)."""
    return json.loads(json.dumps(table.to_pylist(), default=json_value))


def record(project: Any, endpoint: str, files: Mapping[str, list[str]], name: str, select: Sequence[str] = (),
           dbt_vars: Mapping[str, Any] | None = None) -> Path:
    """Run the request (the files of each input) and write its fixture; returns its path."""
    from duckapi.rows.columns import as_arrow

    call = project.call(endpoint, list(select) or None, dict(dbt_vars or {}) or None)
    names = [item.name for item in call.pipeline.inputs]
    rows = call.rows(files if len(names) > 1 else next(iter(files.values())))
    answer = json.loads(call.json(rows))
    fixture = {
        "endpoint": call.path,
        "inputs": {item: rows_of(as_arrow(table)) for item, table in zip(names, rows)},
        "select": list(select), "vars": dict(dbt_vars or {}), "expected": answer,
    }
    path = project.settings.project_dir / FOLDER / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    return path


def check(project: Any, fixture: EndpointFixture) -> tuple[str, str, float]:
    """(status, detail, seconds) of one fixture run again through the Python API."""
    started = time.perf_counter()
    try:
        rows: Any = dict(fixture.inputs)
        if len(rows) == 1:
            rows = next(iter(rows.values()))
        answer = project.run(fixture.endpoint, rows, select=list(fixture.select) or None, vars=dict(fixture.vars) or None)
        got = json.loads(answer.json)
    except Exception as exc:  # the request itself failed: the fixture's error
        return "error", f"{type(exc).__name__}: {exc}", time.perf_counter() - started
    seconds = time.perf_counter() - started
    if got == fixture.expected:
        return "passed", "", seconds
    lines = ["the answer differs from the recorded one (- recorded, + now):"]
    for i in range(max(len(got), len(fixture.expected))):
        was = fixture.expected[i] if i < len(fixture.expected) else None
        now = got[i] if i < len(got) else None
        if was != now:
            lines += [f"- row {i}: {json.dumps(was, ensure_ascii=False)}", f"+ row {i}: {json.dumps(now, ensure_ascii=False)}"]
    return "failed", "\n".join(lines), seconds
