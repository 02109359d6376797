"""duckapi: a dbt project's models as a real-time analytics API over DuckDB, and as a
Python library with the same answers.

    import duckapi

    with duckapi.load("duckapi_dbt") as project:
        answer = project.run("/analyse_data/", [{"group_id": "🦆", "event_value": 13}])
        answer.to_pylist()
"""

from duckapi.errors import (
    CompileBusy,
    DuckapiError,
    ExecutionError,
    InputError,
    ProjectError,
    RequestError,
    ResourceError,
    StatementTimeout,
)
from duckapi.library.answer import Answer
from duckapi.library.endpoints import Column, Endpoint, EndpointInput, Reference
from duckapi.library.project import Project, load

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "Column",
    "CompileBusy",
    "DuckapiError",
    "Endpoint",
    "EndpointInput",
    "ExecutionError",
    "InputError",
    "Project",
    "ProjectError",
    "Reference",
    "RequestError",
    "ResourceError",
    "StatementTimeout",
    "load",
    "__version__",
]
