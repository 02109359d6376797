"""The original blog post's FastAPI app, kept faithful so it is the baseline to beat.

Its flaws are kept on purpose: a blocking DuckDB call inside an `async def`
handler (one request at a time per worker), a new connection per request, the
`::int` cast (values outside int32 give a 500), and pandas' `to_json`.
It writes inside a transaction and rolls back, so give it its own copy of the
dbt-built file via BASELINE_DB_PATH (keep the file stem, e.g. dev.duckdb: it is
the catalog name dbt compiled into the views).

DuckDB 2.0 note: the calls below (`begin`, `execute`, `query(...).to_df()`,
`rollback`, and the pandas replacement scan of the local `group_event_values_df`)
all still work unchanged; nothing had to be adapted.
"""

import os

import duckdb
import pandas as pd
from fastapi import FastAPI, Response
from pydantic import BaseModel, TypeAdapter

DB_PATH = os.environ.get("BASELINE_DB_PATH", "dev.duckdb")

app = FastAPI()


class GroupEventValue(BaseModel):
    group_id: str
    event_value: int


Entries = list[GroupEventValue]


@app.post("/analyse_data/")
async def analyse_data(entries: Entries):
    if len(entries) == 0:
        return []
    # Run the datapipeline over the list of entries
    entries_adapter = TypeAdapter(Entries)
    group_event_values_df = pd.DataFrame(entries_adapter.dump_python(entries))  # noqa: F841 (read by name by DuckDB)
    duck = duckdb.connect(DB_PATH)
    t = duck.begin()

    # heart of the method
    # replace view of the example data
    t.execute('create or replace view group_event_values as \
        select group_id, event_value::int event_value from group_event_values_df')
    # fetch results based on data from group_event_values_df
    result = t.query('select * from analysis').to_df().to_json(orient='records')
    t.rollback()  # roll back transaction to leave db in a good state
    return Response(content=str(result), media_type='application/json')
