// duckapi's web page: lists the served endpoints (GET models), posts rows to one and
// shows the answer as charts (Plotly, served by duckapi from the installed package)
// and sortable tables. No framework, no request to any other host.
"use strict";

const KEY_STORE = "duckapi.api-key";
const TABLE_LIMIT = 1000;
const COLOR = "#1f5fa8";
const ANIMALS = [["🦆", 13], ["🐇", 8], ["🐰", 2], ["🐰", 5], ["🦆", 3], ["🐇", 23], ["🐇", 1], ["🦆", 17], ["🐰", 5]];
const ANIMAL_EXAMPLE = "[\n" + ANIMALS.map(([g, v]) => `  {"group_id": "${g}", "event_value": ${v}}`).join(",\n") + "\n]";
const DATE = /^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/;
const MEDIA = {
  json: "application/json", ndjson: "application/x-ndjson", csv: "text/csv",
  parquet: "application/vnd.apache.parquet", arrow: "application/vnd.apache.arrow.stream",
};

const $ = (id) => document.getElementById(id);
const state = { models: [], model: null, files: {} };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// Integers past 2^53 keep their exact digits (JSON.parse source text); they still chart as numbers.
class BigNum {
  constructor(source) { this.source = source; this.value = Number(source); }
  valueOf() { return this.value; }
  toString() { return this.source; }
  toJSON() { return "__big__" + this.source; }
}
const parseAnswer = (text) => JSON.parse(text, (key, value, context) =>
  typeof value === "number" && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source)
    ? new BigNum(context.source) : value);
const isNumber = (v) => typeof v === "number" || v instanceof BigNum;
const cellText = (v) => v === null || v === undefined ? "null"
  : typeof v === "string" ? v
  : isNumber(v) || typeof v === "boolean" ? String(v)
  : JSON.stringify(v).replace(/"__big__(-?\d+)"/g, "$1");

// ---------------------------------------------------------------- API key

function apiKey() { return sessionStorage.getItem(KEY_STORE) || ""; }

