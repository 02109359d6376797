"""The dbt side: dbt builds and compiles the project (project.py, in a warm child process:
child.py), a compile is reused while its inputs are unchanged (compiled.py), the profile is
read and re-pointed (profiles.py), and the DuckDB file dbt built is read through private
snapshots (warehouse.py). The only package that runs dbt."""
