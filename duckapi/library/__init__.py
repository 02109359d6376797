"""The Python API's modules; the public names are re-exported from `duckapi`."""