function showKeyPanel(message) {
  $("key-panel").hidden = false;
  $("key-message").textContent = message || "";
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (apiKey()) headers.set("Authorization", "Bearer " + apiKey());
  return fetch(new URL(path.replace(/^\//, ""), document.baseURI), { ...options, headers });
}

async function detailOf(response) {
  try { return (await response.json()).detail || response.statusText; } catch { return response.statusText; }
}

// ---------------------------------------------------------------- endpoints

async function loadModels() {
  $("load-message").textContent = "";
  let response;
  try { response = await api("models"); } catch (err) {
    $("load-message").textContent = "The server did not answer: " + err.message;
    return;
  }
  if (response.status === 401) {
    $("request-form").hidden = true;
    showKeyPanel("This server needs an API key (401): " + await detailOf(response));
    $("api-key").focus();
    return;
  }
  if (!response.ok) {
    $("load-message").textContent = `GET /models answered ${response.status}: ${await detailOf(response)}`;
    return;
  }
  state.models = await response.json();
  if (apiKey()) showKeyPanel("Key accepted.");
  const select = $("endpoint");
  const chosen = select.value;
  select.replaceChildren(...state.models.map((m) => el("option", { value: m.path, text: `${m.path} (${m.model})` })));
  if (!state.models.length) { $("load-message").textContent = "This project serves no endpoint."; return; }
  if (state.models.some((m) => m.path === chosen)) select.value = chosen;
  $("request-form").hidden = false;
  renderEndpoint();
}

function currentModel() { return state.models.find((m) => m.path === $("endpoint").value); }

function isAnimalContract(input) {
  const cols = input.columns.map((c) => `${c.name}:${c.data_type.toLowerCase()}`).sort().join(",");
  return cols === "event_value:bigint,group_id:varchar";
}

function renderEndpoint() {
  const model = currentModel();
  state.model = model;
  state.files = {};
  clearAnswer();
  const refs = model.references.length ? "; reference data: " + model.references.map((r) => r.name).join(", ") : "";
  $("endpoint-info").textContent = `POST ${model.path}: model ${model.model}, ` +
    `${model.inputs.length} input${model.inputs.length === 1 ? "" : "s"}${refs}.`;
  $("inputs").replaceChildren(...model.inputs.map(renderInput), ...renderExamples(model));
  $("parts").hidden = !model.parts.length;
  $("part-list").replaceChildren(...model.parts.map((part) => el("span", { class: "choice" },
    el("input", { type: "checkbox", id: `part-${part}`, name: "part", value: part }),
    el("label", { for: `part-${part}`, text: part }))));
  const vars = Object.entries(model.vars || {});
  $("vars").hidden = !vars.length;
  $("var-list").replaceChildren(...vars.map(([name, value]) => el("div", { class: "field" },
    el("label", { for: `var-${name}`, text: `${name} (default ${JSON.stringify(value)})` }),
    el("input", { type: "text", id: `var-${name}`, name: `var-${name}`, "data-var": name,
                  placeholder: JSON.stringify(value), spellcheck: "false" }))));
  updateRequestLine();
}

// The project's own examples (recorded requests, unit tests' given rows): one click fills
// every input with its rows and sets its parts and vars.
function renderExamples(model) {
  const examples = model.examples || [];
  if (!examples.length) return [];
  return [el("div", { class: "row-actions examples" },
    el("span", { class: "hint", text: "Examples from the project: " }),
    ...examples.map((example) => el("button", {
      type: "button", class: "example", "data-example": example.name,
      onclick: () => useExample(example),
    }, `${example.name} (${example.kind})`)))];
}

function useExample(example) {
  for (const [name, rows] of Object.entries(example.inputs)) {
    clearFile(name);
    const box = $(`rows-${name}`);
    if (box) box.value = JSON.stringify(rows, null, 1);
  }
  for (const box of document.querySelectorAll("input[name=part]")) box.checked = (example.select || []).includes(box.value);
  for (const [name, value] of Object.entries(example.vars || {})) {
    const box = $(`var-${name}`);
    if (box) box.value = JSON.stringify(value);
  }
  updateRequestLine();
}

function renderInput(input) {
  const id = input.name;
  const columns = input.columns.map((c) => `${c.name} ${c.data_type}${c.not_null ? " not null" : ""}`).join(", ");
  const fileInfo = el("p", { class: "file-info", id: `file-info-${id}`, "aria-live": "polite" });
  const fileInput = el("input", {
    type: "file", id: `file-${id}`, accept: ".csv,.json,.ndjson,.jsonl,.parquet,.arrow,.arrows,.ipc,.feather",
    onchange: (e) => e.target.files[0] && setFile(input.name, e.target.files[0]),
  });
  const box = el("fieldset", { class: "input", "data-input": id },
    el("legend", { text: `Input ${id}` }),
    el("p", { class: "hint", text: "Columns: " + columns }),
    el("label", { for: `rows-${id}`, text: `Rows for ${id}: a JSON array, NDJSON or CSV with a header` }),
    el("textarea", { id: `rows-${id}`, name: `rows-${id}`, rows: 8, spellcheck: "false", "data-input": id }),
    el("div", { class: "row-actions" },
      el("label", { for: `file-${id}`, class: "file-label", text: "Or choose a file (CSV, NDJSON, JSON, Parquet, Arrow), or drop one here:" }),
      fileInput,
      isAnimalContract(input) ? el("button", { type: "button", class: "example", "data-input": id,
        onclick: () => { clearFile(id); $(`rows-${id}`).value = ANIMAL_EXAMPLE; } }, "Paste the animal example") : null),
    fileInfo,
    el("div", { class: "input-error", id: `error-${id}`, role: "alert", hidden: true }));
  box.addEventListener("dragover", (e) => { e.preventDefault(); box.classList.add("dropping"); });
  box.addEventListener("dragleave", () => box.classList.remove("dropping"));
  box.addEventListener("drop", (e) => {
    e.preventDefault();
    box.classList.remove("dropping");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) setFile(id, file);
  });
  return box;
}

function setFile(name, file) {
  state.files[name] = file;
  const info = $(`file-info-${name}`);
  info.replaceChildren(`File: ${file.name} (${file.size.toLocaleString("en")} bytes), sent instead of the text. `,
    el("button", { type: "button", onclick: () => clearFile(name) }, `Remove ${file.name}`));
}

function clearFile(name) {
  delete state.files[name];
  $(`file-info-${name}`).replaceChildren();
  $(`file-${name}`).value = "";
}

function query() {
  const params = new URLSearchParams();
  const parts = [...document.querySelectorAll('#part-list input:checked')].map((i) => i.value);
  if (parts.length) params.set("select", parts.join(","));
  const vars = {};
  for (const input of document.querySelectorAll("#var-list input")) {
    const raw = input.value.trim();
    if (!raw) continue;
    const fallback = state.model.vars[input.dataset.var];
    if (typeof fallback === "string") vars[input.dataset.var] = raw;
    else { try { vars[input.dataset.var] = JSON.parse(raw); } catch { vars[input.dataset.var] = raw; } }
  }
  if (Object.keys(vars).length) params.set("vars", JSON.stringify(vars));
  const text = params.toString();
  return text ? "?" + text : "";
}

function updateRequestLine() {
  if (state.model) $("request-line").textContent = `POST ${state.model.path}${decodeURIComponent(query())}`;
}

// ---------------------------------------------------------------- reading rows

function textFormat(text) {
  const head = text.trimStart()[0];
  return head === "[" ? "json" : head === "{" ? "ndjson" : "csv";
}

function csvRecords(text) {
  const records = [];
  let record = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { record.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      record.push(field); field = "";
      if (record.length > 1 || record[0] !== "") records.push(record);
      record = [];
    } else field += c;
  }
  record.push(field);
  if (record.length > 1 || record[0] !== "") records.push(record);
  return records;
}

// Rows of a text body as objects (for counting and for showing the row an error names).
function textRows(text, format) {
  if (format === "json") { const rows = JSON.parse(text); return Array.isArray(rows) ? rows : null; }
  if (format === "ndjson") return text.split(/\r?\n/).filter((l) => l.trim()).map((l) => JSON.parse(l));
  const [header, ...records] = csvRecords(text);
  return header ? records.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]]))) : [];
}

