"""The web page at `GET /` (duckapi/web/), used as a person would: Debian's Chromium,
headless, driven by Playwright against a real `duckapi serve`.

What is drawn is compared with what the API answers for the same rows: the bars of
the group sums (count and order of heights), every table cell, a dropped Parquet file
and a chosen Arrow file, a part selection, a bad row's error next to the row, API keys,
and a project with two inputs (the shop). No request may leave the server's origin and
no console error may occur (the page's Content-Security-Policy would report one).

One browser for the module, one tab for the bundled project's tests, one server per
kind, started when first needed; every
file written goes to pytest's temp folders, except the screenshot for the docs
(docs/images/web-page.png), written when missing or with DUCKAPI_UPDATE_SCREENSHOT=1.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest

from duckapi.web.routes import plotly_js
from tests.conftest import Built
from tests.servers import Server, running_server
from tests.shop_support import SHOP, shop_build

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parent.parent
SCREENSHOT = REPO / "docs" / "images" / "web-page.png"
SEED = REPO / "duckapi_dbt" / "seeds" / "example_data.csv"
KEY = "k-web-7d1e0c55a9b2"
LISTS = ("group_sums", "group_sets", "group_event_value_histogram", "group_histogram", "hist_event_values",
         "hist_group_event_values", "hist_groups")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is missing: bash scripts/ensure-chromium.sh")


def animal_rows() -> list[dict[str, Any]]:
    with SEED.open(newline="", encoding="utf-8") as handle:
        return [{"group_id": r["group_id"], "event_value": int(r["event_value"])} for r in csv.DictReader(handle)]


def post_json(server: Server, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    status, raw = server.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})
    return status, json.loads(raw)


def cell(value: Any) -> str:
    """A value as the page's table writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def expected_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    names = list(rows[0]) if rows else []
    return names, [[cell(row[n]) for n in names] for row in rows]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def server(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("web-bundled")
    with running_server([], built.server_env(), folder) as running:
        yield running


@pytest.fixture(scope="module")
def keyed_server(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("web-keys")
    keys = folder / "keys.txt"
    keys.write_text(f"{KEY}\n")
    with running_server([], built.server_env(DUCKAPI_API_KEYS_FILE=str(keys)), folder) as running:
        yield running


@pytest.fixture(scope="module")
def shop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("web-shop")
    settings = shop_build().settings
    env = {"DUCKAPI_PROJECT_DIR": str(settings.project_dir), "DUCKAPI_DB_PATH": str(settings.db_path),
           "DUCKAPI_TARGET_PATH": str(settings.resolved_target_path)}
    with running_server([], env, folder) as running:
        yield running


class Visit:
    """One browser tab on a server: requests to any other origin are aborted and
    recorded, console errors and page errors recorded; both must stay empty."""

    def __init__(self, browser: Any, server: Server) -> None:
        self.origin = f"http://127.0.0.1:{server.port}"
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        self.foreign: list[str] = []
        self.problems: list[str] = []
        self.context.route("**/*", self._route)
        self.context.set_default_timeout(10_000)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("response", self._response)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.goto(self.origin + "/")

    def _console(self, message: Any) -> None:
        # Chromium logs each 4xx answer as a console error; those the tests cause are expected
        # (and an asset that fails to load is caught by _response).
        if message.type == "error" and not message.text.startswith("Failed to load resource: the server responded"):
            self.problems.append(f"console: {message.text}")

    def _response(self, response: Any) -> None:
        if response.request.method == "GET" and response.status >= 400 and not response.url.endswith("/models"):
            self.problems.append(f"GET {response.url}: {response.status}")

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()

    def paste(self, input_name: str, text: str) -> None:
        self.page.fill(f"#rows-{input_name}", text)

    def send(self) -> None:
        self.page.click("#send")
        self.page.wait_for_selector("#stats [data-stat=status]")

    def stat(self, name: str) -> str:
        return self.page.inner_text(f"#stats [data-stat={name}]")

    def table(self, name: str) -> tuple[list[str], list[list[str]]]:
        table = self.page.locator(f"table[data-table='{name}']")
        heads = table.locator("thead th").all_inner_texts()
        rows = [row.locator("td").all_inner_texts() for row in table.locator("tbody tr").all()]
        return [h.strip() for h in heads], rows

    def bar_heights(self, name: str, kind: str = "bar") -> list[float]:
        paths = self.page.locator(f"[data-list='{name}'] [data-chart={kind}] g.point path")
        return [paths.nth(i).bounding_box()["height"] for i in range(paths.count())]

    def check(self) -> None:
        foreign, problems = self.foreign[:], self.problems[:]
        self.foreign.clear()
        self.problems.clear()
        assert not foreign, f"requests left the server: {foreign}"
        assert not problems, problems

    def close(self) -> None:
        self.context.close()
        self.check()


@pytest.fixture(scope="module")
def bundled_tab(browser: Any, server: Server) -> Iterator[Visit]:
    """One tab for the bundled project's tests (loading Plotly takes a second or two)."""
    tab = Visit(browser, server)
    yield tab
    tab.close()


@pytest.fixture
def visit(bundled_tab: Visit) -> Iterator[Visit]:
    """The bundled tab as new: the endpoint chosen again (inputs, parts and answer cleared)."""
    page = bundled_tab.page
    page.wait_for_selector("#endpoint option[value='/analyse_data/']", state="attached")
    page.select_option("#endpoint", "/analyse_data/")
    page.dispatch_event("#endpoint", "change")
    yield bundled_tab
    bundled_tab.check()


def order_of(values: list[float]) -> list[int]:
    return sorted(range(len(values)), key=lambda i: values[i])


# ---------------------------------------------------------------- HTTP


def test_the_page_and_its_assets_are_served_by_duckapi(server: Server) -> None:
    status, page = server.request("GET", "/")
    assert status == 200 and b'<script src="web/plotly.min.js"' in page and b"http" not in page.split(b"<body>")[0]
    status, library = server.request("GET", "/web/plotly.min.js")
    installed = plotly_js()
    assert status == 200 and installed is not None and "site-packages" in str(installed)
    assert hashlib.sha256(library).digest() == hashlib.sha256(installed.read_bytes()).digest()
    for path in ("/web/app.js", "/web/app.css"):
        assert server.request("GET", path)[0] == 200
    assert server.request("HEAD", "/")[0] == 200
    assert server.request("POST", "/", b"[]")[0] == 405
    document = json.loads(server.request("GET", "/openapi.json")[1])
    assert not {"/", "/web/app.js", "/web/app.css", "/web/plotly.min.js"} & set(document["paths"])


# ---------------------------------------------------------------- the bundled project


def test_the_animal_example_is_drawn_as_the_api_answers_it(visit: Visit, server: Server) -> None:
    page = visit.page
    page.wait_for_selector("#endpoint option[value='/analyse_data/']", state="attached")
    page.get_by_role("button", name="Paste the animal example").click()
    assert json.loads(page.input_value("#rows-group_event_values")) == animal_rows()  # the seed's nine rows
    visit.send()
    status, answer = post_json(server, "/analyse_data/", animal_rows())
    assert status == 200
    assert visit.stat("status") == "HTTP 200" and visit.stat("rows-in") == "9 rows in"
    assert visit.stat("rows-out").startswith("1 row out") and visit.stat("time").endswith(" ms")
    assert page.locator("section.list").evaluate_all("s => s.map(x => x.dataset.list)") == list(answer[0])

    sums = [row["value_sum"] for row in answer[0]["group_sums"]]
    heights = visit.bar_heights("group_sums")
    assert len(heights) == 3 and order_of(heights) == order_of(sums)
    labels = page.locator("[data-list='group_sums'] [data-chart=bar] .xtick text").evaluate_all("ts => ts.map(t => t.textContent)")
    assert labels == [row["group_id"] for row in answer[0]["group_sums"]]
    counts = [row["group_count"] for row in answer[0]["group_histogram"]]
    assert order_of(visit.bar_heights("group_histogram")) == order_of(counts)
    values = answer[0]["hist_event_values"]
    assert len(visit.bar_heights("hist_event_values", "histogram")) == len(values)
    heatmap = page.locator("[data-list='group_event_value_histogram'] [data-chart=heatmap]")
    drawn = heatmap.evaluate("box => ({x: box.data[0].x, y: box.data[0].y, z: box.data[0].z})")
    cells = {(r["group_id"], str(r["event_value"])): r["group_event_value_count"] for r in answer[0]["group_event_value_histogram"]}
    assert {(y, x): z for y, row in zip(drawn["y"], drawn["z"]) for x, z in zip(drawn["x"], row) if z} == cells
    assert page.locator("[data-list='group_sets'] .chart").count() == 0  # lists of values: a table only

    for name in LISTS:
        assert visit.table(name) == expected_table(answer[0][name]), name

    shot = page.screenshot(full_page=True)
    Path("/tmp/shot.png").write_bytes(shot)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">I", shot[16:20])[0] == 1280
    if os.environ.get("DUCKAPI_UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(shot)

    page.click("table[data-table='group_sums'] button[data-column='value_sum']")
    assert [r[1] for r in visit.table("group_sums")[1]] == [str(v) for v in sorted(sums)]
    page.click("table[data-table='group_sums'] button[data-column='value_sum']")
    assert [r[1] for r in visit.table("group_sums")[1]] == [str(v) for v in sorted(sums, reverse=True)]
    assert page.get_attribute("table[data-table='group_sums'] th:nth-child(2)", "aria-sort") == "descending"



def _drop(page: Any, selector: str, name: str, data: bytes, media_type: str) -> None:
    transfer = page.evaluate_handle(
        """([name, bytes, type]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, {type}));
            return transfer;
        }""", [name, list(data), media_type])
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_a_dropped_parquet_file_and_a_chosen_arrow_file(visit: Visit, server: Server, tmp_path: Path) -> None:
    rows = [{"group_id": f"g{i % 4}", "event_value": i * 7 - 40} for i in range(50)]
    table = pa.Table.from_pylist(rows, schema=pa.schema([("group_id", pa.string()), ("event_value", pa.int64())]))
    parquet = io.BytesIO()
    pq.write_table(table, parquet, row_group_size=20)  # three row groups
    _, answer = post_json(server, "/analyse_data/", rows)
    page = visit.page
    page.wait_for_selector("#rows-group_event_values")
    _drop(page, "fieldset[data-input='group_event_values']", "events.parquet", parquet.getvalue(), "")
    assert "events.parquet" in page.inner_text("#file-info-group_event_values")
    visit.send()
    assert visit.stat("status") == "HTTP 200" and visit.stat("rows-in") == "50 rows in"
    for name in LISTS:
        assert visit.table(name) == expected_table(answer[0][name]), name

    arrow = tmp_path / "events.arrow"  # the IPC file format: the page sends it as a stream
    with pa.ipc.new_file(str(arrow), table.schema) as writer:
        for batch in table.to_batches(max_chunksize=16):
            writer.write_batch(batch)
    page.set_input_files("#file-group_event_values", str(arrow))
    assert "events.arrow" in page.inner_text("#file-info-group_event_values")
    visit.send()
    assert visit.stat("status") == "HTTP 200" and visit.stat("rows-in") == "50 rows in"
    assert visit.table("group_sums") == expected_table(answer[0]["group_sums"])


def test_a_part_selection(visit: Visit, server: Server) -> None:
    page = visit.page
    page.get_by_role("button", name="Paste the animal example").click()
    page.get_by_label("group_sums").check()
    page.get_by_label("hist_event_values").check()
    assert page.inner_text("#request-line") == "POST /analyse_data/?select=group_sums,hist_event_values"
    visit.send()
    _, answer = post_json(server, "/analyse_data/?select=group_sums,hist_event_values", animal_rows())
    assert list(answer[0]) == ["group_sums", "hist_event_values"]
    assert page.locator("section.list").evaluate_all("s => s.map(x => x.dataset.list)") == list(answer[0])
    assert len(visit.bar_heights("group_sums")) == 3
    for name in answer[0]:
        assert visit.table(name) == expected_table(answer[0][name])


def test_a_bad_row_is_shown_with_the_apis_message_next_to_the_row(visit: Visit, server: Server) -> None:
    rows: list[dict[str, Any]] = [{"group_id": "a", "event_value": 1}, {"group_id": "b", "event_value": 2},
                                  {"group_id": "c", "event_value": "many"}]
    status, error = post_json(server, "/analyse_data/", rows)
    assert status == 422 and error["row"] == 2 and error["field"] == "event_value"
    page = visit.page
    visit.paste("group_event_values", json.dumps(rows, indent=1))
    visit.send()
    assert visit.stat("status") == "HTTP 422"
    box = page.locator("fieldset[data-input='group_event_values'] .input-error")
    assert box.get_attribute("role") == "alert"
    assert box.locator(".detail").inner_text() == f"HTTP 422: {error['detail']}"
    assert box.locator("[data-fact=row]").inner_text() == "2" and box.locator("[data-fact=field]").inner_text() == "event_value"
    assert box.locator(".bad-row td").all_inner_texts() == ["c", "many"]
    assert box.locator(".bad-row mark").inner_text() == "many"
    assert page.locator("section.list").count() == 0

    csv_rows = "group_id,event_value\na,1\n\"b, with a comma\",1.5\n"  # a CSV integer column refuses 1.5
    status, error = server.request("POST", "/analyse_data/", csv_rows.encode(), {"Content-Type": "text/csv"})
    error = json.loads(error)
    visit.paste("group_event_values", csv_rows)
    visit.send()
    assert box.locator(".detail").inner_text() == f"HTTP {status}: {error['detail']}"
    assert box.locator(".bad-row td").all_inner_texts() == ["b, with a comma", "1.5"]

    page.get_by_role("button", name="Paste the animal example").click()
    visit.send()
    assert visit.stat("status") == "HTTP 200" and box.is_hidden()


# ---------------------------------------------------------------- API keys


def test_with_api_keys_the_page_asks_for_a_key_and_keeps_it_in_the_tab(browser: Any, keyed_server: Server) -> None:
    status, missing = post_json(keyed_server, "/analyse_data/", animal_rows())
    assert status == 401
    tab = Visit(browser, keyed_server)
    page = tab.page
    message = page.locator("#key-message")
    message.wait_for()
    assert message.inner_text() == f"This server needs an API key (401): {missing['detail']}"
    assert page.is_hidden("#request-form")
    page.get_by_label("API key (kept in this tab only)").fill("not-the-key")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('key-message').textContent.includes('invalid API key')")
    assert page.is_hidden("#request-form")
    page.get_by_label("API key (kept in this tab only)").fill(KEY)
    page.get_by_role("button", name="Use this key").click()
    page.wait_for_selector("#request-form:not([hidden])")
    assert page.evaluate("[sessionStorage.getItem('duckapi.api-key'), localStorage.length]") == [KEY, 0]
    page.get_by_role("button", name="Paste the animal example").click()
    tab.send()
    _, answer = post_json(keyed_server, "/analyse_data/", animal_rows(), {"Authorization": f"Bearer {KEY}"})
    assert tab.stat("status") == "HTTP 200" and len(tab.bar_heights("group_sums")) == 3
    assert tab.table("group_sums") == expected_table(answer[0]["group_sums"])

    page.get_by_role("button", name="Forget the key").click()
    page.wait_for_selector("#request-form[hidden]", state="attached")
    assert page.evaluate("sessionStorage.getItem('duckapi.api-key')") is None
    other = tab.context.new_page()  # a new tab of the same session does not share sessionStorage
    other.goto(tab.origin + "/")
    other.wait_for_selector("#key-message:has-text('401')")
    other.close()
    tab.close()


# ---------------------------------------------------------------- any project: the shop


def _shop_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The shop's example seeds in the inputs' column names."""
    def seed(name: str) -> list[dict[str, str]]:
        with (SHOP / "seeds" / f"{name}.csv").open(newline="") as handle:
            return list(csv.DictReader(handle))

    orders = [{"order_id": int(r["id"]), "customer_id": int(r["customer_id"]), "product_id": int(r["product_id"]),
               "quantity": int(r["quantity"]), "order_date": r["ordered_on"]} for r in seed("example_orders")]
    payments = [{"payment_id": int(r["id"]), "order_id": int(r["order_id"]), "payment_method": r["method"],
                 "amount_cents": int(r["amount_cents"])} for r in seed("example_payments")]
    return orders, payments


def test_any_project_two_inputs_and_generic_charts(browser: Any, shop_server: Server) -> None:
    orders, payments = _shop_rows()
    orders_csv = io.StringIO()
    writer = csv.DictWriter(orders_csv, fieldnames=list(orders[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(orders)
    tab = Visit(browser, shop_server)
    page = tab.page
    page.wait_for_selector("#endpoint option", state="attached")
    assert page.locator("#endpoint option").evaluate_all("o => o.map(x => x.value)") == ["/customers/", "/orders/"]
    for path in ("/orders/", "/customers/"):
        page.select_option("#endpoint", path)
        assert page.locator("fieldset.input legend").all_inner_texts() == ["Input stg_orders", "Input stg_payments"]
        assert page.locator("button.example").count() == 0 and page.is_hidden("#parts")
        tab.paste("stg_orders", orders_csv.getvalue())
        tab.paste("stg_payments", "\n".join(json.dumps(p) for p in payments))  # NDJSON
        tab.send()
        _, answer = post_json(shop_server, path, {"stg_orders": orders, "stg_payments": payments})
        model = "order_totals" if path == "/orders/" else "customer_orders"
        assert tab.stat("status") == "HTTP 200"
        assert tab.stat("rows-in") == f"{len(orders) + len(payments)} rows in"
        assert tab.stat("rows-out") == f"{len(answer)} rows out"
        assert tab.table(model) == expected_table(answer)
        date = "order_date" if path == "/orders/" else "first_order_date"
        line = page.locator(f"[data-list='{model}'] [data-chart=line]")
        x = line.evaluate("box => box.data[0].x")
        assert x == sorted(row[date] for row in answer)
        assert "order_id" not in line.evaluate("box => box.data.map(t => t.name)")  # keys are not measures

    bad = [dict(payments[0]), *payments[1:]]
    bad[0]["amount_cents"] = "lots"
    tab.paste("stg_payments", json.dumps(bad))
    tab.send()
    _, error = post_json(shop_server, "/customers/", {"stg_orders": orders, "stg_payments": bad})
    box = page.locator("fieldset[data-input='stg_payments'] .input-error")
    assert error["input"] == "stg_payments" and box.locator("[data-fact=input]").inner_text() == "stg_payments"
    assert box.locator("[data-fact=row]").inner_text() == "0" and box.locator(".bad-row mark").inner_text() == "lots"
    tab.close()


# ---------------------------------------------------------------- accessibility

#: WCAG 2 contrast of each visible text element against the background it is drawn on
#: (the first non-transparent background up the tree), and the form controls without a name.
AUDIT = """() => {
  const lum = (rgb) => {
    const [r, g, b] = rgb.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const rgba = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length || el.closest("svg, [hidden]")) continue;
    const style = getComputedStyle(el);
    const [a, b] = [lum(rgba(style.color).slice(0, 3)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && +style.fontWeight >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push(`${el.tagName} "${el.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
  }
  const unnamed = [...document.querySelectorAll("input, select, textarea, button")]
    .filter(c => c.getClientRects().length && !(c.labels && c.labels.length) && !c.getAttribute("aria-label")
                 && !c.getAttribute("aria-labelledby") && !c.textContent.trim())
    .map(c => c.outerHTML.slice(0, 80));
  return {low, unnamed};
}"""


def test_keyboard_alone_sends_the_example_and_every_text_has_contrast(browser: Any, server: Server) -> None:
    """A keyboard user: Tab to the example button, Enter, Tab to Send, Enter; then every
    control has a name and every visible text a WCAG AA contrast (4.5:1, 3:1 when large)."""
    visit = Visit(browser, server)
    page = visit.page
    page.wait_for_selector("#endpoint option[value='/analyse_data/']", state="attached")

    def tab_to(test: str) -> None:
        for _ in range(60):
            page.keyboard.press("Tab")
            if page.evaluate(f"() => {{ const e = document.activeElement; return {test}; }}"):
                return
        raise AssertionError(f"Tab never reached an element where {test}")

    tab_to("e.textContent === 'Paste the animal example'")
    page.keyboard.press("Enter")
    assert json.loads(page.input_value("#rows-group_event_values")) == animal_rows()
    tab_to("e.id === 'send'")
    page.keyboard.press("Enter")
    page.wait_for_selector("#stats [data-stat=status]")
    assert visit.stat("status") == "HTTP 200"
    page.wait_for_selector("table[data-table='group_sums'] tbody tr")
    audit = page.evaluate(AUDIT)
    assert audit == {"low": [], "unnamed": []}
    # The audit itself finds what it looks for: pale text, a control without a label.
    page.evaluate("""() => { const p = document.createElement("p"); p.textContent = "pale"; p.style.color = "#bbb";
                             document.body.append(p, document.createElement("input")); }""")
    audit = page.evaluate(AUDIT)
    assert [entry.split(":")[0] for entry in audit["low"]] == ['P "pale"'] and len(audit["unnamed"]) == 1
    visit.close()


# ---------------------------------------------------------------- examples from the project


def test_a_projects_own_examples_are_one_click_away(browser: Any, tmp_path: Path) -> None:
    """A project other than the bundled one does not start empty: its unit tests whose given
    rows fit an endpoint's inputs, and its recorded requests (tests/duckapi/), are offered
    as examples by `/models`, the OpenAPI document and the page, where one click fills the
    inputs, parts and vars; the answer is the API's."""
    from duckapi.dbt import project as dbt_project
    from tests.conftest import settings_in

    folder = tmp_path / "web_events"
    shutil.copytree(Path(SHOP).parent / "web_events", folder, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    settings = settings_in(tmp_path, project_dir=folder)
    dbt_project.build(settings)
    recorded = folder / "tests" / "duckapi" / "two_sessions.json"
    recorded.parent.mkdir(parents=True)
    rows = [{"user_id": "a", "event_name": "view", "ts": "2026-03-01T10:00:00", "amount": None},
            {"user_id": "a", "event_name": "view", "ts": "2026-03-01T12:00:00", "amount": None}]
    recorded.write_text(json.dumps({"endpoint": "/sessions/", "inputs": {"web_events": rows}, "select": [],
                                    "vars": {"session_gap_minutes": 30}, "expected": []}))
    env = {"DUCKAPI_PROJECT_DIR": str(folder), "DUCKAPI_DB_PATH": str(settings.db_path),
           "DUCKAPI_TARGET_PATH": str(tmp_path / "serve-target")}
    with running_server([], env, tmp_path) as server:
        _, listing = server.request("GET", "/models")
        examples = {e["path"]: e["examples"] for e in json.loads(listing)}
        [unit] = examples["/revenue/"]
        assert (unit["name"], unit["kind"]) == ("revenue_counts_only_purchases", "unit test")
        [pinned] = examples["/sessions/"]
        assert pinned["kind"] == "recorded request" and pinned["vars"] == {"session_gap_minutes": 30}
        _, document = server.request("GET", "/openapi.json")
        body = json.loads(document)["paths"]["/revenue/"]["post"]["requestBody"]["content"]["application/json"]
        assert body["examples"]["revenue_counts_only_purchases"]["value"] == unit["inputs"]["web_events"]

        tab = Visit(browser, server)
        page = tab.page
        page.wait_for_selector("#endpoint option", state="attached")
        page.select_option("#endpoint", "/revenue/")
        page.get_by_role("button", name="revenue_counts_only_purchases (unit test)").click()
        tab.send()
        _, answer = post_json(server, "/revenue/", unit["inputs"]["web_events"])
        assert answer[0] == {"day": "2026-03-01", "purchases": 2, "revenue": 20.5, "buyers": 2}
        assert tab.stat("status") == "HTTP 200"

        def numbers(table: tuple[list[str], list[list[str]]]) -> Any:  # the page writes 0.0 as 0, as JS does
            def value(text: str) -> Any:
                try:
                    return float(text)
                except ValueError:
                    return text
            return table[0], [[value(c) for c in row] for row in table[1]]

        assert numbers(tab.table("daily_revenue")) == numbers(expected_table(answer))
        page.select_option("#endpoint", "/sessions/")
        page.get_by_role("button", name="two_sessions (recorded request)").click()
        assert page.input_value("#var-session_gap_minutes") == "30"
        tab.close()
