"""Runs the code samples of README.md and docs/**/*.md as a reader would (tests/test_docs.py).

Every fenced block is one of:

* ``python``: executed; a page's python blocks run in order in one namespace.
* ``pycon``: a doctest (``>>>`` lines and their expected output), in that same namespace.
* ``bash``, ``sh``, ``shell``: a bash script (``set -eo pipefail``), which must exit 0. A line
  that starts a server (``make serve``, ``duckapi serve ...``) is started in the background on a
  free port, waited for until ``/healthz`` answers, and stopped when the world is torn down; from
  then on the page's ``127.0.0.1:8000`` / ``localhost:8000`` mean that server's port.
* ``console``: ``$ command`` lines (continued on ``> `` lines), each followed by its expected
  output (stdout and stderr, compared line for line; a ``...`` stands for any text, as in doctest).
* ``json``: must parse (the whole block, or each line of it).
* ``promql``: every ``duckapi_*`` metric it names must be on the bundled server's ``/metrics``
  (or declared by the app, for a series not observed yet).
* ``yaml``, ``sql``, ``toml``: an excerpt of the file its ``title="..."`` names (lines in order,
  ``# ...`` / ``-- ...`` lines standing for lines left out, one indentation shift allowed).
* ``text``: not code (diagrams, synopses, output formats).

Anything else, or a block with no language, fails: every block is classified. Samples run in a
world: a temporary copy of the repository's projects and Makefile, never the repository itself.
A page that talks to ``:8000`` before it starts a server of its own gets the bundled project as
``make serve`` serves it (one per world). A bash or console block whose text (after the port is
filled in) was already run in the world is not run twice: README and the docs share samples.
"""

from __future__ import annotations

import doctest
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers import Server, free_port

REPO = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
LOCAL_8000 = re.compile(r"\b(127\.0\.0\.1|localhost):8000\b")
SERVER_LINE = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:make\s+serve|duckapi\s+serve)\b")
ELISION = re.compile(r"^\s*(#|--)\s*\.\.\.")
SCRIPT_LANGS = {"bash", "sh", "shell"}
EXCERPT_LANGS = {"yaml", "sql", "toml"}
KNOWN_LANGS = SCRIPT_LANGS | EXCERPT_LANGS | {"python", "pycon", "console", "json", "promql", "text"}
SCRIPT_TIMEOUT = 300
#: What the world copies from the repository (its projects as a fresh clone has them).
COPIED = ("duckapi_dbt", "examples", "scripts", "tests", "Makefile", "pyproject.toml")
NOT_COPIED = shutil.ignore_patterns("target", "logs", "*.duckdb", "*.duckdb.wal", "__pycache__", ".pytest_cache")


