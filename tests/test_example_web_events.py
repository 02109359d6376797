"""The second example project, examples/web_events: web analytics over posted events.

`dbt build` of the project (its dbt tests included), its three endpoints in-process
against an independent plain-Python oracle (written below from the definitions in the
project's README, sharing no code with the SQL), bad input for its timestamp and double
columns, and the same project under a real `duckapi serve` on a loopback port.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import duckdb
import pytest
from fastapi.testclient import TestClient

from duckapi.dbt import project
from duckapi.api.app import create_app
from duckapi.settings import Settings
from tests.servers import Server, running_server, schemathesis_finds_nothing
from tests.conftest import settings_in

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "web_events"
SEED = EXAMPLE / "seeds" / "example_events.csv"
ENDPOINTS = ["/funnel/", "/revenue/", "/sessions/"]
SESSION_GAP = timedelta(minutes=30)
FUNNEL = ("view", "add_to_cart", "purchase")
JSON = {"content-type": "application/json"}

Row = Mapping[str, Any]


# --- the oracle: plain Python over the request rows -------------------------------


def _ts(row: Row) -> datetime:
    return datetime.fromisoformat(row["ts"])


def sessions(rows: Iterable[Row], gap: timedelta = SESSION_GAP) -> list[dict[str, Any]]:
    """Per user: a session starts at the first event and after every gap over `gap` (30 minutes)."""
    times: dict[str, list[datetime]] = defaultdict(list)
    for row in rows:
        times[row["user_id"]].append(_ts(row))
    answer = []
    for user in sorted(times):
        ts = sorted(times[user])
        starts = 1 + sum(1 for before, after in zip(ts, ts[1:]) if after - before > gap)
        answer.append({"user_id": user, "sessions": starts, "events": len(ts), "first_seen": ts[0], "last_seen": ts[-1]})
    return answer


def funnel(rows: Iterable[Row], steps: tuple[str, ...] = FUNNEL) -> list[dict[str, Any]]:
    """Walk each user's events in time order; events at one instant may be taken in any order."""
    events: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for row in rows:
        events[row["user_id"]].append((_ts(row), row["event_name"]))
    reached = [0] * len(steps)
    for user_events in events.values():
        done = 0
        for _, same_instant in groupby(sorted(user_events), key=lambda e: e[0]):
            names = {name for _, name in same_instant}
            while done < len(steps) and steps[done] in names:
                done += 1
        for step in range(done):
            reached[step] += 1
    return [{"step_number": i + 1, "step": step, "users": reached[i]} for i, step in enumerate(steps)]


