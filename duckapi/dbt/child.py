"""dbt commands in a child interpreter that stays warm between commands.

project.run_dbt hands each dbt command to a child process (`python -m duckapi.dbt.child
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

import contextlib
import gc
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

#: A warm child left idle this long is stopped (it holds a few hundred MB).
IDLE_S = 60.0
#: A child retires after this many commands (dbt's caches grow with every parse).
MAX_COMMANDS = 25


class _Child:
    """One child interpreter, parent side."""

    def __init__(self) -> None:
        read, write = os.pipe()
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "duckapi.dbt.child", str(write)],
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

#: Environment of a compile that also renders unit tests as dbt's own unit-test run does
#: (`compile_unit_tests`): the unit tests' unique_ids (JSON) and the file to write them to.
UNIT_TESTS_ENV = "DUCKAPI_UNIT_TESTS"
UNIT_TESTS_OUT_ENV = "DUCKAPI_UNIT_TESTS_OUT"
#: The schema of the relations that stand for a unit test's given rows in its rendering.
GIVEN_SCHEMA = "duckapi_unit_given"


def invoke(args: list[str], project_dir: str, env: dict[str, str]) -> str | None:
    """Run dbtRunner (in the child); None on success, else what failed and where."""
    from dbt.cli.main import dbtRunner

    os.environ.update(env)  # profiles.yml reads the database path with env_var()
    queries: dict[str, list[str]] = {}
    invocation: list[str] = []

    def record(event: Any) -> None:
        """The queries a node's rendering runs (run_query, statement blocks, macros that
        read the database) reach the adapter while the node is compiling."""
        if not invocation:
            invocation.append(event.info.invocation_id)
        if event.info.name != "SQLQuery":
            return
        node = event.data.node_info
        if node.unique_id and node.node_status == "compiling":
            queries.setdefault(node.unique_id, []).append(event.data.sql)

    # dbt-duckdb loads seeds by a path relative to the working directory.
    with contextlib.chdir(project_dir), _unit_test_renderings(os.environ.get(UNIT_TESTS_ENV),
                                                             os.environ.get(UNIT_TESTS_OUT_ENV)):
        result = dbtRunner(callbacks=[record]).invoke(args)
    log = os.environ.get("DUCKAPI_QUERY_LOG")
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        Path(log).write_text(json.dumps({"invocation_id": invocation[0] if invocation else None, "queries": queries}))
    if result.success:
        return None
    if result.exception is not None:
        return str(result.exception)
    failures = []
    for node_result in getattr(result.result, "results", None) or []:
        if str(node_result.status) in ("error", "fail", "runtime error"):
            failures.append(f"{node_result.node.original_file_path}: {node_result.message}")
    return "; ".join(failures) or "see the dbt log above"


@contextlib.contextmanager
def _unit_test_renderings(wanted: str | None, out: str | None) -> Iterator[None]:
    """While dbt compiles a model, also render each of `wanted` (unit tests' unique_ids, JSON)
    that tests it, exactly as dbt's own unit-test run renders it: dbt's unit-test manifest,
    context and compiler, so macro and env var overrides, `is_incremental`, a given on
    `this` or on an ephemeral model mean what they mean to dbt. Each given's rows are a
    relation of GIVEN_SCHEMA instead of dbt's fixture SQL (the rows never become SQL text):
    duckapi feeds them as inputs. Written to `out`: {unique_id: {"sql", "given"} or {"error"}}."""
    if not wanted or not out:
        yield
        return
    from dbt.adapters.factory import get_adapter
    from dbt.compilation import Compiler
    from dbt.parser.unit_tests import UnitTestManifestLoader

    ids = set(json.loads(wanted))
    original = Compiler.compile_node
    rendered: dict[str, dict[str, Any]] = {}

    def render_unit_test(compiler: Any, manifest: Any, unique_id: str) -> dict[str, Any]:
        unit_manifest = UnitTestManifestLoader(manifest, compiler.config, {unique_id}).load()
        node = unit_manifest.nodes[unique_id]
        relation = get_adapter(compiler.config).Relation
        spark = get_adapter(compiler.config).type() == "spark"  # Spark relations have no database
        given = []
        for index, given_id in enumerate(d for d in node.depends_on.nodes if d in unit_manifest.nodes):
            name = str(relation.create(database=None if spark else GIVEN_SCHEMA, schema=GIVEN_SCHEMA,
                                       identifier=f"given_{index}"))
            unit_manifest.nodes[given_id].raw_code = f"select * from {name}"
            given.append(name)
        node = original(compiler, node, unit_manifest, {}, write=False)
        return {"sql": (node.compiled_code or "").strip().rstrip(";"), "given": given}

    def compile_node(self: Any, node: Any, manifest: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, node, manifest, *args, **kwargs)
        for unique_id in sorted(ids - set(rendered)):
            test = manifest.unit_tests.get(unique_id)
            if test is not None and test.depends_on.nodes[:1] == [node.unique_id]:
                try:
                    rendered[unique_id] = render_unit_test(self, manifest, unique_id)
                except Exception as exc:  # dbt cannot render it: that test's error, not the compile's
                    rendered[unique_id] = {"error": str(exc)}
        return result

    Compiler.compile_node = compile_node  # type: ignore[method-assign]
    try:
        yield
    finally:
        Compiler.compile_node = original  # type: ignore[method-assign]
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(rendered))




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
    results = os.fdopen(int(sys.argv[1]), "w")
    for done, line in enumerate(sys.stdin, start=1):
        job = json.loads(line)
        os.environ.clear()
        os.environ.update(job["env"])
        try:
            error = invoke(job["args"], job["project_dir"], {})
        except BaseException as exc:  # reported like a failed command, never lost
            error = f"{type(exc).__name__}: {exc}"
        keep = done < MAX_COMMANDS and _released()
        results.write(json.dumps({"error": error, "keep": keep}) + "\n")
        results.flush()
        if not keep:
            return


if __name__ == "__main__":
    main()
