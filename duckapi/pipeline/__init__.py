"""The SQL side: from a compiled manifest, the DAG between a served model and its inputs as
one statement (statement.py); how that SQL finds its relations (relations.py); the types an
input may have (contract.py); which models dbt rendered from the data (introspection.py)."""

from duckapi.pipeline.statement import (
    INPUT_RELATION, Column, Dialect, Endpoint, Input, Introspection, Node, Pipeline, PipelineError, Probe, Reference,
    Rows, Schema, build_pipeline, build_pipelines, cte_name, digest, discover_endpoints, endpoint_path, find_endpoint,
    input_relation, provenance, quote_identifier,
)

__all__ = [
    "INPUT_RELATION", "Column", "Dialect", "Endpoint", "Input", "Introspection", "Node", "Pipeline", "PipelineError",
    "Probe", "Reference", "Rows", "Schema", "build_pipeline", "build_pipelines", "cte_name", "digest",
    "discover_endpoints", "endpoint_path", "find_endpoint", "input_relation", "provenance", "quote_identifier",
]
