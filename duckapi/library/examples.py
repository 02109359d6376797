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
_GIVEN = re.compile(r"""^\s*(?:ref\(\s*['"]([^'"]+)['"]\s*\)|source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\))\s*$""")


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
            match = _GIVEN.match(str(item.get("input", "")))
            rows = _rows(item)
            if match is None or rows is None:
                break
            given[match.group(1) or f"{match.group(2)}.{match.group(3)}"] = rows
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
        rows = list(csv.DictReader(io.StringIO(rows.strip() + "\n")))
    if fmt not in ("dict", "csv") or not isinstance(rows, list):
        return None
    return json.loads(json.dumps(rows, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)))
