// ehrqa's clinician page: patients, a chart, questions answered with citations, and visit-summary
// drafts. It uses only the public REST API (/v1, described at /openapi.json), so a page of one's
// own can be built the same way. Record text is untrusted: it is only ever set as text
// (textContent), never parsed as HTML.
"use strict";

const KEY_STORE = "ehrqa.key"; // sessionStorage: the key lives as long as the browser tab
const TIMELINE_PAGE = 100;

// ---- DOM ----------------------------------------------------------------------------------

/** An element with attributes and children (strings become text nodes, never HTML). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function setStatus(text, isError) {
  const st = document.getElementById("status");
  st.textContent = text || "";
  st.className = isError ? "error" : "";
}

// ---- API ----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra) {
  const out = Object.assign({ accept: "application/json" }, extra || {});
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) out.authorization = "Bearer " + key;
  return out;
}

/** The diagnostics of an OperationOutcome, or the status line. */
async function failure(res) {
  let message = res.status + " " + res.statusText;
  try {
    const body = await res.json();
    if (body && body.issue && body.issue[0] && body.issue[0].diagnostics) message = body.issue[0].diagnostics;
  } catch (_) { /* not JSON */ }
  if (res.status === 401) message += " Enter an API key above.";
  return new ApiError(res.status, message);
}

async function api(path, options) {
  const opts = options || {};
  const init = { method: opts.method || "GET", headers: headers(opts.body ? { "content-type": "application/json" } : {}) };
  if (opts.body) init.body = JSON.stringify(opts.body);
  const res = await fetch(path, init);
  if (!res.ok) throw await failure(res);
  return res.json();
}

/** POSTs and reads Server-Sent Events: `onToken(text)` per token, resolves with the answer. */
async function stream(path, body, onToken) {
  const res = await fetch(path, {
    method: "POST",
    headers: headers({ "content-type": "application/json", accept: "text/event-stream" }),
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await failure(res);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const ev = parseEvent(block);
      if (ev.name === "token") onToken(ev.data.text);
      else if (ev.name === "answer") return ev.data;
      else if (ev.name === "error") throw new ApiError(500, (ev.data.issue && ev.data.issue[0].diagnostics) || "the answer failed");
    }
  }
  throw new ApiError(500, "the answer stream ended early");
}

function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  return { name, data: data.length ? JSON.parse(data.join("\n")) : {} };
}

const enc = encodeURIComponent;
const patientPath = (id) => "/v1/patients/" + enc(id);

// ---- formatting ---------------------------------------------------------------------------

function number(v) {
  if (Number.isInteger(v)) return String(v);
  return String(Math.round(v * 100) / 100);
}

function unit(u) {
  return u && u !== "1" && u !== "{score}" ? " " + u : "";
}

function ageOf(born, died) {
  if (!born) return "";
  const b = new Date(born);
  const e = died && died !== "yes" ? new Date(died) : new Date();
  if (isNaN(b) || isNaN(e)) return "";
  let years = e.getUTCFullYear() - b.getUTCFullYear();
  const m = e.getUTCMonth() - b.getUTCMonth();
  if (m < 0 || (m === 0 && e.getUTCDate() < b.getUTCDate())) years--;
  return String(years);
}

const day = (d) => (d || "").slice(0, 10);

// ---- router -------------------------------------------------------------------------------

let current = null; // the view's teardown, if any

