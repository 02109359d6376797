"""The OpenAPI document, generated from the project as it is compiled right now."""

from __future__ import annotations

from typing import Any

from duckapi.contract import column_type
from duckapi.pipeline import Column, Pipeline
from duckapi.service import ProjectState

ERROR = {"$ref": "#/components/schemas/Error"}


def row_schema(columns: tuple[Column, ...]) -> dict[str, Any]:
    """JSON schema of one input row, from the input model's dbt contract."""
    properties = {}
    for col in columns:
        schema = dict(column_type(col.data_type).json_schema)
        if not col.not_null:
            schema = {"anyOf": [schema, {"type": "null"}]}
        properties[col.name] = schema
    return {"type": "object", "properties": properties, "required": [c.name for c in columns if c.not_null]}


def request_body(pipeline: Pipeline) -> dict[str, Any]:
    """One input: a JSON array of rows. Several: an object keyed by input name, or a
    multipart/form-data body with one part per input (any row format)."""
    if len(pipeline.inputs) == 1:
        schema: dict[str, Any] = {"type": "array", "items": row_schema(pipeline.inputs[0].columns)}
        return {"required": True, "content": {"application/json": {"schema": schema}}}
    names = [i.name for i in pipeline.inputs]
    rows = {i.name: {"type": "array", "items": row_schema(i.columns)} for i in pipeline.inputs}
    parts = {name: {"type": "string", "format": "binary"} for name in names}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": rows, "required": names, "additionalProperties": False}
            },
            "multipart/form-data": {"schema": {"type": "object", "properties": parts, "required": names}},
        },
    }


def _query_parameters(parts: tuple[str, ...], declared_vars: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": "select", "in": "query", "required": False,
            "description": "Comma-separated parts to compute (others are not executed). One of: " + ", ".join(parts),
            "schema": {"type": "string"},
        },
        {
            "name": "vars", "in": "query", "required": False,
            "description": "JSON object overriding dbt vars. Declared: "
            + (", ".join(f"{k} (default {v!r})" for k, v in declared_vars.items()) or "none"),
            "schema": {"type": "string"},
        },
    ]


def endpoint_paths(state: ProjectState) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    errors = {
        code: {"description": text, "content": {"application/json": {"schema": ERROR}}}
        for code, text in [
            ("400", "Malformed body"), ("413", "Body too large"), ("415", "Unsupported Content-Type"),
            ("422", "Invalid rows, parts or vars: names the row and field"),
        ]
    }
    for path, served in state.endpoints.items():
        pipeline = served.pipeline
        endpoint = pipeline.endpoint
        paths[path] = {
            "post": {
                "summary": f"Run dbt model {endpoint.output} over the posted rows",
                "description": "The posted rows stand in for "
                + ", ".join(f"`{i.name}`" for i in pipeline.inputs)
                + "; each input's contract (or seed/source types) is its row schema."
                + (" Reference data read from the warehouse: " + ", ".join(f"`{r.name}`" for r in pipeline.references) + "."
                   if pipeline.references else ""),
                "operationId": f"run_{endpoint.output}",
                "parameters": _query_parameters(served.parts, state.declared_vars),
                "requestBody": request_body(pipeline),
                "responses": {
                    "200": {
                        "description": f"The rows of {endpoint.output}, ascending by their columns",
                        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
                    },
                    **errors,
                },
            }
        }
        paths[path + "sql"] = {
            "get": {
                "summary": f"The SQL a request to {path} executes",
                "operationId": f"sql_{endpoint.output}",
                "parameters": _query_parameters(served.parts, state.declared_vars),
                "responses": {"200": {"description": "SQL text", "content": {"text/plain": {}}}, "422": errors["422"]},
            }
        }
    return paths


def extend(document: dict[str, Any], state: ProjectState) -> dict[str, Any]:
    """Add the project's endpoints to FastAPI's document of the fixed routes."""
    document = dict(document)
    document["paths"] = {**document.get("paths", {}), **endpoint_paths(state)}
    components = dict(document.get("components", {}))
    components["schemas"] = {
        **components.get("schemas", {}),
        "Error": {
            "type": "object",
            "properties": {
                "detail": {"type": "string"}, "input": {"type": "string"},
                "row": {"type": "integer"}, "field": {"type": "string"},
            },
            "required": ["detail"],
        },
    }
    document["components"] = components
    return document