def revenue(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Per calendar day with any event: purchases, their amounts summed, distinct buyers."""
    days: dict[date, list[Row]] = defaultdict(list)
    for row in rows:
        days[_ts(row).date()].append(row)
    answer = []
    for day in sorted(days):
        bought = [r for r in days[day] if r["event_name"] == "purchase"]
        answer.append({
            "day": day,
            "purchases": len(bought),
            "revenue": math.fsum(r["amount"] for r in bought if r.get("amount") is not None),
            "buyers": len({r["user_id"] for r in bought}),
        })
    return answer


ORACLES = {"/sessions/": sessions, "/funnel/": funnel, "/revenue/": revenue}


def _wire_timestamp(value: datetime) -> str:
    """How DuckDB's to_json writes a TIMESTAMP: a space, fraction only if any, zeros trimmed."""
    text = value.isoformat(sep=" ", timespec="microseconds")
    return text[:-7] if text.endswith(".000000") else text.rstrip("0")


def expected(path: str, rows: Iterable[Row], **params: Any) -> list[dict[str, Any]]:
    """The oracle's answer as the API writes it. Only revenue is compared approximately:
    a sum of doubles depends on the order of addition, which SQL does not fix."""
    answer = ORACLES[path](list(rows), **params)
    for row in answer:
        for key in ("first_seen", "last_seen"):
            if key in row:
                row[key] = _wire_timestamp(row[key])
        if "day" in row:
            row["day"] = row["day"].isoformat()
        if "revenue" in row:
            row["revenue"] = pytest.approx(row["revenue"], rel=1e-12, abs=1e-9)
    return answer


# --- payloads -----------------------------------------------------------------------


def seed_rows() -> list[dict[str, Any]]:
    """The project's seed as a request body (RFC 3339 timestamps, amount number or null)."""
    with SEED.open(newline="") as f:
        return [
            {
                "user_id": r["user_id"],
                "event_name": r["event_name"],
                "ts": r["ts"].replace(" ", "T"),
                "amount": float(r["amount"]) if r["amount"] else None,
            }
            for r in csv.DictReader(f)
        ]


USER_IDS = [
    "alice", "bob", "Alice", "🦆", "日本語", "", " ", 'quo"te', "it's", "tab\there", "zero\u0000byte",
    "'; drop view user_sessions; --", "e\u0301", "u1", "u10", "u2",
]
# The funnel's steps and names it must ignore (names are case-sensitive).
EVENT_NAMES = ["view", "add_to_cart", "purchase", "signup", "View", "purchase "]
# Nudges from an earlier event of the same user: ties, and either side of the 30-minute rule.
# (10 minutes: the gap of the vars variant below.)
NUDGES = [timedelta(0), SESSION_GAP, SESSION_GAP + timedelta(microseconds=1),
          SESSION_GAP - timedelta(microseconds=1), timedelta(microseconds=1), timedelta(minutes=31),
          timedelta(minutes=10), timedelta(minutes=10, microseconds=1)]


def random_events(rng: random.Random, n: int) -> list[dict[str, Any]]:
    users = rng.sample(USER_IDS, rng.randint(1, len(USER_IDS)))
    # Rare later steps in some payloads, so the funnel narrows rather than everyone finishing.
    weights = [rng.uniform(1, 5), rng.uniform(0.02, 3), rng.uniform(0.02, 3), 0.3, 0.2, 0.2]
    start = datetime(2026, 3, 28, 21, 0) + timedelta(minutes=rng.randrange(0, 120))
    span_minutes = rng.choice([90, 6 * 60, 3 * 24 * 60])  # dense or sparse; crosses midnight
    seen: dict[str, list[datetime]] = defaultdict(list)
    rows = []
    last: dict[str, tuple[datetime, str]] = {}
    for _ in range(n):
        user = rng.choice(users)
        if user in last and last[user][1] in FUNNEL[:-1] and rng.random() < 0.1:
            # the next funnel step at the very same instant (a one-click checkout)
            ts, name = last[user][0], FUNNEL[FUNNEL.index(last[user][1]) + 1]
        else:
            if seen[user] and rng.random() < 0.25:
                ts = rng.choice(seen[user]) + rng.choice(NUDGES)
            else:
                ts = start + timedelta(minutes=rng.randrange(span_minutes), seconds=rng.choice([0, 0, 0, 1, 59]))
            name = rng.choices(EVENT_NAMES, weights)[0]
        seen[user].append(ts)
        last[user] = (ts, name)
        if name == "purchase":
            amount = None if rng.random() < 0.2 else rng.choice([0.0, -4.5, round(rng.uniform(0.5, 900), 2)])
        else:
            amount = round(rng.uniform(1, 50), 2) if rng.random() < 0.1 else None  # not revenue
        row: dict[str, Any] = {"user_id": user, "event_name": name, "ts": ts.isoformat()}
        if amount is not None or rng.random() < 0.5:
            row["amount"] = amount  # a missing amount is null too
        rows.append(row)
    rng.shuffle(rows)  # the input's order means nothing
    return rows


# --- fixtures -----------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    settings: Settings
    manifest: dict[str, Any]


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Built:
    settings = settings_in(tmp_path_factory.mktemp("web_events"), project_dir=EXAMPLE)
    return Built(settings, project.build(settings))


@pytest.fixture(scope="module")
def client(web: Built) -> Iterator[TestClient]:
    with TestClient(create_app(web.settings, web.manifest)) as test_client:
        yield test_client


def post(client: TestClient, path: str, body: Any) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers=JSON)


# --- dbt build ----------------------------------------------------------------------


