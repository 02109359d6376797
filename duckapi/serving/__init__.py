"""What a process serves: the compiled project's state, variants and reloads (service.py),
and data-dependent pipelines rendered by dbt over a request's rows (rendering.py)."""
