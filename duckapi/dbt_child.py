"""`python -m duckapi.dbt_child RESULT_FILE`: one dbt command in a fresh process.

project.run_dbt starts this instead of a multiprocessing child: a spawned child
re-imports the caller's main module, which breaks a script that calls
`duckapi.load(...)` at its top level. The command arrives as JSON on stdin (dbt's
arguments, the project folder, extra environment); the outcome (null, or what failed)
is written to RESULT_FILE, because dbt itself prints to stdout and stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from duckapi.project import _invoke


def main() -> None:
    job = json.loads(sys.stdin.read())
    try:
        error = _invoke(job["args"], job["project_dir"], job["env"])
    except BaseException as exc:  # reported like a failed command, never lost
        error = f"{type(exc).__name__}: {exc}"
    Path(sys.argv[1]).write_text(json.dumps(error))


if __name__ == "__main__":
    main()