def test_dbt_build_runs_every_model_and_test(web: Built) -> None:
    results = json.loads((web.settings.resolved_target_path / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert all(s in ("success", "pass") for s in statuses.values()), statuses
    for node in ["seed.web_events.example_events", "model.web_events.web_events",
                 "model.web_events.sessionized_events", "model.web_events.user_sessions",
                 "model.web_events.funnel", "model.web_events.daily_revenue"]:
        assert node in statuses
    for singular in ["user_sessions_match_expected", "funnel_matches_expected", "daily_revenue_matches_expected",
                     "every_event_in_one_session", "funnel_never_grows"]:
        assert f"test.web_events.{singular}" in statuses
    assert sum(uid.startswith("test.") for uid in statuses) >= 25


def test_built_database_answers_the_seed_like_the_oracle(web: Built) -> None:
    views = {"/sessions/": "user_sessions", "/funnel/": "funnel", "/revenue/": "daily_revenue"}
    with duckdb.connect(str(web.settings.db_path), read_only=True) as con:
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables").fetchall())
        answers = {
            path: [json.loads(text) for (text,) in con.execute(f"select to_json(o)::varchar from {view} o order by o").fetchall()]
            for path, view in views.items()
        }
    assert all(kinds[view] == "VIEW" for view in views.values()) and kinds["web_events"] == "VIEW"
    for path, answer in answers.items():
        assert answer == expected(path, seed_rows())


# --- the endpoints, in-process ------------------------------------------------------

SEED_ANSWERS = {
    "/sessions/": [
        {"user_id": "alice", "sessions": 2, "events": 5, "first_seen": "2026-01-05 09:00:00", "last_seen": "2026-01-06 18:00:00"},
        {"user_id": "bob", "sessions": 1, "events": 3, "first_seen": "2026-01-05 10:00:00", "last_seen": "2026-01-05 10:10:00"},
        {"user_id": "carol", "sessions": 2, "events": 4, "first_seen": "2026-01-05 08:00:00", "last_seen": "2026-01-05 09:05:00"},
        {"user_id": "dave", "sessions": 2, "events": 3, "first_seen": "2026-01-05 23:50:00", "last_seen": "2026-01-06 01:00:00"},
        {"user_id": "erin", "sessions": 2, "events": 4, "first_seen": "2026-01-06 12:00:00", "last_seen": "2026-01-07 08:00:00"},
        {"user_id": "frank", "sessions": 1, "events": 2, "first_seen": "2026-01-07 07:00:00", "last_seen": "2026-01-07 07:10:00"},
        {"user_id": "gina", "sessions": 1, "events": 1, "first_seen": "2026-01-04 22:00:00", "last_seen": "2026-01-04 22:00:00"},
    ],
    "/funnel/": [
        {"step_number": 1, "step": "view", "users": 6},
        {"step_number": 2, "step": "add_to_cart", "users": 4},
        {"step_number": 3, "step": "purchase", "users": 3},
    ],
    "/revenue/": [
        {"day": "2026-01-04", "purchases": 0, "revenue": 0.0, "buyers": 0},
        {"day": "2026-01-05", "purchases": 3, "revenue": 42.5, "buyers": 3},
        {"day": "2026-01-06", "purchases": 1, "revenue": 19.99, "buyers": 1},
        {"day": "2026-01-07", "purchases": 1, "revenue": 5.01, "buyers": 1},
    ],
}


#: The example's models answer many rows, so its requests are never batched.
HEALTHY = {"status": "ok", "endpoints": ENDPOINTS, "batched": {"statements": 0, "requests": 0}}


def test_healthz_lists_the_three_endpoints(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert {key: health[key] for key in HEALTHY} == HEALTHY and set(health["project_digests"]) == set(ENDPOINTS)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_seed_answers_exactly(client: TestClient, path: str) -> None:
    response = post(client, path, seed_rows())
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == SEED_ANSWERS[path]  # the committed answer, wire format included
    assert response.json() == expected(path, seed_rows())  # and the oracle agrees with it


def test_wire_types(client: TestClient) -> None:
    rows = [{"user_id": "u", "event_name": "purchase", "ts": "2026-01-02T10:00:00.250000", "amount": 12}]
    assert post(client, "/sessions/", rows).text == (
        '[{"user_id":"u","sessions":1,"events":1,'
        '"first_seen":"2026-01-02 10:00:00.25","last_seen":"2026-01-02 10:00:00.25"}]'
    )
    # an integer amount is a double: it comes back as 12.0
    assert post(client, "/revenue/", rows).text == '[{"day":"2026-01-02","purchases":1,"revenue":12.0,"buyers":1}]'


@pytest.mark.parametrize("seed", range(24))
def test_random_payloads_match_the_oracle(client: TestClient, seed: int) -> None:
    rng = random.Random(seed)
    # Even seeds stay within duckapi's bound-parameter path (<= 256 rows), odd ones use Arrow.
    n = rng.randint(1, 256) if seed % 2 == 0 else rng.randint(257, 700)
    rows = random_events(rng, n)
    for path in ENDPOINTS:
        response = post(client, path, rows)
        assert response.status_code == 200, response.text
        assert response.json() == expected(path, rows), path


def test_thirty_minute_rule_edges(client: TestClient) -> None:
    at = datetime(2026, 1, 2, 23, 45)
    rows = [{"user_id": u, "event_name": "view", "ts": t.isoformat()} for u, t in [
        ("exactly", at), ("exactly", at + SESSION_GAP),                                  # one session
        ("over", at), ("over", at + SESSION_GAP + timedelta(microseconds=1)),             # two
        ("ties", at), ("ties", at), ("ties", at + timedelta(hours=2)), ("ties", at + timedelta(hours=2)),  # two
        ("unsorted", at + timedelta(minutes=50)), ("unsorted", at), ("unsorted", at + timedelta(minutes=25)),  # one
    ]]
    answer = {r["user_id"]: r["sessions"] for r in post(client, "/sessions/", rows).json()}
    assert answer == {"exactly": 1, "over": 2, "ties": 2, "unsorted": 1}


def test_funnel_needs_the_steps_in_time_order(client: TestClient) -> None:
    t = datetime(2026, 1, 2, 10)
    steps = {
        "in_order": [("view", 0), ("add_to_cart", 1), ("purchase", 2)],       # 3 steps
        "cart_first": [("add_to_cart", 0), ("view", 1), ("purchase", 2)],     # view only
        "late_view_then_cart": [("purchase", 0), ("view", 1), ("add_to_cart", 2)],  # 2 steps
        "same_instant": [("view", 5), ("add_to_cart", 5), ("purchase", 5)],   # 3 steps
        "no_view": [("add_to_cart", 0), ("purchase", 1)],                    # none
        "twice": [("view", 0), ("view", 1), ("add_to_cart", 2), ("add_to_cart", 3)],  # 2 steps, counted once
    }
    rows = [{"user_id": u, "event_name": name, "ts": (t + timedelta(minutes=m)).isoformat()}
            for u, events in steps.items() for name, m in events]
    assert post(client, "/funnel/", rows).json() == [
        {"step_number": 1, "step": "view", "users": 5},
        {"step_number": 2, "step": "add_to_cart", "users": 4},
        {"step_number": 3, "step": "purchase", "users": 2},
    ]


def test_offsets_are_converted_to_utc(client: TestClient) -> None:
    # The contract type is a timestamp without time zone: an offset is applied, then dropped.
    rows = [{"user_id": "u", "event_name": "view", "ts": ts}
            for ts in ["2026-01-02T10:00:00+02:00", "2026-01-02T08:00:00Z", "2026-01-02T08:00:00"]]
    for body in (rows, rows * 100):  # both the bound and the Arrow path
        answer = post(client, "/sessions/", body).json()
        assert answer == [{"user_id": "u", "sessions": 1, "events": len(body),
                           "first_seen": "2026-01-02 08:00:00", "last_seen": "2026-01-02 08:00:00"}]


def test_empty_list_is_200(client: TestClient) -> None:
    assert post(client, "/sessions/", []).json() == []
    assert post(client, "/revenue/", []).json() == []
    assert post(client, "/funnel/", []).json() == [
        {"step_number": i + 1, "step": step, "users": 0} for i, step in enumerate(FUNNEL)
    ]
    for path in ENDPOINTS:
        assert post(client, path, []).status_code == 200


def test_missing_or_null_amount_and_extra_fields_are_fine(client: TestClient) -> None:
    rows = [
        {"user_id": "a", "event_name": "purchase", "ts": "2026-01-02T10:00:00"},
        {"user_id": "b", "event_name": "purchase", "ts": "2026-01-02T11:00:00", "amount": None, "page": "/cart"},
        {"user_id": "c", "event_name": "purchase", "ts": "2026-01-02T12:00:00", "amount": 7.5, "meta": {"x": [1]}},
    ]
    assert post(client, "/revenue/", rows).json() == [{"day": "2026-01-02", "purchases": 3, "revenue": 7.5, "buyers": 3}]


GOOD = {"user_id": "u", "event_name": "view", "ts": "2026-01-02T10:00:00", "amount": None}
BAD_ROWS = [
    ({"ts": "yesterday"}, "ts", "RFC3339"),
    ({"ts": "2026-01-02"}, "ts", "RFC3339"),
    ({"ts": "2026-02-30T10:00:00"}, "ts", "RFC3339"),
    ({"ts": "10:00:00"}, "ts", "RFC3339"),
    ({"ts": 1767348000}, "ts", "got `int`"),
    ({"ts": None}, "ts", "got `null`"),
    ({"ts": ...}, "ts", "missing"),
    ({"amount": "12"}, "amount", "got `str`"),
    ({"amount": True}, "amount", "got `bool`"),
    ({"amount": [12]}, "amount", "got `array`"),
    ({"user_id": ...}, "user_id", "missing"),
    ({"user_id": 42}, "user_id", "got `int`"),
    ({"user_id": None}, "user_id", "got `null`"),
    ({"event_name": ...}, "event_name", "missing"),
    ({"event_name": None}, "event_name", "got `null`"),
]


def _bad(change: dict[str, Any]) -> dict[str, Any]:
    row = {**GOOD, **change}
    return {k: v for k, v in row.items() if v is not ...}


@pytest.mark.parametrize("change,field,words", BAD_ROWS)
def test_bad_row_is_422_naming_row_and_field(client: TestClient, change: dict[str, Any], field: str, words: str) -> None:
    rows = [GOOD, GOOD, _bad(change), GOOD]
    for path in ENDPOINTS:
        response = post(client, path, rows)
        assert response.status_code == 422, response.text
        error = response.json()
        assert error["row"] == 2 and error["field"] == field
        assert f"row 2, field '{field}'" in error["detail"] and words in error["detail"]


def test_good_request_after_bad_ones(client: TestClient) -> None:
    rng = random.Random(1234)
    for change, _, _ in BAD_ROWS:
        assert post(client, "/sessions/", [_bad(change)]).status_code == 422
        rows = random_events(rng, 30)
        assert post(client, "/sessions/", rows).json() == expected("/sessions/", rows)


def _strict_json(text: str) -> Any:
    def reject(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=reject)


def test_revenue_that_overflows_a_double_is_null(client: TestClient) -> None:
    # DuckDB's to_json would write Infinity, which is not JSON; duckapi answers null instead.
    rows = [{"user_id": "u", "event_name": "purchase", "ts": "2026-01-02T10:00:00", "amount": 1.7e308}] * 2
    response = post(client, "/revenue/", rows)
    assert response.status_code == 200
    assert _strict_json(response.text) == [{"day": "2026-01-02", "purchases": 2, "revenue": None, "buyers": 1}]


# --- per-request vars (duckapi compiles a variant of the project for each new set) ------

# One variant for all the good cases: a shorter session gap, and funnel steps that would be
# SQL if they were pasted rather than quoted (they must count as plain event names).
ODD_STEPS = ("view", "x' or 1=1) --", "it''s", "{{ 7 * 7 }}", "purchase")
VARS = {"session_gap_minutes": 10, "funnel_steps": list(ODD_STEPS)}


def post_with_vars(client: TestClient, path: str, rows: Any, dbt_vars: dict[str, Any]) -> Any:
    return client.post(path, params={"vars": json.dumps(dbt_vars)}, content=json.dumps(rows).encode(), headers=JSON)


def test_vars_change_the_gap_and_the_steps(client: TestClient) -> None:
    rng = random.Random(5)
    rows = random_events(rng, 300)
    t = datetime(2026, 1, 2, 9)
    for user, names in [("odd", ODD_STEPS), ("plain", FUNNEL)]:
        rows += [{"user_id": user, "event_name": name, "ts": (t + timedelta(minutes=12 * i)).isoformat()}
                 for i, name in enumerate(names)]
    gap = timedelta(minutes=10)
    sessions = {"session_gap_minutes": VARS["session_gap_minutes"]}  # each endpoint sets its own var
    assert post_with_vars(client, "/sessions/", rows, sessions).json() == expected("/sessions/", rows, gap=gap)
    # 10.0 is the integer 10 (as JSON Schema counts it), the same variant
    assert post_with_vars(client, "/sessions/", rows, {"session_gap_minutes": 10.0}).json() == expected(
        "/sessions/", rows, gap=gap)
    answer = post_with_vars(client, "/funnel/", rows, {"funnel_steps": VARS["funnel_steps"]}).json()
    assert answer == expected("/funnel/", rows, steps=ODD_STEPS)
    assert [r["step"] for r in answer] == list(ODD_STEPS) and answer[-1]["users"] >= 1
    # the default project is untouched by a variant
    assert post(client, "/sessions/", rows).json() == expected("/sessions/", rows)
    assert post(client, "/funnel/", rows).json() == expected("/funnel/", rows)


@pytest.mark.parametrize("path,dbt_vars,words", [
    ("/sessions/", {"session_gap_minutes": "10 minutes"}, "var session_gap_minutes must have the JSON type of its default 30"),
    ("/funnel/", {"funnel_steps": "view"}, "var funnel_steps must have the JSON type of its default"),
    ("/funnel/", {"nope": 1}, "var(s) nope cannot be set per request on /funnel/; settable: funnel_steps"),
    ("/funnel/", {"session_gap_minutes": 5}, "var(s) session_gap_minutes cannot be set per request on /funnel/"),
    ("/revenue/", {"funnel_steps": ["view"]}, "settable: none"),
    # the schemas meta.duckapi.vars declares (also the OpenAPI document's)
    ("/sessions/", {"session_gap_minutes": -1}, "var session_gap_minutes does not match its schema (meta.duckapi.vars): "
                                                "-1 is less than the minimum of 0"),
    ("/funnel/", {"funnel_steps": []}, "var funnel_steps does not match its schema"),
    ("/funnel/", {"funnel_steps": ["view", "view"]}, "has non-unique elements"),
])
def test_bad_vars_are_422(client: TestClient, path: str, dbt_vars: dict[str, Any], words: str) -> None:
    response = post_with_vars(client, path, seed_rows(), dbt_vars)
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]
    assert post(client, path, seed_rows()).json() == SEED_ANSWERS[path]


# --- a real server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(web: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`duckapi serve --project examples/web_events` in a child process on a free loopback port."""
    env = {"DUCKAPI_TARGET_PATH": str(tmp_path_factory.mktemp("web-serve-target"))}
    args = ["--project", str(EXAMPLE), "--db", str(web.settings.db_path)]
    with running_server(args, env, tmp_path_factory.mktemp("web-serve-log")) as server:
        yield server


def test_schemathesis_finds_nothing(server: Server, tmp_path: Path) -> None:
    schemathesis_finds_nothing(server, tmp_path)


def test_real_server_serves_the_example(server: Server) -> None:
    status, body = server.request("GET", "/healthz")
    assert status == 200 and {key: json.loads(body)[key] for key in HEALTHY} == HEALTHY
    status, body = server.request("POST", "/sessions/", json.dumps(seed_rows()).encode(), JSON)
    assert status == 200 and json.loads(body) == SEED_ANSWERS["/sessions/"]
    rows = random_events(random.Random(77), 400)
    for path in ENDPOINTS:
        status, body = server.request("POST", path, json.dumps(rows).encode(), JSON)
        assert status == 200 and json.loads(body) == expected(path, rows)
    status, body = server.request("POST", "/revenue/", json.dumps([{"user_id": "u", "ts": "yesterday"}]).encode(), JSON)
    assert status == 422 and json.loads(body)["row"] == 0
