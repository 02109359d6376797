"""Engines run a compiled pipeline; they never parse HTTP and never import dbt."""


class ExecutionError(RuntimeError):
    """The pipeline's SQL failed on this input (a model raised, a cast failed, ...)."""


class ResourceError(ExecutionError):
    """The engine ran out of a resource (memory) on this input."""
