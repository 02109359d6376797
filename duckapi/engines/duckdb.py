"""The pipeline in an in-process DuckDB, one cursor per execution.

One in-memory database is shared by the process; each execution opens its own
cursor (a DuckDB connection: they are not thread-safe), registers the request's
Arrow table on it under the pipeline's input name, runs the one statement, and
closes it. Registration is per connection, so concurrent requests never see each
other's rows, and nothing is created in the shared catalog. The dbt-built file is
never opened here.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from duckapi.pipeline import INPUT_RELATION, Pipeline
from duckapi.settings import Settings


class DuckDBEngine:
    def __init__(self, settings: Settings) -> None:
        config: dict[str, str | int] = {}
        if settings.duckdb_threads:
            config["threads"] = settings.duckdb_threads
        if settings.duckdb_memory_limit:
            config["memory_limit"] = settings.duckdb_memory_limit
        self._db = duckdb.connect(":memory:", config=config)
        self._statements: dict[tuple[str, str], str] = {}

    def _statement(self, pipeline: Pipeline, kind: str) -> str:
        key = (pipeline.endpoint.path, kind)
        sql = self._statements.get(key)
        if sql is None:
            projection = "to_json(o)::varchar" if kind == "json" else "*"
            sql = self._statements[key] = pipeline.select_sql(projection)
        return sql

    def _run(self, pipeline: Pipeline, table: pa.Table, kind: str) -> duckdb.DuckDBPyConnection:
        cursor = self._db.cursor()
        cursor.register(INPUT_RELATION, table)
        return cursor.execute(self._statement(pipeline, kind))

    def execute_json(self, pipeline: Pipeline, table: pa.Table) -> bytes:
        """The output rows as a JSON array, serialised by DuckDB itself (exact integers)."""
        cursor = self._run(pipeline, table, "json")
        try:
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return b"[" + b",".join(row[0].encode() for row in rows) + b"]"

    def execute_arrow(self, pipeline: Pipeline, table: pa.Table) -> pa.Table:
        cursor = self._run(pipeline, table, "arrow")
        try:
            return cursor.to_arrow_table()
        finally:
            cursor.close()

    def close(self) -> None:
        self._db.close()