function route() {
  // In-page anchors (the skip link) are not views.
  if (location.hash && !location.hash.startsWith("#/")) return;
  if (current) current();
  current = null;
  setStatus("");
  const view = document.getElementById("view");
  view.replaceChildren();
  const m = location.hash.match(/^#\/patients\/([^/]+)$/);
  if (m) current = chartView(view, decodeURIComponent(m[1]));
  else patientsView(view);
}

// ---- patients -----------------------------------------------------------------------------

async function patientsView(view) {
  document.title = "Patients · ehrqa";
  const search = h("input", { id: "patient-search", type: "search", placeholder: "Name or id" });
  const body = h("tbody");
  const table = h("table", { class: "patients" },
    h("caption", {}, "Patients"),
    h("thead", {}, h("tr", {}, ["Name", "Age", "Sex", "Born", "Resources"].map((c) => h("th", { scope: "col" }, c)))),
    body);
  view.append(h("h1", {}, "Patients"), h("div", { class: "search" }, h("label", { for: "patient-search" }, "Search"), search), table);
  let rows = [];
  const render = () => {
    const q = search.value.trim().toLowerCase();
    body.replaceChildren(...rows
      .filter((p) => !q || (p.name || "").toLowerCase().includes(q) || p.id.toLowerCase().includes(q))
      .map((p) => h("tr", {},
        h("td", {}, h("a", { href: "#/patients/" + enc(p.id) }, p.name || p.id)),
        h("td", {}, ageOf(p.birth_date, p.deceased) + (p.deceased ? " (died)" : "")),
        h("td", {}, p.gender || ""),
        h("td", {}, p.birth_date || ""),
        h("td", { class: "num" }, p.resources.toLocaleString("en-US")))));
  };
  search.addEventListener("input", render);
  try {
    setStatus("Loading patients…");
    rows = await api("/v1/patients");
    setStatus(rows.length + " patients");
    render();
  } catch (e) {
    setStatus(e.message, true);
  }
}

// ---- chart --------------------------------------------------------------------------------

function chartView(view, id) {
  const state = { id, alive: true, timeline: null, conversation: null };
  const left = h("section", { class: "summary", "aria-label": "Summary" });
  const middle = h("section", { class: "timeline", "aria-labelledby": "timeline-h" });
  const right = h("section", { class: "assist", "aria-label": "Questions and drafts" });
  const jump = h("nav", { class: "jump", "aria-label": "Chart sections" },
    h("a", { href: "#question", onclick: (e) => { e.preventDefault(); document.getElementById("question").focus(); } }, "Ask a question"),
    h("a", { href: "#timeline-h", onclick: (e) => { e.preventDefault(); const b = middle.querySelector("button[tabindex='0']"); if (b) b.focus(); } }, "Timeline"),
    h("a", { href: "#encounter", onclick: (e) => { e.preventDefault(); const d = document.getElementById("encounter"); if (d) d.focus(); } }, "Draft a visit summary"));
  view.append(jump, h("div", { class: "chart" }, left, middle, right));
  loadChart(state, left, right);
  state.timeline = timeline(state, middle);
  askPanel(state, right);
  return () => { state.alive = false; };
}

async function loadChart(state, left, right) {
  try {
    setStatus("Loading chart…");
    const c = await api(patientPath(state.id) + "/chart");
    if (!state.alive) return;
    setStatus("");
    const p = c.patient;
    document.title = (p.name || p.id) + " · ehrqa";
    left.append(
      h("h1", { class: "banner" }, p.name || p.id),
      h("p", { class: "demographics" },
        [c.age !== undefined ? "Age " + c.age + (p.deceased ? " at death" : "") : null, p.gender, p.birth_date ? "born " + p.birth_date : null]
          .filter(Boolean).join(" · ")),
      h("p", { class: "notice" }, c.notice),
      list("Allergies", p.allergies),
      seriesSection("Vitals", c.vitals),
      seriesSection("Key labs", c.labs),
      list("Active problems", p.active_problems),
      list("Active medications", p.active_medications));
    draftPanel(state, right);
  } catch (e) {
    setStatus(e.message, true);
    left.append(h("h1", {}, "Chart unavailable"), h("p", { class: "error" }, e.message));
  }
}

/** A summary list, newest first, each condition or medication once (its latest record). */
function list(title, all) {
  const seen = new Set();
  const lines = all.filter((l) => {
    const what = l.text.replace(/^\d{4}(-\d\d){0,2}\s+/, "");
    if (seen.has(what)) return false;
    seen.add(what);
    return true;
  });
  return h("section", { class: "list" },
    h("h2", {}, title),
    lines.length
      ? h("ul", {}, lines.map((l) => h("li", {}, h("button", { class: "link", type: "button", "data-ref": l.ref, onclick: () => openRecord(l.ref) }, l.text))))
      : h("p", { class: "none" }, "None recorded"));
}

function seriesSection(title, series) {
  return h("section", { class: "series" },
    h("h2", {}, title),
    series.length ? h("ul", {}, series.map(seriesItem)) : h("p", { class: "none" }, "None recorded"));
}

function seriesItem(s) {
  const last = s.points[s.points.length - 1];
  const range = s.reference_range;
  const out = range && ((range.low !== undefined && last.value < range.low) || (range.high !== undefined && last.value > range.high));
  return h("li", { class: out ? "out-of-range" : "" },
    h("span", { class: "name" }, s.name),
    h("button", { class: "link value", type: "button", onclick: () => openRecord(last.ref), title: "Open the record of " + day(last.date) },
      number(last.value) + unit(s.unit)),
    h("span", { class: "date" }, day(last.date)),
    out ? h("span", { class: "flag" }, "out of range") : null,
    sparkline(s));
}

/** Values over time as an SVG line, the reference range shaded; described for screen readers. */
function sparkline(s) {
  const W = 120, H = 28, P = 3;
  const values = s.points.map((p) => p.value);
  const r = s.reference_range || {};
  const lo = Math.min(...values, r.low !== undefined ? r.low : Infinity);
  const hi = Math.max(...values, r.high !== undefined ? r.high : -Infinity);
  const span = hi - lo || 1;
  const y = (v) => H - P - ((v - lo) / span) * (H - 2 * P);
  const x = (i) => (values.length === 1 ? W / 2 : P + (i * (W - 2 * P)) / (values.length - 1));
  const first = s.points[0], last = s.points[s.points.length - 1];
  const label = s.name + ": " + values.length + " values from " + day(first.date) + " to " + day(last.date) +
    ", latest " + number(last.value) + unit(s.unit) +
    (r.low !== undefined || r.high !== undefined ? ", reference range " + (r.low !== undefined ? number(r.low) : "") + " to " + (r.high !== undefined ? number(r.high) : "") : "");
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": label, class: "spark" });
  if (r.low !== undefined || r.high !== undefined) {
    const top = y(r.high !== undefined ? r.high : hi), bottom = y(r.low !== undefined ? r.low : lo);
    svg.append(svgEl("rect", { x: 0, y: top, width: W, height: Math.max(1, bottom - top), class: "range" }));
  }
  svg.append(svgEl("polyline", { points: values.map((v, i) => `${x(i)},${y(v)}`).join(" "), class: "line" }));
  svg.append(svgEl("circle", { cx: x(values.length - 1), cy: y(last.value), r: 2.2, class: "dot" }));
  return svg;
}

// ---- timeline -----------------------------------------------------------------------------

const KINDS = {
  Encounter: "Visit", Observation: "Result", DiagnosticReport: "Report", Procedure: "Procedure",
  Immunization: "Immunization", DocumentReference: "Note", Condition: "Problem",
  MedicationRequest: "Medication", AllergyIntolerance: "Allergy",
};

/** The timeline, newest first, a page at a time: the next page loads as its end scrolls into view. */
function timeline(state, root) {
  const items = h("ol", { class: "entries" });
  const more = h("button", { type: "button", class: "more" }, "Load older entries");
  const count = h("span", { class: "count" });
  root.append(h("h2", { id: "timeline-h" }, "Timeline ", count),
    h("p", { class: "hint" }, "Arrow keys move through the entries; Enter opens one."), items, more);
  const t = { cursor: undefined, done: false, loading: null, byRef: new Map() };
  t.load = () => {
    if (t.loading || t.done) return t.loading || Promise.resolve();
    const q = "?limit=" + TIMELINE_PAGE + (t.cursor ? "&cursor=" + enc(t.cursor) : "");
    t.loading = api(patientPath(state.id) + "/timeline" + q).then((page) => {
      for (const e of page.entries) {
        const first = t.byRef.size === 0;
        const li = h("li", { "data-ref": e.ref, class: "kind-" + e.type },
          h("span", { class: "when" }, day(e.date)),
          h("span", { class: "kind" }, KINDS[e.type] || e.type),
          h("button", { type: "button", class: "link", tabindex: first ? "0" : "-1", onclick: () => openRecord(e.ref) }, e.text));
        t.byRef.set(e.ref, li);
        items.append(li);
      }
      t.cursor = page.next_cursor;
      t.done = !page.next_cursor;
      more.hidden = t.done;
      count.textContent = "(" + t.byRef.size + (t.done ? "" : "+") + ")";
    }).catch((e) => setStatus(e.message, true)).finally(() => { t.loading = null; });
    return t.loading;
  };
  more.addEventListener("click", () => t.load());
  // One Tab stop for the whole timeline; arrow keys move within it (a roving tabindex).
  items.addEventListener("keydown", (e) => {
    const buttons = [...items.querySelectorAll("button")];
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: buttons.length - 1, PageDown: at + 10, PageUp: at - 10 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const next = buttons[Math.max(0, Math.min(buttons.length - 1, to))];
    buttons[at].tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
    if (to >= buttons.length - 1) t.load();
  });
  const watch = new IntersectionObserver((seen) => { if (seen.some((entry) => entry.isIntersecting)) t.load(); });
  watch.observe(more);
  t.load();
  /** Marks a record in the timeline, loading older pages until it is there or none are left. */
  t.mark = async (ref) => {
    root.querySelectorAll(".marked").forEach((el) => el.classList.remove("marked"));
    while (!t.byRef.has(ref) && !t.done && state.alive) await t.load();
    const li = t.byRef.get(ref);
    if (li) {
      li.classList.add("marked");
      li.scrollIntoView({ block: "center" });
    }
  };
  return t;
}

// ---- a record beside the answer -----------------------------------------------------------

let chartState = null;

async function openRecord(ref) {
  const viewer = document.getElementById("record");
  if (!viewer || !chartState) return;
  const [type, rid] = ref.split("/");
  const base = patientPath(chartState.id) + "/resources/" + enc(type) + "/" + enc(rid);
  viewer.replaceChildren(h("h2", { tabindex: "-1" }, ref));
  viewer.hidden = false;
  try {
    const [rec, raw] = await Promise.all([api(base + "/record"), api(base)]);
    append(viewer, [
      h("p", { class: "rendering" }, rec.text),
      h("p", { class: "date" }, rec.date ? "Date: " + rec.date : "No date"),
      rec.note ? h("details", { open: true }, h("summary", {}, "Note / transcript"), h("pre", { class: "note" }, rec.note)) : null,
      h("details", {}, h("summary", {}, "Stored FHIR JSON"), h("pre", { class: "json" }, JSON.stringify(raw, null, 2))),
      h("button", { type: "button", onclick: () => { viewer.hidden = true; } }, "Close")]);
  } catch (e) {
    viewer.append(h("p", { class: "error" }, e.message));
  }
  viewer.querySelector("h2").focus();
  if (chartState.timeline) chartState.timeline.mark(ref);
}

// ---- ask ----------------------------------------------------------------------------------

function askPanel(state, root) {
  chartState = state;
  const conversation = h("ol", { class: "conversation", "aria-live": "polite", "aria-label": "Conversation" });
  const input = h("textarea", { id: "question", rows: 2, placeholder: "e.g. What was the latest hemoglobin A1c?" });
  const button = h("button", { type: "submit" }, "Ask");
  const form = h("form", { class: "ask" }, h("label", { for: "question" }, "Ask about this record"), input, button);
  root.append(h("h2", {}, "Ask"), conversation, form, h("aside", { id: "record", class: "record", "aria-label": "Cited record", hidden: true }));
  input.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); } });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    button.disabled = true;
    const turn = h("li", { class: "turn" }, h("p", { class: "question" }, question));
    const out = h("div", { class: "answer streaming" });
    turn.append(out);
    conversation.append(turn);
    input.value = "";
    try {
      if (!state.conversation) state.conversation = (await api(patientPath(state.id) + "/conversations", { method: "POST" })).id;
      const a = await stream(patientPath(state.id) + "/conversations/" + enc(state.conversation) + "/ask", { question },
        (piece) => { out.append(piece); });
      renderAnswer(out, a);
    } catch (err) {
      out.className = "answer failed";
      out.replaceChildren(h("p", { class: "error" }, err.message));
    } finally {
      button.disabled = false;
      input.focus();
    }
  });
}

