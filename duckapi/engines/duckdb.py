"""The pipeline in an in-process DuckDB, one cursor per execution.

One in-memory database is shared by the process; each execution opens its own
cursor (a DuckDB connection: they are not thread-safe), registers the request's
Arrow table on it under the pipeline's input name, runs the one statement, and
closes it. Registration is per connection, so concurrent requests never see each
other's rows, and nothing is created in the shared catalog. The dbt-built file is
never opened here.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

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

    @contextmanager
    def _cursor(self, table: pa.Table) -> Iterator[duckdb.DuckDBPyConnection]:
        cursor = self._db.cursor()
        try:
            cursor.register(INPUT_RELATION, table)
            yield cursor
        finally:
            cursor.close()

    def execute_json(self, pipeline: Pipeline, table: pa.Table) -> bytes:
        """The output rows as a JSON array, serialised by DuckDB itself (exact integers)."""
        with self._cursor(table) as cursor:
            rows = cursor.execute(self._statement(pipeline, "json")).fetchall()
        return b"[" + b",".join(row[0].encode() for row in rows) + b"]"

    def execute_arrow(self, pipeline: Pipeline, table: pa.Table) -> pa.Table:
        with self._cursor(table) as cursor:
            return cursor.sql(self._statement(pipeline, "arrow")).to_arrow_table()

    def close(self) -> None:
        self._db.close()