function fileFormat(name, bytes) {
  const magic = new TextDecoder().decode(bytes.slice(0, 6));
  if (magic.startsWith("PAR1")) return "parquet";
  if (magic === "ARROW1") return "arrow-file";
  if (bytes.length >= 4 && new DataView(bytes.buffer, bytes.byteOffset).getInt32(0, true) === -1) return "arrow";
  const ext = name.toLowerCase().split(".").pop();
  if (ext === "parquet") return "parquet";
  if (["arrow", "arrows", "ipc", "feather"].includes(ext)) return "arrow";
  if (ext === "csv") return "csv";
  if (ext === "ndjson" || ext === "jsonl") return "ndjson";
  if (ext === "json") return "json";
  return textFormat(new TextDecoder().decode(bytes.slice(0, 64)));
}

// A flatbuffer table's field i: its position, or 0 when absent.
function fbField(view, table, i) {
  const vtable = table - view.getInt32(table, true);
  const offset = 4 + 2 * i;
  const at = offset < view.getUint16(vtable, true) ? view.getUint16(vtable + offset, true) : 0;
  return at ? table + at : 0;
}

// Rows in an Arrow IPC stream: the lengths of its record batches.
function arrowRows(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 0, rows = 0;
  while (p + 4 <= view.byteLength) {
    let size = view.getInt32(p, true); p += 4;
    if (size === -1) { size = view.getInt32(p, true); p += 4; }
    if (size <= 0) break;
    const message = p + view.getUint32(p, true);
    p += size;
    const type = fbField(view, message, 1), header = fbField(view, message, 2), body = fbField(view, message, 3);
    if (type && view.getUint8(type) === 3 && header) {  // a RecordBatch
      const batch = header + view.getUint32(header, true);
      const length = fbField(view, batch, 0);
      if (length) rows += Number(view.getBigInt64(length, true));
    }
    if (body) p += Number(view.getBigInt64(body, true));
  }
  return rows;
}

// An Arrow IPC file is the stream format between a magic number and a footer.
function arrowFileToStream(bytes) {
  const n = bytes.length;
  const footer = new DataView(bytes.buffer, bytes.byteOffset).getInt32(n - 10, true);
  const stream = new Uint8Array(n - 8 - 10 - footer + 8);
  stream.set(bytes.subarray(8, n - 10 - footer));
  stream.set([255, 255, 255, 255, 0, 0, 0, 0], stream.length - 8);
  return stream;
}

