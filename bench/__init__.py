"""Load benchmark: duckapi against the original blog post's FastAPI app (`python -m bench.load`)."""
