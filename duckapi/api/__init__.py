"""HTTP layer: decodes requests into Arrow, encodes answers; never builds SQL."""
