"""What a run is doing, shown on a terminal (rich on stderr), and DuckDB's progress fed to it."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import duckdb
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

#: Where every message and progress line of `duckapi run` goes.
err = Console(stderr=True)


class Reporter:
    """What is running, on a terminal (stderr); nothing at all when stderr is not one."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self._progress: Progress | None = None

    def __enter__(self) -> "Reporter":
        if self.enabled:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                TimeElapsedColumn(), console=self.console, transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress:
            self._progress.stop()

    @contextmanager
    def step(self, description: str, measured: bool = False) -> Iterator[Callable[..., None] | None]:
        """A line for one step; with `measured`, a callback taking the finished share (0..1)
        and optionally what is running right now (shown after the description)."""
        if not self._progress:
            yield None
            return
        task = self._progress.add_task(escape(description), total=1.0 if measured else None)
        progress = self._progress

        def update(fraction: float, detail: str | None = None) -> None:
            label = escape(description + (f" ({detail})" if detail else ""))
            progress.update(task, completed=max(0.0, min(fraction, 1.0)), description=label)

        try:
            yield update if measured else None
        finally:
            progress.update(task, total=1.0, completed=1.0, description=escape(description))

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(escape(text), highlight=False, soft_wrap=True)


class _Poller:
    """Feeds DuckDB's query progress (0..1) to a callback while a statement runs."""

    def __init__(self, con: duckdb.DuckDBPyConnection, report: Callable[[float], None] | None) -> None:
        self.con, self.report = con, report
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> "_Poller":
        if self.report:
            self.con.execute("set enable_progress_bar = true")
            self.con.execute("set enable_progress_bar_print = false")
            self.thread = threading.Thread(target=self._run, name="duckapi-duckdb-progress", daemon=True)
            self.thread.start()
        return self

    def _run(self) -> None:
        assert self.report
        while not self.done.wait(0.2):
            try:
                value = self.con.query_progress()
            except Exception:
                return
            if value >= 0:
                self.report(value / 100)

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread:
            self.thread.join(timeout=2)

