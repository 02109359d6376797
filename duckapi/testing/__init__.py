"""`duckapi test`: a project's own dbt unit tests, run through duckapi's path.

  unit.py     the `unit_tests:` of a compiled manifest as pipelines over their given rows,
              run on an engine, and their answers compared as dbt compares them
  command.py  the typer command: selection, one line per test, the closing count, JUnit XML
"""
