{{ duckapi_no_rows() }}
