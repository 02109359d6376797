"""schemathesis, every check, against live servers of the bundled project, the shop and the
web-events example, with at least 1,000 generated cases each (the suite runs 15 per
operation: tests/test_http.py, tests/test_example_web_events.py).

    python -m bench.http_checks         # writes bench/http_checks_results.json, bench/HTTP_CHECKS_RESULTS.md
    python -m bench.http_checks shop    # runs one project again, keeping the others' results
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.harness import ROOT, WORK, Server, build, out_dir, write_results

PROJECTS = {"bundled": ROOT / "duckapi_dbt", "shop": ROOT / "examples" / "shop",
            "web_events": ROOT / "examples" / "web_events"}
#: Examples per operation and phase: over 1,000 cases per project (the bundled project has
#: fewer operations, so more each).
EXAMPLES = {"bundled": 700, "shop": 300, "web_events": 300}


def check(name: str, project: Path) -> dict[str, Any]:
    db = WORK / "http" / name / "dev.duckdb"
    env = {**os.environ, "DUCKAPI_PROJECT_DIR": str(project), "DUCKAPI_DB_PATH": str(db),
           "DUCKAPI_TARGET_PATH": str(WORK / "http" / name / "target"), "DUCKAPI_MAX_BODY_BYTES": str(1024 * 1024)}
    build(db, env, log_name=f"http-{name}-build.log")
    server = Server(f"http-{name}", [sys.executable, "-m", "duckapi.cli", "serve", "--port", "{port}"], env)
    try:
        server.start()
        server.wait_ready()
        done = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"http://127.0.0.1:{server.port}/openapi.json",
             "--checks", "all", "--max-examples", str(EXAMPLES[name]), "--workers", "1", "--request-timeout", "30",
             "--seed", "7"], capture_output=True, text=True, cwd=WORK, timeout=3600)
    finally:
        server.stop()
    generated = re.search(r"Test cases:\s*(\d+) generated", done.stdout)
    return {"project": name, "examples": EXAMPLES[name], "exit_code": done.returncode,
            "no_issues": "No issues found" in done.stdout, "generated": int(generated.group(1)) if generated else None,
            "summary": done.stdout[-1500:]}


def markdown(results: list[dict[str, Any]]) -> str:
    rows = "\n".join(f"| {r['project']} | {r.get('examples', 300)} | {r['generated']} | "
                     f"{'none' if r['no_issues'] else 'see the JSON'} |" for r in results)
    return f"""# schemathesis against live servers

`python -m bench.http_checks`: `schemathesis run --checks all --max-examples N` (seed 7)
against `duckapi serve` of each project, built first.

| project | N | test cases generated | issues found |
|---|---:|---:|---|
{rows}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", metavar="project", help=f"run only these again ({', '.join(PROJECTS)})")
    only = parser.parse_args().only
    saved = out_dir(False) / "http_checks_results.json"
    kept = {r["project"]: r for r in json.loads(saved.read_text())} if only and saved.exists() else {}
    results = [check(name, project) if not only or name in only else kept[name] for name, project in PROJECTS.items()]
    write_results(results, saved, out_dir(False) / "HTTP_CHECKS_RESULTS.md", markdown, ascii=True)


if __name__ == "__main__":
    main()