// Rows in a Parquet file: num_rows of the footer's FileMetaData (Thrift compact protocol).
function parquetRows(bytes) {
  const n = bytes.length;
  let p = n - 8 - new DataView(bytes.buffer, bytes.byteOffset).getUint32(n - 8, true);
  const varint = () => { let r = 0n, s = 0n, x; do { x = bytes[p++]; r |= BigInt(x & 0x7f) << s; s += 7n; } while (x & 0x80); return r; };
  const zigzag = () => { const r = varint(); return (r >> 1n) ^ -(r & 1n); };
  const skip = (type, inList) => {
    if (type === 1 || type === 2) { if (inList) p++; }
    else if (type === 3) p++;
    else if (type >= 4 && type <= 6) varint();
    else if (type === 7) p += 8;
    else if (type === 8) { const size = Number(varint()); p += size; }  // not p += varint(): p is read first
    else if (type === 9 || type === 10) {
      const head = bytes[p++];
      let size = head >> 4;
      if (size === 15) size = Number(varint());
      for (let i = 0; i < size; i++) skip(head & 15, true);
    } else if (type === 11) {
      const size = Number(varint());
      const kinds = size ? bytes[p++] : 0;
      for (let i = 0; i < size; i++) { skip(kinds >> 4, true); skip(kinds & 15, true); }
    } else if (type === 12) struct(null);
    else throw new Error("not a Parquet footer");
  };
  const struct = (wanted) => {  // skips fields up to the wanted one (if given) and reads it
    for (let id = 0; ;) {
      const head = bytes[p++], type = head & 15;
      if (type === 0) return null;
      id = head >> 4 ? id + (head >> 4) : Number(zigzag());
      if (id === wanted && type === 6) return Number(zigzag());
      skip(type, false);
    }
  };
  return struct(3);  // FileMetaData: 1 version, 2 schema, 3 num_rows
}

// What one input sends: {body, format, name, rows (a count or null), sample (row objects or null)}.
async function readInput(input) {
  const file = state.files[input.name];
  if (file) {
    let bytes = new Uint8Array(await file.arrayBuffer());
    let format = fileFormat(file.name, bytes);
    if (format === "arrow-file") { bytes = arrowFileToStream(bytes); format = "arrow"; }
    let rows = null, sample = null;
    try {
      if (format === "parquet") rows = parquetRows(bytes);
      else if (format === "arrow") rows = arrowRows(bytes);
      else { sample = textRows(new TextDecoder().decode(bytes), format); rows = sample && sample.length; }
    } catch { rows = null; }
    return { body: new Blob([bytes], { type: MEDIA[format] }), format, name: file.name, rows, sample };
  }
  const text = $(`rows-${input.name}`).value;
  if (!text.trim()) return null;
  const format = textFormat(text);
  let sample = null;
  try { sample = textRows(text, format); } catch { sample = null; }
  const name = `${input.name}.${format}`;
  return { body: new Blob([text], { type: MEDIA[format] }), format, name, rows: sample ? sample.length : null, sample };
}

// ---------------------------------------------------------------- sending

