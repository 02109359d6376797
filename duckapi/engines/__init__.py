"""Engines run a compiled pipeline; they never parse HTTP and never import dbt."""

from duckapi.errors import ExecutionError, ResourceError, StatementTimeout, error_message

__all__ = ["ExecutionError", "ResourceError", "StatementTimeout", "error_message"]