/** An answer with numbered citation links; an abstention looks different; dropped citations shown. */
function renderAnswer(out, a) {
  out.className = "answer " + (a.answerable ? "answered" : "abstained");
  const text = h("p", { class: "text" });
  const parts = a.answer.split(/(\[\d+\])/);
  for (const part of parts) {
    const m = part.match(/^\[(\d+)\]$/);
    const c = m && a.citations[Number(m[1]) - 1];
    if (c) text.append(h("button", { type: "button", class: "cite", "data-ref": c.ref, title: c.ref, onclick: () => openRecord(c.ref) }, "[" + m[1] + "]"));
    else text.append(part);
  }
  out.replaceChildren();
  append(out, [
    a.answerable ? null : h("p", { class: "label" }, "Not in the record"),
    text,
    a.citations.length ? h("ol", { class: "citations" }, a.citations.map((c) =>
      h("li", {}, h("button", { type: "button", class: "link", "data-ref": c.ref, onclick: () => openRecord(c.ref) }, (c.text || c.ref))))) : null,
    a.invalid_citations.length ? h("p", { class: "invalid" }, "Citations dropped (not in the evidence): " + a.invalid_citations.join(", ")) : null,
    a.ungrounded.length ? h("p", { class: "invalid" }, "Sentences removed (a value no cited record states): " + a.ungrounded.length) : null,
    h("p", { class: "meta" }, (a.method === "computed" ? "Computed from the record" : "Written by " + a.model) + ". " + a.notice)]);
}