async function send(event) {
  event.preventDefault();
  const model = currentModel();
  clearAnswer();
  const bodies = {};
  for (const input of model.inputs) {
    const body = await readInput(input);
    if (!body) {
      showError({ detail: `no rows for input ${input.name}: paste rows, drop a file, or type [] for none`, input: input.name }, null, model, bodies);
      return;
    }
    bodies[input.name] = body;
  }
  let body, headers = {};
  if (model.inputs.length === 1) {
    const only = bodies[model.inputs[0].name];
    body = only.body;
    headers["Content-Type"] = MEDIA[only.format];
  } else {
    body = new FormData();
    for (const [name, part] of Object.entries(bodies)) body.append(name, part.body, part.name);
  }
  const url = model.path + query();
  $("send").disabled = true;
  $("stats").textContent = `Sending POST ${decodeURIComponent(url)} …`;
  const started = performance.now();
  let response, text;
  try {
    response = await api(url, { method: "POST", body, headers });
    text = await response.text();
  } catch (err) {
    $("stats").textContent = `The request failed: ${err.message}`;
    return;
  } finally {
    $("send").disabled = false;
  }
  const ms = performance.now() - started;
  const counts = Object.values(bodies).map((b) => b.rows);
  const rowsIn = counts.every((c) => c !== null) ? counts.reduce((a, b) => a + b, 0).toLocaleString("en") : "?";
  const stat = (name, value) => el("span", { class: "stat", "data-stat": name }, value);
  const line = [stat("status", `HTTP ${response.status}`), " · ", stat("time", `${ms.toFixed(1)} ms`), " · ",
                stat("rows-in", `${rowsIn} row${rowsIn === "1" ? "" : "s"} in`)];
  let answer = null;
  try { answer = parseAnswer(text); } catch { answer = null; }
  if (!response.ok) {
    $("stats").replaceChildren(...line);
    if (response.status === 401) showKeyPanel("The API answered 401: " + (answer && answer.detail || text));
    showError(answer && typeof answer === "object" ? answer : { detail: text }, response.status, model, bodies);
    return;
  }
  const lists = answerLists(answer, model);
  const out = Array.isArray(answer) ? answer.length : 1;
  let outText = `${out.toLocaleString("en")} row${out === 1 ? "" : "s"} out`;
  if (lists.nested) outText += ": " + lists.items.map((l) => `${l.name} ${l.rows.length}`).join(", ");
  $("stats").replaceChildren(...line, " · ", stat("rows-out", outText));
  renderLists(lists.items);
}

function clearAnswer() {
  $("error").hidden = true;
  $("error").replaceChildren();
  for (const box of document.querySelectorAll(".input-error")) { box.hidden = true; box.replaceChildren(); }
  $("lists").replaceChildren();
  $("stats").textContent = "";
}

function showError(error, status, model, bodies) {
  const detail = typeof error.detail === "string" ? error.detail : JSON.stringify(error.detail);
  const named = error.input || (model.inputs.length === 1 && (error.row !== undefined || error.field !== undefined)
    ? model.inputs[0].name : null);
  const target = named && $(`error-${named}`) ? $(`error-${named}`) : $("error");
  const facts = [["input", error.input], ["row", error.row], ["field", error.field]].filter(([, v]) => v !== undefined && v !== null);
  const children = [el("p", { class: "detail" }, status ? `HTTP ${status}: ` : "", detail)];
  if (facts.length) children.push(el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", { text: k }), el("dd", { "data-fact": k, text: String(v) })])));
  const sent = named && bodies[named];
  if (sent && Number.isInteger(error.row)) {
    const row = sent.sample && sent.sample[error.row];
    if (row && typeof row === "object") {
      const names = Object.keys(row);
      children.push(el("table", { class: "bad-row" },
        el("caption", { text: `Row ${error.row} of ${sent.name}` }),
        el("thead", {}, el("tr", {}, names.map((n) => el("th", { scope: "col", text: n })))),
        el("tbody", {}, el("tr", {}, names.map((n) => el("td", n === error.field ? { class: "bad", "data-bad": "true" } : {},
          n === error.field ? el("mark", { text: cellText(row[n]) }) : cellText(row[n])))))));
    } else {
      children.push(el("p", { class: "hint", text: `Row ${error.row} of ${sent.name} (0-based data row).` }));
    }
  }
  target.replaceChildren(...children);
  target.hidden = false;
  if (target !== $("error")) {
    $("error").replaceChildren(el("p", {}, `The API refused the rows; see input ${named} above.`));
    $("error").hidden = false;
    $("error").removeAttribute("role");
  } else {
    $("error").setAttribute("role", "alert");
  }
}

// ---------------------------------------------------------------- answers

// The lists to show: a one-row answer of lists (parts) is one list per part; any other
// answer is one list, the answer's rows, typed by /models where it says.
function answerLists(answer, model) {
  if (Array.isArray(answer) && answer.length === 1 && answer[0] && typeof answer[0] === "object") {
    const entries = Object.entries(answer[0]);
    if (entries.length && entries.every(([, v]) => Array.isArray(v) && v.every((r) => r && typeof r === "object" && !Array.isArray(r)))) {
      return { nested: true, items: entries.map(([name, rows]) => ({ name, rows, declared: {} })) };
    }
  }
  const declared = Object.fromEntries((model.columns || []).map((c) => [c.name, c.data_type.toUpperCase()]));
  return { nested: false, items: [{ name: model.model, rows: Array.isArray(answer) ? answer : [answer], declared }] };
}

function columnKind(rows, name, declared) {
  const type = declared[name];
  if (type) {
    if (/^(DATE|TIMESTAMP)/.test(type)) return "date";
    if (/^(VARCHAR|TEXT|STRING|CHAR|UUID|ENUM)/.test(type)) return "text";
    if (/^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|REAL|DOUBLE|DECIMAL|NUMERIC)/.test(type) && !type.includes("[")) return "number";
  }
  const values = rows.map((r) => r[name]).filter((v) => v !== null && v !== undefined);
  if (!values.length) return "empty";
  if (values.every(isNumber)) return "number";
  if (values.every((v) => typeof v === "string" && DATE.test(v))) return "date";
  if (values.every((v) => typeof v === "string")) return "text";
  return "other";
}

