"""duckapi: serve a dbt project as a real-time analytics API over DuckDB."""

__version__ = "0.1.0"
