"""Engines run a compiled pipeline; they never parse HTTP and never import dbt."""

from duckapi.errors import ExecutionError, ResourceError, StatementTimeout

__all__ = ["ExecutionError", "ResourceError", "StatementTimeout", "error_message"]


def error_message(exc: BaseException, keep: int = 1, limit: int = 500) -> str:
    """An engine's error in short: its first `keep` lines without the SQL-position marks
    (LINE ..., ^^^), plus any line naming the file; never the whole input."""
    lines = [
        line.strip() for line in str(exc).strip().splitlines()
        if line.strip() and not line.startswith("LINE ") and set(line.strip()) != {"^"}
    ]
    kept = lines[:keep] + [line for line in lines[keep:] if line.startswith("file = ")]
    return " | ".join(kept)[:limit] if kept else type(exc).__name__

