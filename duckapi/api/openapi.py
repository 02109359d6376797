"""The OpenAPI document, generated from the project as it is compiled right now."""

from __future__ import annotations

import json
from typing import Any

from duckapi.pipeline.contract import column_type
from duckapi.pipeline import Column, Pipeline
from duckapi.serving.service import ProjectState

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
    # Each part is one input's rows (as JSON here; CSV, NDJSON, Parquet, Arrow work too).
    encoding = {name: {"contentType": "application/json"} for name in names}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": rows, "required": names, "additionalProperties": False}
            },
            "multipart/form-data": {
                # A part with no rows is an empty array `[]`; clients often drop empty parts: minItems 1.
                "schema": {
                    "type": "object", "properties": {n: {**rows[n], "minItems": 1} for n in names},
                    "required": names, "additionalProperties": False,
                },
                "encoding": encoding,
            },
        },
    }


def var_schema(default: Any) -> dict[str, Any]:
    """The JSON schema of the values a var may take: its default's JSON type (service._same_shape)."""
    if isinstance(default, bool):
        return {"type": "boolean"}
    if isinstance(default, (int, float)):
        return {"type": "number"}
    if isinstance(default, str):
        return {"type": "string"}
    if isinstance(default, list):
        return {"type": "array", "items": var_schema(default[0])} if default else {"type": "array"}
    if isinstance(default, dict):
        properties = {k: var_schema(v) for k, v in default.items()}
        return {"type": "object", "properties": properties, "additionalProperties": False}
    return {"type": ["string", "null"]}


def select_parameter(parts: tuple[str, ...]) -> dict[str, Any]:
    """`?select=a,b`: a comma-separated list of the endpoint's parts (OpenAPI style form,
    explode false); absent means all of them. An empty value is no part (a 422): at least
    one item, each a part. (An endpoint without parts has no such parameter.)"""
    schema: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(parts)}}
    description = "Comma-separated parts to compute (others are not executed); absent: all. One of: " + ", ".join(parts)
    return {
        "name": "select", "in": "query", "required": False, "style": "form", "explode": False,
        "description": description, "schema": schema,
    }


def vars_parameter(settable: dict[str, Any], declared: dict[str, Any] | None = None) -> dict[str, Any]:
    """`?vars={...}`: a JSON object of the vars the endpoint lets a request set, each with
    the schema `meta.duckapi.vars` declares for it, else its default's JSON type."""
    declared = declared or {}
    properties = {k: declared.get(k) or var_schema(v) for k, v in settable.items()}
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if settable:
        description = "JSON object setting dbt vars for this request (compiled once per combination). Settable: " + ", ".join(
            f"{k} (default {json.dumps(v)})" for k, v in settable.items()
        )
    else:
        description = "No var may be set per request on this endpoint (its model's meta.duckapi.vars lists none)."
    return {"name": "vars", "in": "query", "required": False, "description": description,
            "content": {"application/json": {"schema": schema}}}


def _error_responses(*codes: str) -> dict[str, Any]:
    return {code: {"description": ERRORS[code], "content": {"application/json": {"schema": ERROR}}} for code in codes}


ERRORS = {
    "400": "Malformed body", "406": "Accept names no answer format this server writes",
    "413": "Body too large", "415": "Unsupported Content-Type or Content-Encoding",
    "422": "Invalid rows, parts or vars: names the input, row and field",
}
BUSY = {
    "description": "Busy: too many new vars compiling, or not enough memory for this request",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds (new vars compiling)"}},
    "content": {"application/json": {"schema": ERROR}},
}


def endpoint_paths(state: ProjectState) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, served in state.endpoints.items():
        pipeline = served.pipeline
        endpoint = pipeline.endpoint
        # No parts: no select parameter (any value would be refused).
        parameters = [select_parameter(served.parts)] if served.parts else []
        parameters.append(vars_parameter(state.settable_vars(path), state.var_schemas(path)))
        answer = {"type": "array", "items": {"type": "object"}}
        paths[path] = {
            "post": {
                "summary": f"Run dbt model {endpoint.output} over the posted rows",
                "description": "The posted rows stand in for "
                + ", ".join(f"`{i.name}`" for i in pipeline.inputs)
                + "; each input's contract (or seed/source types) is its row schema."
                + (" Reference data read from the warehouse: " + ", ".join(f"`{r.name}`" for r in pipeline.references) + "."
                   if pipeline.references else "")
                + (" Data-dependent: dbt renders " + ", ".join(f"`{m}`" for m in pipeline.introspection.dependent)
                   + " from each request's rows, so the answer's columns may differ from request to request."
                   if pipeline.introspection.dependent else ""),
                "operationId": f"run_{endpoint.output}",
                "parameters": parameters,
                "requestBody": request_body(pipeline),
                "responses": {
                    "200": {
                        "description": f"The rows of {endpoint.output}, ascending by their columns (Accept chooses the format)",
                        "content": {
                            "application/json": {"schema": answer},
                            "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
                            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    **_error_responses("400", "406", "413", "415", "422"),
                    "503": BUSY,
                },
            }
        }
        paths[path + "sql"] = {
            "get": {
                "summary": f"The SQL a request to {path} executes",
                "operationId": f"sql_{endpoint.output}",
                "parameters": parameters,
                "responses": {
                    "200": {"description": "SQL text", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    **_error_responses("422"),
                    "503": BUSY,
                },
            }
        }
    return paths


def extend(
    document: dict[str, Any], state: ProjectState, examples: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Add the project's endpoints to FastAPI's document of the fixed routes; `examples`
    (by path: the project's recorded requests and fitting unit tests, library/examples.py)
    become each JSON request body's examples."""
    document = dict(document)
    paths = endpoint_paths(state)
    for path, found in (examples or {}).items():
        body = paths.get(path, {}).get("post", {}).get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and found:
            body["examples"] = {
                example["name"]: {
                    "summary": f"{example['kind']} {example['name']}",
                    "value": next(iter(example["inputs"].values())) if len(example["inputs"]) == 1 else example["inputs"],
                }
                for example in found
            }
    document["paths"] = {**document.get("paths", {}), **paths}
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
