"""dbt commands in a child interpreter that stays warm between commands.

project.run_dbt hands each dbt command to a child process (`python -m duckapi.dbt_child
RESULT_FD`), never this one: dbt's adapter state is process-global, and dbt-duckdb keeps
the database file open (and locked) while its process holds the connection. A fresh
interpreter rather than a multiprocessing child, because a spawned child re-imports the
caller's main module, which breaks a script that calls `duckapi.load(...)` at its top
level.

Importing dbt and registering its adapter cost about 3.5 s of CPU, close to half of a
small project's compile. So a child that finished a command is kept (one per process,
for IDLE_S) and takes the next one: a reload, a vars variant, the next project a test
compiles. It is kept only when it provably let go of every database file (dbt-duckdb's
connection closed, no DuckDB file left open in /proc/self/fd) and never started Spark;
otherwise, and after MAX_COMMANDS, it exits, and the next command starts a new one.
Each command gets the caller's whole environment of that moment and its own working
directory, so a warm child runs it as a fresh one would.

Protocol: one JSON line per command on the child's stdin ({"args", "project_dir",
"env"}); one JSON line back on RESULT_FD: {"error": null or what failed, "keep": bool}.
dbt itself prints to the inherited stdout and stderr.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
from typing import Any, Optional

#: A warm child left idle this long is stopped (it holds a few hundred MB).
IDLE_S = 60.0
#: A child retires after this many commands (dbt's caches grow with every parse).
MAX_COMMANDS = 25


class _Child:
    """One child interpreter, parent side."""

    def __init__(self) -> None:
        read, write = os.pipe()
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "duckapi.dbt_child", str(write)],
                                         stdin=subprocess.PIPE, pass_fds=(write,))
        finally:
            os.close(write)
        self.results = os.fdopen(read, "rb")
        self.idle_timer: Optional[threading.Timer] = None

    def run(self, job: dict[str, Any]) -> tuple[Optional[str], bool]:
        """(what failed or None, whether the child may take another command)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.flush()
            line = self.results.readline()
        except (BrokenPipeError, OSError):
            line = b""
        if not line:
            self.stop()
            return f"dbt's process exited with {self.proc.returncode}", False
        reply = json.loads(line)
        return reply["error"], bool(reply["keep"])

    def stop(self) -> None:
        """Close its stdin (it exits at EOF), reap it, close its pipes; safe to repeat."""
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.results.close()


_lock = threading.Lock()
_idle: Optional[_Child] = None


def run(args: list[str], project_dir: str, env: dict[str, str]) -> Optional[str]:
    """One dbt command in a child, with this process's environment plus `env`; None on
    success, else what failed. Commands from several threads run in several children."""
    global _idle
    with _lock:
        child, _idle = _idle, None
    if child is not None and child.proc.poll() is not None:  # exited meanwhile: close its pipes
        child.stop()
        child = None
    if child is None:
        child = _Child()
    elif child.idle_timer is not None:
        child.idle_timer.cancel()
    error, keep = child.run({"args": args, "project_dir": project_dir, "env": {**os.environ, **env}})
    if keep:
        with _lock:
            if _idle is None:
                child.idle_timer = threading.Timer(IDLE_S, _retire_idle, (child,))
                child.idle_timer.daemon = True
                child.idle_timer.start()
                _idle, child = child, None
    if child is not None:  # not kept (or another is): reap it and close its pipes
        child.stop()
    return error


def _retire_idle(child: _Child) -> None:
    global _idle
    with _lock:
        if _idle is not child:
            return
        _idle = None
    child.stop()


def stop() -> None:
    """Stop the warm child now (e.g. after start-up, when no compile is expected soon)."""
    global _idle
    with _lock:
        child, _idle = _idle, None
    if child is not None:
        child.stop()


# --- the child ---------------------------------------------------------------------------


def _released() -> bool:
    """Whether this process holds no DuckDB database and no Spark: then it may be kept."""
    if "pyspark" in sys.modules:
        return False
    connections = sys.modules.get("dbt.adapters.duckdb.connections")
    if connections is not None:
        manager = connections.DuckDBConnectionManager
        environment = getattr(manager, "_ENV", None)
        if environment is not None:
            environment.close()  # dbt-duckdb closes it only at exit (atexit)
        manager.close_all_connections()
    gc.collect()
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return False  # cannot check: do not keep
    for fd in fds:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if ".duckdb" in target or target.endswith((".db", ".db.wal")):
            return False
    return True


def main() -> None:
    from duckapi.project import _invoke

    results = os.fdopen(int(sys.argv[1]), "w")
    for done, line in enumerate(sys.stdin, start=1):
        job = json.loads(line)
        os.environ.clear()
        os.environ.update(job["env"])
        try:
            error = _invoke(job["args"], job["project_dir"], {})
        except BaseException as exc:  # reported like a failed command, never lost
            error = f"{type(exc).__name__}: {exc}"
        keep = done < MAX_COMMANDS and _released()
        results.write(json.dumps({"error": error, "keep": keep}) + "\n")
        results.flush()
        if not keep:
            return


if __name__ == "__main__":
    main()
