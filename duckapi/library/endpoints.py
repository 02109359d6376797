"""What a served endpoint is, for its callers: the public face of a compiled pipeline.

The same description answers `GET /models`, so the Python API and the HTTP API list
the same endpoints, inputs, parts and vars.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from duckapi.pipeline.relations import Column, Reference

__all__ = ["Column", "Endpoint", "EndpointInput", "Reference"]


@dataclass(frozen=True)
class EndpointInput:
    """One input of an endpoint: the rows a call passes under `name` replace `relation`."""

    name: str
    relation: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Endpoint:
    """A served dbt model: where it is served, what it takes, what it answers.

    `parts` are the names `select=` takes; `vars` the request-settable dbt vars with
    their defaults (`meta.duckapi.vars`); `materialized` each model's materialization;
    `data_dependent` the models whose SQL dbt renders from each request's rows.
    """

    path: str
    model: str
    inputs: tuple[EndpointInput, ...]
    parts: tuple[str, ...]
    columns: tuple[Column, ...]
    vars: dict[str, Any]
    references: tuple[Reference, ...] = ()
    materialized: dict[str, str] | None = None
    #: Data-dependent models (SQL rendered from each request's rows) -> the queries over
    #: the request's data their rendering runs (none: it reads the columns of one that is).
    data_dependent: dict[str, list[str]] | None = None
    #: Example requests from the project: recorded requests and fitting unit tests' given
    #: rows, each {name, kind, inputs: {input: rows}, select, vars} (library/examples.py).
    examples: tuple[dict[str, Any], ...] | list[dict[str, Any]] = ()
    #: What its answers (without parts or vars) carry as Duckapi-Project and Duckapi-Data-Version.
    project_digest: str = ""
    data_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The endpoint as `GET /models` lists it."""
        return {
            "path": self.path,
            "model": self.model,
            "inputs": [
                {"name": i.name, "relation": i.relation, "columns": [asdict(c) for c in i.columns]} for i in self.inputs
            ],
            "references": [{"name": r.name, "kind": r.kind, "relation": r.relation_name} for r in self.references],
            "parts": list(self.parts),
            "columns": [{"name": c.name, "data_type": c.data_type} for c in self.columns],
            "vars": dict(self.vars),
            "materialized": dict(self.materialized or {}),
            "data_dependent": {model: list(queries) for model, queries in (self.data_dependent or {}).items()},
            "examples": list(self.examples),
            "project_digest": self.project_digest,
            "data_version": self.data_version,
        }