// ---- draft --------------------------------------------------------------------------------

async function draftPanel(state, root) {
  const select = h("select", { id: "encounter" });
  const go = h("button", { type: "button" }, "Draft a visit summary");
  const editor = h("textarea", { id: "draft-text", rows: 8, hidden: true, "aria-label": "Draft (editable)" });
  const exportButton = h("button", { type: "button", hidden: true }, "Export");
  const result = h("div", { class: "draft-result" });
  const section = h("section", { class: "draft", "aria-labelledby": "draft-h" },
    h("h2", { id: "draft-h" }, "Draft"),
    h("label", { for: "encounter" }, "Visit"), select, go, editor, exportButton, result);
  root.insertBefore(section, document.getElementById("record"));
  let related = [];
  try {
    const page = await api(patientPath(state.id) + "/timeline?types=Encounter&limit=200");
    for (const e of page.entries) select.append(h("option", { value: e.ref }, e.text));
  } catch (e) {
    result.replaceChildren(h("p", { class: "error" }, e.message));
  }
  go.addEventListener("click", async () => {
    if (!select.value) return;
    go.disabled = true;
    editor.hidden = false;
    editor.value = "";
    result.replaceChildren(h("p", {}, "Drafting…"));
    try {
      const eid = select.value.split("/")[1];
      const a = await stream(patientPath(state.id) + "/encounters/" + enc(eid) + "/draft", {}, (piece) => { editor.value += piece; });
      editor.value = a.answer;
      related = a.citations.map((c) => c.ref);
      exportButton.hidden = false;
      result.replaceChildren(h("p", { class: "meta" }, a.citations.length + " cited records. Edit the draft, then export it. " + a.notice));
    } catch (e) {
      result.replaceChildren(h("p", { class: "error" }, e.message));
    } finally {
      go.disabled = false;
    }
  });
  exportButton.addEventListener("click", async () => {
    try {
      const doc = await api(patientPath(state.id) + "/drafts/export", { method: "POST", body: { encounter: select.value, text: editor.value, related } });
      const json = JSON.stringify(doc, null, 2);
      const link = h("a", { href: URL.createObjectURL(new Blob([json], { type: "application/fhir+json" })), download: "DocumentReference-" + doc.id + ".json" }, "Download DocumentReference");
      result.replaceChildren(h("p", {}, "DocumentReference (preliminary), not sent anywhere. "), link, h("pre", { class: "json", id: "export-json" }, json));
    } catch (e) {
      result.replaceChildren(h("p", { class: "error" }, e.message));
    }
  });
}

// ---- key ----------------------------------------------------------------------------------

function keyForm() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("key");
  input.value = sessionStorage.getItem(KEY_STORE) || "";
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value.trim()) sessionStorage.setItem(KEY_STORE, input.value.trim());
    else sessionStorage.removeItem(KEY_STORE);
    route();
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    input.value = "";
    route();
  });
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => { keyForm(); route(); });