const isKey = (name) => name === "id" || name.endsWith("_id");
const isCount = (name) => /count/i.test(name);

// The charts that fit a list's columns: [{kind, ...}] (Plotly traces and a description).
function chartsFor(list) {
  const rows = list.rows;
  if (!rows.length) return [];
  const names = Object.keys(rows[0]);
  const kinds = Object.fromEntries(names.map((n) => [n, columnKind(rows, n, list.declared)]));
  const of = (kind) => names.filter((n) => kinds[n] === kind);
  const text = of("text"), numbers = of("number"), dates = of("date");
  const charts = [];
  const counts = numbers.filter(isCount), others = numbers.filter((n) => !isCount(n));
  if (text.length === 1 && numbers.length === 2 && counts.length === 1 && others.length === 1) {
    const [y, x, z] = [text[0], others[0], counts[0]];
    const ys = [...new Set(rows.map((r) => r[y]))];
    const xs = [...new Set(rows.map((r) => Number(r[x])))].sort((a, b) => a - b);
    const grid = ys.map(() => xs.map(() => 0));
    for (const r of rows) grid[ys.indexOf(r[y])][xs.indexOf(Number(r[x]))] += Number(r[z]);
    charts.push({ kind: "heatmap", title: `${z} by ${y} and ${x}`, x, y,
      traces: [{ type: "heatmap", x: xs.map(String), y: ys, z: grid, colorscale: "Viridis", hoverongaps: false,
                 colorbar: { title: { text: z } } }],
      describe: `Heatmap of ${z} for ${ys.length} ${y} values by ${xs.length} ${x} values` });
  } else if (text.length === 0 && numbers.length === 2 && counts.length === 1 && others.length === 1) {
    const [x, y] = [others[0], counts[0]];
    charts.push({ kind: "histogram", title: `${y} per ${x}`, x, y,
      traces: [{ type: "bar", x: rows.map((r) => Number(r[x])), y: rows.map((r) => Number(r[y])), marker: { color: COLOR } }],
      describe: `Histogram bars of ${y} per ${x}: ` + rows.map((r) => `${r[x]}: ${r[y]}`).join(", ") });
  } else if (text.length === 1 && numbers.length === 1) {
    const [x, y] = [text[0], numbers[0]];
    charts.push({ kind: "bar", title: `${y} by ${x}`, x, y,
      traces: [{ type: "bar", x: rows.map((r) => r[x] ?? "null"), y: rows.map((r) => Number(r[y])), marker: { color: COLOR } }],
      describe: `Bar chart of ${y} by ${x}: ` + rows.map((r) => `${r[x]}: ${r[y]}`).join(", ") });
  }
  const measures = numbers.filter((n) => !isKey(n)).slice(0, 6);
  if (dates.length && measures.length) {
    const x = dates[0];
    const sorted = rows.filter((r) => r[x] !== null).sort((a, b) => (a[x] < b[x] ? -1 : a[x] > b[x] ? 1 : 0));
    charts.push({ kind: "line", title: `${measures.join(", ")} over ${x}`, x, y: measures.length === 1 ? measures[0] : "",
      traces: measures.map((m) => ({ type: "scatter", mode: "lines+markers", name: m, x: sorted.map((r) => r[x]),
                                     y: sorted.map((r) => (r[m] === null ? null : Number(r[m]))) })),
      describe: `Line chart of ${measures.join(", ")} over ${x}, ${sorted.length} points` });
  }
  return charts;
}

