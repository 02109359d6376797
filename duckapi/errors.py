"""Every error duckapi raises to its callers, in one place, so that the Python API, the
HTTP app and the batch command name the same failure the same way.

`DuckapiError` is the root. Errors about what a caller sent say where the problem is
(`InputError.input`, `.row`, `.field`) and carry the HTTP status the API answers with.
"""

from __future__ import annotations

from typing import Any


class DuckapiError(Exception):
    """Anything duckapi raises on purpose: catch this to catch them all."""


class ProjectError(DuckapiError, RuntimeError):
    """The dbt project cannot be built, compiled or served; the message says what to fix."""


class PipelineError(ProjectError, ValueError):
    """The project does not describe a servable pipeline; the message names the file."""


class RequestError(DuckapiError, ValueError):
    """The call asked for something the project does not have: an endpoint, a part of
    `select`, a var that is not request-settable (HTTP 422, or 404 for an endpoint)."""


class CompileBusy(DuckapiError, RuntimeError):
    """New vars while the compile queue is full (HTTP 503); `retry_after` seconds is a guess."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InputError(DuckapiError):
    """Rows that do not fit an input's contract, or a body that does not parse.

    `status` is the HTTP status the API answers with (400 unreadable, 406/415 formats,
    413 too large, 422 against the contract), `detail` the message; `input`, `row`
    (0-based data row) and `field` say where the problem is, when it is in the rows.
    """

    def __init__(
        self, status: int, detail: str, row: int | None = None, field: str | None = None, input: str | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.row = row
        self.field = field
        self.input = input

    def within(self, input: str) -> "InputError":
        """The same error, said of one input of an endpoint with several."""
        return InputError(self.status, f"input '{input}': {self.detail}", self.row, self.field, input)

    def body(self) -> dict[str, Any]:
        """The API's JSON error body: detail, and input/row/field when known."""
        body: dict[str, Any] = {"detail": self.detail}
        if self.input is not None:
            body["input"] = self.input
        if self.row is not None:
            body["row"] = self.row
        if self.field is not None:
            body["field"] = self.field
        return body


class ExecutionError(DuckapiError, RuntimeError):
    """The pipeline's SQL failed on these rows (a model raised, a cast failed, ...)."""


class ResourceError(ExecutionError):
    """The engine ran out of a resource (memory) on these rows."""


class StatementTimeout(ExecutionError):
    """The statement ran past its deadline and was interrupted (engines/deadline.py)."""


def error_message(exc: BaseException, keep: int = 1, limit: int = 500) -> str:
    """An engine's error in short: its first `keep` lines without the SQL-position marks
    (LINE ..., ^^^), plus any line naming the file; never the whole input."""
    lines = [
        line.strip() for line in str(exc).strip().splitlines()
        if line.strip() and not line.startswith("LINE ") and set(line.strip()) != {"^"}
    ]
    kept = lines[:keep] + [line for line in lines[keep:] if line.startswith("file = ")]
    return " | ".join(kept)[:limit] if kept else type(exc).__name__


def from_duckdb(exc: Exception) -> ExecutionError:
    """A DuckDB error as duckapi's: interrupted at the deadline, out of memory, or failed."""
    import duckdb

    if isinstance(exc, duckdb.InterruptException):
        return StatementTimeout(error_message(exc))
    if isinstance(exc, duckdb.OutOfMemoryException):
        return ResourceError(error_message(exc))
    return ExecutionError(error_message(exc))
