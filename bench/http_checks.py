"""schemathesis, every check, 1,000+ cases on live servers of each project (`python -m bench.http_checks shop`: one)."""

import argparse
import json
import re
import subprocess
import sys

from bench.harness import ROOT, WORK, Server, bench_main, build, clean_env, report, results_paths, serve_cmd

PROJECTS = {"bundled": ("duckapi_dbt", 700), "shop": ("examples/shop", 300), "web_events": ("examples/web_events", 300)}
SCHEMATHESIS = ("-m schemathesis.cli run http://127.0.0.1:{port}/openapi.json --checks all --workers 1 --seed 7 "
                "--request-timeout 30 --max-examples {examples}")
ABOUT = "N per operation and phase, 1,000+ cases a project (the bundled one has fewer operations); bodies up to 1 MiB."


def check(name: str, examples: int) -> dict[str, object]:
    db = WORK / "http" / name / "dev.duckdb"
    env = clean_env(DUCKAPI_PROJECT_DIR=str(ROOT / PROJECTS[name][0]), DUCKAPI_TARGET_PATH=str(db.parent / "target"))
    build(db, env, log_name=f"http-{name}-build.log")
    server = Server(f"http-{name}", serve_cmd(db, "--max-body", str(1024 * 1024)), env)
    try:
        server.start()
        server.wait_ready()
        done = subprocess.run([sys.executable, *SCHEMATHESIS.format(port=server.port, examples=examples).split()],
                              capture_output=True, text=True, cwd=WORK, timeout=3600)
    finally:
        server.stop()
    generated = re.search(r"Test cases:\s*(\d+) generated", done.stdout)
    return {"project": name, "examples": examples, "exit_code": done.returncode, "no_issues": "No issues found" in
            done.stdout, "generated": int(generated[1]) if generated else None, "summary": done.stdout[-1500:]}


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    saved = json.loads(results_paths("http_checks", args.quick, args.out_json)[0].read_text()) if args.only else []
    kept = {r["project"]: r for r in saved if r["project"] not in args.only}  # the others' results
    return [kept.get(name) or check(name, n // 10 if args.quick else n) for name, (_, n) in PROJECTS.items()]


def main(argv: list[str] | None = None) -> int:
    def render(results: list[dict[str, object]]) -> str:  # a row per project; schemathesis's summaries: in the JSON
        rows = [{k: v for k, v in r.items() if k != "summary"} for r in results]
        return report("schemathesis against live servers", {"projects": rows}, ABOUT)

    return bench_main(__doc__, "http_checks", run, render, "a tenth of the examples", argv, options=lambda parser:
                      parser.add_argument("only", nargs="*", metavar="project", help=", ".join(PROJECTS)))


if __name__ == "__main__":
    sys.exit(main())
