"""Engines run a compiled pipeline; they never parse HTTP and never import dbt."""


class ExecutionError(RuntimeError):
    """The pipeline's SQL failed on this input (a model raised, a cast failed, ...)."""


class ResourceError(ExecutionError):
    """The engine ran out of a resource (memory) on this input."""


def error_message(exc: BaseException, keep: int = 1, limit: int = 500) -> str:
    """An engine's error in short: its first `keep` lines without the SQL-position marks
    (LINE ..., ^^^), plus any line naming the file; never the whole input."""
    lines = [
        line.strip() for line in str(exc).strip().splitlines()
        if line.strip() and not line.startswith("LINE ") and set(line.strip()) != {"^"}
    ]
    kept = lines[:keep] + [line for line in lines[keep:] if line.startswith("file = ")]
    return " | ".join(kept)[:limit] if kept else type(exc).__name__


class StatementTimeout(ExecutionError):
    """The statement ran past its request's deadline and was interrupted (engines/deadline.py)."""