@dataclass(frozen=True)
class Block:
    path: Path  # relative to the repository
    line: int  # 1-based line of the opening fence
    lang: str
    title: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def blocks(path: Path, root: Path = REPO) -> list[Block]:
    """The fenced code blocks of a Markdown file, dedented by their fence's indentation."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, info = len(match["indent"]), match["fence"], match["info"].strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = FENCE.match(lines[j])
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence) and not closing["info"].strip():
                break
            line = lines[j]
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            j += 1
        else:
            raise AssertionError(f"{path.relative_to(root)}:{i + 1}: unclosed code fence")
        lang = info.split()[0].lstrip(".").lower() if info else ""
        title = TITLE.search(info)
        found.append(Block(path.relative_to(root), i + 1, lang, title["title"] if title else None, "\n".join(body) + "\n"))
        i = j + 1
    return found


@dataclass
class Running:
    command: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own process group: make and its children
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class World:
    """A temporary copy of the repository's projects where samples run, and its servers."""

    root: Path
    env: dict[str, str]
    servers: dict[str, Running] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    outputs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path) -> "World":
        for name in COPIED:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, root / name, ignore=NOT_COPIED)
            else:
                shutil.copy2(source, root / name)
        # `make` in the world uses this venv's programs through a venv folder of its own whose
        # install stamps are newer than pyproject.toml, so it never runs pip (an editable install
        # from the copy would re-point the real one).
        venv_bin = Path(sys.executable).parent
        real = Path(sys.prefix)
        venv = root / ".venv"
        venv.mkdir()
        for part in ("bin", "lib", "lib64", "include"):
            if (real / part).is_dir():
                (venv / part).symlink_to(real / part, target_is_directory=True)
        shutil.copy2(real / "pyvenv.cfg", venv / "pyvenv.cfg")
        for stamp in (".installed", ".installed-test", ".installed-docs"):
            (venv / stamp).touch()
        os.utime(root / "pyproject.toml", (0, 0))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUCKAPI_") and k not in ("HOST", "PORT")}
        env.update({
            "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
            "VENV": str(venv),
            # `duckapi serve` with no --project serves the bundled project: the world's copy.
            "DUCKAPI_PROJECT_DIR": str(root / "duckapi_dbt"),
            "DUCKAPI_DRAIN_SECONDS": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            # `make test` runs the suite these samples are part of; inside it, pytest only
            # collects this file (the target, the venv and ensure-java.sh still run for real).
            "PYTEST_ADDOPTS": "--collect-only -q tests/test_docs.py",
        })
        env.pop("PYTEST_XDIST_WORKER", None)
        return cls(root, env)

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()

    # --- servers ---------------------------------------------------------------------------

    def server(self, command: str, block: Block) -> Running:
        """The server this command line starts: started once per world, healthy."""
        key = " ".join(shlex.split(command, comments=True))
        running = self.servers.get(key)
        if running and running.alive():
            return running
        port = free_port()
        log = self.root / f"server-{len(self.servers)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(["bash", "-c", command], cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
                                    env={**self.env, "HOST": "127.0.0.1", "PORT": str(port)}, start_new_session=True)
        running = Running(command, port, proc, log)
        self.servers[key] = running
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                fail(block, f"`{command}` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if Server(port).request("GET", "/healthz", timeout=2)[0] == 200:
                    return running
            except OSError:
                pass
            if time.monotonic() > deadline:
                fail(block, f"`{command}` not healthy in 180 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def bundled(self, block: Block) -> Running:
        return self.server("make serve", block)

    # --- running ---------------------------------------------------------------------------

    def bash(self, script: str, block: Block, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            # A script stops at its first failing command; a console transcript shows them all.
            prelude = "set -eo pipefail\n" if check else ""
            done = subprocess.run(["bash", "-c", prelude + script], cwd=self.root, env=self.env,
                                  capture_output=True, text=True, timeout=SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            fail(block, f"did not finish in {SCRIPT_TIMEOUT} s:\n{script}\n{exc.stdout or ''}{exc.stderr or ''}")
        if check and done.returncode != 0:
            fail(block, f"exited with {done.returncode}:\n{script}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")
        return done


def fail(block: Block, message: str) -> None:
    pytest.fail(f"{block.where}: {block.lang} sample failed: {message}", pytrace=False)


class Page:
    """One Markdown file's samples, run in order in a world."""

    def __init__(self, world: World, path: Path, root: Path = REPO) -> None:
        self.world = world
        self.blocks = blocks(path, root)
        self.namespace: dict[str, Any] = {"__name__": "__docs__"}
        self.port: int | None = None  # the server this page's :8000 means

    def run(self) -> int:
        for block in self.blocks:
            handler = getattr(self, "_" + block.lang, None) if block.lang in KNOWN_LANGS else None
            if handler is None:
                fail(block, f"unknown language {block.lang!r}: use one of {sorted(KNOWN_LANGS)} (`text` for what is not code)")
            handler(block)
        return len(self.blocks)

    def _ported(self, text: str, block: Block) -> str:
        if not LOCAL_8000.search(text):
            return text
        if self.port is None:
            self.port = self.world.bundled(block).port
        return LOCAL_8000.sub(lambda m: f"{m[1]}:{self.port}", text)

    # --- executed --------------------------------------------------------------------------

    def _bash(self, block: Block) -> None:
        pending: list[str] = []

        def flush() -> None:
            script = self._ported("\n".join(pending), block)
            pending.clear()
            if script.strip() and script not in self.world.done:
                self.world.bash(script, block)
                self.world.done.add(script)

        lines = block.text.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            while line.endswith("\\") and i + 1 < len(lines):  # a command continued on the next line
                i += 1
                line = line + "\n" + lines[i]
            if SERVER_LINE.match(line.strip()):
                flush()
                self.port = self.world.server(line.strip(), block).port
            else:
                pending.append(line)
            i += 1
        flush()

    _sh = _shell = _bash

    def _console(self, block: Block) -> None:
        for command, want in transcript(block):
            command = self._ported(command, block)
            got = self.world.outputs.get(command)
            if got is None:
                # Exit status aside (a transcript may show a failing command): what it printed.
                got = self.world.bash("{ " + command + "\n} 2>&1", block, check=False).stdout
                self.world.outputs[command] = got
            if not matches(want, got):
                fail(block, f"`{command}` printed something else.\n--- expected\n{want}\n--- got\n{got}")

    def _python(self, block: Block) -> None:
        code = compile("\n" * (block.line) + self._ported(block.text, block), str(block.path), "exec")
        cwd = os.getcwd()
        os.chdir(self.world.root)
        try:
            exec(code, self.namespace)
        except Exception as exc:  # noqa: BLE001 - reported with the sample's place
            import traceback

            fail(block, "".join(traceback.format_exception(exc)[-12:]))
        finally:
            os.chdir(cwd)

    def _pycon(self, block: Block) -> None:
        parser = doctest.DocTestParser()
        test = parser.get_doctest(self._ported(block.text, block), self.namespace, block.where, str(block.path), block.line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        out = io.StringIO()
        cwd = os.getcwd()
        os.chdir(self.world.root)
        try:
            with redirect_stdout(out):
                result = runner.run(test, out=out.write, clear_globs=False)
        finally:
            os.chdir(cwd)
        self.namespace.update(test.globs)
        if result.failed:
            fail(block, out.getvalue())

    # --- checked ---------------------------------------------------------------------------

    def _json(self, block: Block) -> None:
        try:
            json.loads(block.text)
            return
        except ValueError:
            pass
        for number, line in enumerate(block.text.splitlines()):
            if line.strip():
                try:
                    json.loads(line)
                except ValueError as exc:
                    fail(block, f"line {number + 1} is not JSON: {exc}")

    def _promql(self, block: Block) -> None:
        """Every metric the query names is on the bundled server's /metrics, or (a labelled
        series not observed yet: multiprocess mode lists only those) declared by the app."""
        def base(name: str) -> str:
            return re.sub(r"_(total|bucket|sum|count)$", "", name)

        status, body = Server(self.world.bundled(block).port).request("GET", "/metrics")
        assert status == 200, body
        known = {base(name) for name in re.findall(r"^(?:# TYPE )?(duckapi_[a-z_]+)", body.decode(), re.M)}
        declared = (REPO / "duckapi" / "api" / "ops" / "metrics.py").read_text()
        known |= {base(name) for name in re.findall(r'"(duckapi_[a-z_]+)"', declared)}
        missing = sorted(name for name in set(re.findall(r"\bduckapi_[a-z_]+", block.text)) if base(name) not in known)
        if missing:
            fail(block, f"no such metrics: {missing}")

    def _excerpt(self, block: Block) -> None:
        if not block.title:
            fail(block, f"a {block.lang} block must name the file it comes from: ```{block.lang} title=\"path\"")
        path = self.world.root / block.title
        if not path.is_file():
            fail(block, f"{block.title}: no such file")
        if not is_excerpt(block.text, path.read_text(encoding="utf-8")):
            fail(block, f"not an excerpt of {block.title} as it is at this point:\n{block.text}")

    _yaml = _sql = _toml = _excerpt

    def _text(self, block: Block) -> None:
        pass


def transcript(block: Block) -> list[tuple[str, str]]:
    """(command, expected output) pairs of a console block: `$ ` starts a command."""
    pairs: list[tuple[str, list[str]]] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            command = line[2:]
            while i + 1 < len(lines) and lines[i + 1].startswith("> "):  # the shell's PS2: continued
                i += 1
                command += "\n" + lines[i][2:]
            pairs.append((command, []))
        elif pairs:
            pairs[-1][1].append(line)
        else:
            fail(block, f"a console block starts with `$ command`, not {line!r}")
        i += 1
    return [(command, "\n".join(want)) for command, want in pairs]


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def matches(want: str, got: str) -> bool:
    """Output as shown, line ends and surrounding blank lines aside; `...` matches anything."""
    pattern = ".*?".join(re.escape(part) for part in _normal(want).split("..."))
    return re.fullmatch(pattern, _normal(got), re.S) is not None


def is_excerpt(excerpt: str, text: str) -> bool:
    """Whether the excerpt's lines are in the text in order: contiguous runs contiguous, an
    elision line (`# ...`) standing for any lines, all shifted by one indentation."""
    runs: list[list[str]] = [[]]
    for line in excerpt.rstrip("\n").splitlines():
        if ELISION.match(line):
            runs.append([])
        else:
            runs[-1].append(line.rstrip())
    runs = [run for run in runs if run]
    lines = [line.rstrip() for line in text.splitlines()]
    first = runs[0][0]
    for start, line in enumerate(lines):
        if line.strip() != first.strip() or not line.endswith(first.lstrip()):
            continue
        shift = len(line) - len(line.lstrip()) - (len(first) - len(first.lstrip()))
        if shift < 0:
            continue
        pad = " " * shift
        at = start
        for run in runs:
            shifted = [pad + item if item else item for item in run]
            found = next((k for k in range(at, len(lines) - len(run) + 1) if lines[k:k + len(run)] == shifted), None)
            if found is None or (run is runs[0] and found != start):
                break
            at = found + len(run)
        else:
            return True
    return False
