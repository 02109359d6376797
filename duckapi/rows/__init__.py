"""Rows in: bodies and files of every format, and Python objects, to one Arrow table per
input in the input's contract schema. Shared by the Python API, the HTTP app and batch."""
