"""Engines run a compiled pipeline; they never parse HTTP and never import dbt."""