// Each section is in the page, laid out, before Plotly draws in it (it sizes a chart to its box).
function renderLists(lists) {
  $("lists").replaceChildren();
  for (const list of lists) {
    const section = el("section", { class: "list", "data-list": list.name, "aria-labelledby": `list-${list.name}` },
      el("h3", { id: `list-${list.name}`, text: `${list.name} (${list.rows.length} row${list.rows.length === 1 ? "" : "s"})` }));
    const charts = window.Plotly ? chartsFor(list) : [];
    const column = el("div", { class: "charts" });
    section.append(column, renderTable(list));
    $("lists").append(section);
    for (const chart of charts) {
      const box = el("div", { class: "chart", role: "img", "aria-label": chart.describe, "data-chart": chart.kind });
      column.append(box);
      window.Plotly.newPlot(box, chart.traces, {
        title: { text: chart.title, font: { size: 15 } }, height: chart.kind === "heatmap" ? 340 : 300,
        margin: { t: 44, r: 24, b: 56, l: 64 }, font: { family: "'Page Emoji', system-ui, sans-serif", color: "#1a1a1a" },
        xaxis: { title: { text: chart.x }, type: chart.kind === "bar" || chart.kind === "heatmap" ? "category" : undefined, automargin: true },
        yaxis: { title: { text: chart.y }, automargin: true, type: chart.kind === "heatmap" ? "category" : undefined },
        showlegend: chart.traces.length > 1, paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
      }, { displaylogo: false, responsive: true });
    }
  }
}

function renderTable(list) {
  const names = list.rows.length ? Object.keys(list.rows[0]) : [];
  const sort = { column: null, direction: 1 };
  const table = el("table", { class: "answer-table", "data-table": list.name });
  const caption = el("caption", {});
  const tbody = el("tbody");
  const heads = names.map((name) => el("th", { scope: "col", "aria-sort": "none" },
    el("button", { type: "button", "data-column": name, onclick: () => {
      sort.direction = sort.column === name ? -sort.direction : 1;
      sort.column = name;
      fill();
    } }, name)));
  const compare = (a, b) => {
    if (a === null || a === undefined) return b === null || b === undefined ? 0 : 1;
    if (b === null || b === undefined) return -1;
    if (isNumber(a) && isNumber(b)) {
      const [x, y] = [a instanceof BigNum ? BigInt(a.source) : a, b instanceof BigNum ? BigInt(b.source) : b];
      return typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : Number(a) - Number(b);
    }
    const [x, y] = [cellText(a), cellText(b)];
    return x < y ? -1 : x > y ? 1 : 0;
  };
  function fill() {
    let rows = list.rows;
    if (sort.column !== null) {
      const c = sort.column;
      rows = [...rows].sort((a, b) => {
        const order = compare(a[c], b[c]);
        return a[c] === null || b[c] === null ? order : order * sort.direction;
      });
    }
    heads.forEach((th, i) => th.setAttribute("aria-sort",
      names[i] !== sort.column ? "none" : sort.direction === 1 ? "ascending" : "descending"));
    const shown = rows.slice(0, TABLE_LIMIT);
    tbody.replaceChildren(...shown.map((row) => el("tr", {}, names.map((n) =>
      el("td", { class: row[n] === null ? "null" : isNumber(row[n]) ? "num" : undefined, text: cellText(row[n]) })))));
    caption.textContent = `${list.name}: ${list.rows.length} row${list.rows.length === 1 ? "" : "s"}` +
      (rows.length > TABLE_LIMIT ? `, the first ${TABLE_LIMIT} shown` : "") +
      (names.length ? " (sortable)" : "");
  }
  fill();
  table.append(caption, el("thead", {}, el("tr", {}, heads)), tbody);
  return el("div", { class: "table-wrap" }, table);
}

// ---------------------------------------------------------------- start

document.addEventListener("DOMContentLoaded", () => {
  $("endpoint").addEventListener("change", renderEndpoint);
  $("request-form").addEventListener("submit", send);
  $("request-form").addEventListener("input", updateRequestLine);
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
    $("api-key").value = "";
    loadModels();
  });
  $("key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    showKeyPanel("The key is forgotten.");
    loadModels();
  });
  loadModels();
});
