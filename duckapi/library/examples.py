"""Example requests for an endpoint, from the project itself: its recorded requests and the
given rows of the unit tests whose givens are exactly the endpoint's inputs.

A recorded request is `tests/duckapi/NAME.json` in the project (written by `duckapi record`,
run again by `duckapi test`): the endpoint, each input's rows, the parts, the vars, the
answer. `GET /models`, the OpenAPI document and the web page offer these as examples, so a
project other than the bundled one does not start empty.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Mapping

from duckapi.pipeline import Pipeline

#: Where a project keeps its recorded requests.
RECORDED = Path("tests") / "duckapi"
_REF = re.compile(r"""^\s*ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*(?:v|version)\s*=\s*[^)]*)?\)\s*$""")
_SOURCE = re.compile(r"""^\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*$""")


def given_input(text: str) -> str | None:
    """A unit test's `given` input (`ref('m')`, `source('s', 't')`) as an endpoint names
    that input (`m`, `s.t`); None for what is neither (`this`, ...)."""
    ref, source = _REF.match(text), _SOURCE.match(text)
    if ref:
        return ref.group(1)
    return f"{source.group(1)}.{source.group(2)}" if source else None


def csv_rows(text: str) -> list[dict[str, str]]:
    """An inline csv fixture (a header line, then rows) as rows."""
    return list(csv.DictReader(io.StringIO(text.strip() + "\n")))


def json_value(value: Any) -> Any:
    """A value JSON has no type for: dates and times as ISO text (as the API takes them)."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def recorded(project_dir: Path) -> list[dict[str, Any]]:
    """Every recorded request of the project, with its name (the file's stem)."""
    found = []
    for path in sorted((project_dir / RECORDED).glob("*.json")):
        try:
            found.append({"name": path.stem, **json.loads(path.read_text())})
        except (OSError, ValueError):
            continue
    return found


def examples(pipeline: Pipeline, project_dir: Path | None, unit_tests: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The endpoint's examples: {name, kind, inputs: {input: rows}, select, vars}."""
    found = []
    names = [item.name for item in pipeline.inputs]
    for fixture in recorded(project_dir) if project_dir is not None else ():
        if fixture.get("endpoint") == pipeline.endpoint.path and sorted(fixture.get("inputs") or {}) == sorted(names):
            found.append({"name": fixture["name"], "kind": "recorded request", "inputs": fixture["inputs"],
                          "select": fixture.get("select") or [], "vars": fixture.get("vars") or {}})
    for test in sorted(unit_tests.values(), key=lambda t: t["name"]):
        if test.get("model") != pipeline.endpoint.output:
            continue
        given = {}
        for item in test.get("given") or []:
            name = given_input(str(item.get("input", "")))
            rows = _rows(item)
            if name is None or rows is None:
                break
            given[name] = rows
        else:
            if sorted(given) == sorted(names):
                found.append({"name": test["name"], "kind": "unit test", "inputs": given, "select": [],
                              "vars": (test.get("overrides") or {}).get("vars") or {}})
    return found


def _rows(item: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """A given's rows as JSON rows (dict and inline csv fixtures; None for the others)."""
    rows = item.get("rows")
    fmt = item.get("format") or "dict"
    if fmt == "csv" and isinstance(rows, str):
        rows = csv_rows(rows)
    if fmt not in ("dict", "csv") or not isinstance(rows, list):
        return None
    return json.loads(json.dumps(rows, default=json_value))
