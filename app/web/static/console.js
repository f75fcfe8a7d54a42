// Runlane web console: talks to the public API only. Text goes in through textContent; the
// only HTML inserted is the answer, rendered by the server with raw HTML disabled.
"use strict";

const API = "/api/v1/runs";
// A server with RUNLANE_AUTH=api-key asks for a key once per tab: it lives in sessionStorage
// (gone when the tab closes), goes out only in the Authorization header, never in a URL.
const KEY_STORE = "runlane.apiKey";
const ACTIVE = ["queued", "running"];
const DONE = ["completed", "completed_with_gaps"];
const RETRY_MAX_S = 15;
const LIST_REFRESH_S = 5;
const FIELDS = ["question", "markdown_path", "run_id", "timeout_s"];
const $ = (id) => document.getElementById(id);
let current = { runId: null, timer: null, etag: null, status: null, question: null, failures: 0 };
let listCursor = null;
let listTimer = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// Every call goes through here: a server that cannot be reached is an answer too
// (`offline`), never an uncaught "Failed to fetch".
async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    return lostConnection();
  }
  let body = null;
  if (response.status !== 204 && response.status !== 304) {
    try {
      body = await response.json();
    } catch (error) {
      if (response.ok) {
        // A success whose body cannot be read was cut off (the server went away part-way):
        // a lost connection, never a page that half-applies it.
        return lostConnection();
      }
      body = { message: `The server answered ${response.status} without a readable body.` };
    }
  }
  connection(true);
  if (response.status === 401) askForKey(key ? body.message : "");
  return { response, body, offline: false };
}

function lostConnection() {
  connection(false);
  return { response: null, body: null, offline: true };
}

function connection(up) {
  $("connection").hidden = up;
}

function runIdFromPath() {
  const match = location.pathname.match(/^\/runs\/([^/]+)$/);
  return match ? decodeURIComponent(match[1]) : null;
}

function ago(iso) {
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

function duration(run) {
  if (!run.started_at) return "";
  const end = run.completed_at ? Date.parse(run.completed_at) : Date.now();
  const seconds = Math.max(0, (end - Date.parse(run.started_at)) / 1000);
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

// ---- the API key --------------------------------------------------------------------------

function askForKey(message) {
  $("key-card").hidden = false;
  $("key-error").textContent = message;
  $("key-error").hidden = !message;
  $("api-key").focus();
}

function useKey(event) {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
  $("api-key").value = "";
  $("key-card").hidden = true;
  $("forget-key").hidden = false;
  route();
  loadRuns(true);
  loadServiceInfo();
}

function forgetKey() {
  sessionStorage.removeItem(KEY_STORE);
  location.assign("/");
}

// ---- asking -------------------------------------------------------------------------------

function clearFieldErrors() {
  for (const name of FIELDS) {
    $(`${name}-error`).hidden = true;
    $(name).removeAttribute("aria-invalid");
  }
  $("ask-error").hidden = true;
}

// "body.run_id: Value error, run_id must be ..." becomes "run_id must be ..." under the field.
function showFieldErrors(body) {
  let placed = false;
  for (const error of body.errors || []) {
    const name = error.loc[error.loc.length - 1];
    if (!FIELDS.includes(name)) continue;
    const words = error.msg.replace(/^Value error, /, "");
    $(`${name}-error`).textContent = words.endsWith(".") ? words : `${words}.`;
    $(`${name}-error`).hidden = false;
    $(name).setAttribute("aria-invalid", "true");
    if (!placed) $(name).focus();
    placed = true;
  }
  return placed;
}

async function submitQuestion(event) {
  event.preventDefault();
  const request = {
    question: $("question").value,
    markdown_path: $("markdown_path").value || "documents",
    enable_sql: $("enable_sql").checked,
  };
  if (!$("llm-options").hidden) request.log_llm_payload = $("log_llm_payload").checked;
  if ($("run_id").value) request.run_id = $("run_id").value;
  if ($("timeout_s").value) request.timeout_s = Number($("timeout_s").value);
  $("ask-button").disabled = true;
  clearFieldErrors();
  try {
    const { response, body, offline } = await api(API, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(request),
    });
    if (offline || !response.ok) {
      if (!offline && showFieldErrors(body)) return;
      $("ask-error").textContent = offline ? "Cannot reach the server; try again in a moment." : body.message;
      $("ask-error").hidden = false;
      return;
    }
    history.pushState({}, "", `/runs/${encodeURIComponent(body.run_id)}`);
    showRun(body.run_id);
    loadRuns(true);
  } finally {
    $("ask-button").disabled = false;
  }
}

function submitOnCtrlEnter(event) {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("ask-form").requestSubmit();
}

// ---- following a run ----------------------------------------------------------------------

function showRun(runId) {
  clearTimeout(current.timer);
  current = { runId, timer: null, etag: null, status: null, question: null, failures: 0 };
  $("run").hidden = false;
  $("run-title").textContent = runId;
  document.title = `Run ${runId} · Runlane`;
  for (const id of ["answer", "evidence", "run-why", "partial", "regenerate-form", "work", "regenerate-warning"]) {
    $(id).hidden = true;
  }
  $("run-question").textContent = "";
  $("run-meta").textContent = "";
  $("lineage").replaceChildren();
  loadDetail(runId);
  poll(runId);
}

function runLink(runId) {
  const link = el("a", { href: `/runs/${encodeURIComponent(runId)}`, text: runId });
  link.addEventListener("click", (event) => {
    event.preventDefault();
    history.pushState({}, "", link.getAttribute("href"));
    showRun(runId);
  });
  return link;
}

// The question, and the runs this one regenerates or was regenerated as.
async function loadDetail(runId) {
  const { response, body } = await api(`${API}/${encodeURIComponent(runId)}`);
  if (!response || !response.ok || current.runId !== runId) return;
  current.question = body.request.question;
  $("run-question").textContent = body.request.question;
  document.title = `${body.request.question} · Runlane`;
  const lineage = $("lineage");
  lineage.replaceChildren();
  if (body.parent_run_id) {
    lineage.append("Regenerated from ", runLink(body.parent_run_id),
      body.request.feedback ? ` with feedback: “${body.request.feedback}”. ` : ". ");
  }
  if (body.children.length) {
    lineage.append("Regenerated as ");
    body.children.forEach((child, index) => lineage.append(index ? ", " : "", runLink(child)));
    lineage.append(".");
  }
}

// Regenerating an answer with edits asks first: the new run will not carry them.
async function regenerate(event, force = false) {
  if (event) event.preventDefault();
  const runId = current.runId;
  $("feedback-error").hidden = true;
  $("regenerate-warning").hidden = true;
  $("regenerate-button").disabled = true;
  try {
    const { response, body, offline } = await api(`${API}/${encodeURIComponent(runId)}/regenerate`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ feedback: $("feedback").value, force }),
    });
    if (!offline && response.status === 409 && body.code === "EDITS_WOULD_BE_LOST") {
      $("regenerate-warning-text").textContent = `This answer has your edits in ${body.edited_sections
        .map((name) => `“${name}”`).join(", ")}. A new run answers afresh and will not carry them; ` +
        "they stay in this run's versions.";
      $("regenerate-warning").hidden = false;
      $("regenerate-force").focus();
      return;
    }
    if (offline || !response.ok) {
      const error = offline ? null : (body.errors || []).find((e) => e.loc.includes("feedback"));
      $("feedback-error").textContent = offline ? "Cannot reach the server; try again in a moment."
        : error ? `${error.msg.replace(/^Value error, /, "")}.` : body.message;
      $("feedback-error").hidden = false;
      return;
    }
    $("feedback").value = "";
    history.pushState({}, "", `/runs/${encodeURIComponent(body.run_id)}`);
    showRun(body.run_id);
    loadRuns(true);
  } finally {
    $("regenerate-button").disabled = false;
  }
}

async function poll(runId) {
  if (current.runId !== runId) return;
  const headers = current.etag ? { "If-None-Match": current.etag } : {};
  const { response, body, offline } = await api(`${API}/${encodeURIComponent(runId)}/status`, { headers });
  if (current.runId !== runId) return;
  if (offline || response.status >= 500) {
    // Keep trying, backing off, and say so: the run goes on while the server comes back.
    current.failures += 1;
    const wait = Math.min(RETRY_MAX_S, 2 ** current.failures);
    current.timer = setTimeout(() => poll(runId), wait * 1000);
    return;
  }
  current.failures = 0;
  if (response.status === 200) {
    current.etag = response.headers.get("etag");
    renderStatus(body);
  } else if (response.status !== 304) {
    renderMissing(body);
    return;
  }
  if (current.status && !ACTIVE.includes(current.status.status)) return finished(current.status);
  const wait = Number(response.headers.get("retry-after") || 2);
  current.timer = setTimeout(() => poll(runId), wait * 1000);
}

// The same words as `runlane ask --wait`: "waiting for a worker", "search 2/7: ... (40%)",
// "done (100%)", "stopped during sql", "cancelling…".
function progressWords(status) {
  const progress = status.progress;
  if (status.cancel_requested_at && ACTIVE.includes(status.status)) return "cancelling…";
  if (DONE.includes(status.status)) return "done (100%)";
  if (!ACTIVE.includes(status.status)) return (progress && progress.message) || status.status;
  if (!progress) return status.status === "queued" ? "waiting for a worker" : "starting";
  const step = progress.stage_count ? ` ${progress.stage_index + 1}/${progress.stage_count}` : "";
  return `${progress.stage}${step}: ${progress.message} (${Math.round(progress.fraction * 100)}%)`;
}

function renderStatus(status) {
  current.status = status;
  const badge = $("run-status");
  badge.textContent = status.status.replaceAll("_", " ");
  badge.className = `badge ${status.status}`;
  $("cancel-button").hidden = !ACTIVE.includes(status.status) || Boolean(status.cancel_requested_at);
  const ended = !ACTIVE.includes(status.status) && !DONE.includes(status.status);
  const fraction = DONE.includes(status.status) ? 1 : status.progress ? status.progress.fraction : 0;
  const percent = Math.round(fraction * 100);
  // A stopped or failed run's bar is not left frozen part-way: it is shown ended, with where.
  $("progress-fill").style.width = ended ? "100%" : `${percent}%`;
  $("progress-fill").className = ended ? `fill ended` : "fill";
  const bar = $("progress-bar");
  bar.setAttribute("aria-valuenow", String(ended ? 100 : percent));
  bar.setAttribute("aria-valuetext", progressWords(status));
  $("progress-text").textContent = progressWords(status);
  const took = duration(status);
  $("run-meta").textContent = `created ${ago(status.created_at)}` +
    (status.completed_at ? ` · finished ${ago(status.completed_at)}` : "") + (took ? ` · ${took}` : "");
}

function renderMissing(body) {
  $("run-status").textContent = body.code === "RUN_GONE" ? "deleted" : "not found";
  $("run-status").className = "badge failed";
  $("run-why").textContent = body.message;
  $("run-why").hidden = false;
  $("cancel-button").hidden = true;
}

async function finished(status) {
  const why = $("run-why");
  if (status.status === "failed") {
    why.textContent = `Failed: ${status.error.type}: ${status.error.message}`;
    why.hidden = false;
  } else if (status.status === "stopped") {
    why.textContent = `Stopped: ${status.finish_reason}`;
    why.hidden = false;
  }
  const runId = status.run_id;
  const [output, context] = await Promise.all([
    api(`${API}/${encodeURIComponent(runId)}/output/html`),
    api(`${API}/${encodeURIComponent(runId)}/context`),
  ]);
  if (current.runId !== runId) return;
  if (output.response && output.response.ok) {
    renderAnswer(output.body.html, status);
    loadWork(runId); // versions, edits and notes (answer_work.js)
  }
  if (context.response && context.response.ok) renderEvidence(context.body.context_bundle, status.gaps);
  $("regenerate-form").hidden = false;
  loadDetail(runId); // a regenerated run may have appeared meanwhile
  loadRuns(true); // the list showed this run as still going
}

function renderAnswer(html, status) {
  const answer = $("answer");
  answer.innerHTML = html; // rendered server-side with raw HTML disabled
  // One h1 per page: the answer's headings move one level down.
  for (const heading of answer.querySelectorAll("h1, h2, h3, h4, h5")) {
    const lower = el(`h${Number(heading.tagName[1]) + 1}`);
    lower.append(...heading.childNodes);
    heading.replaceWith(lower);
  }
  // Wide tables scroll sideways instead of breaking words and figures.
  for (const table of answer.querySelectorAll("table")) {
    const scroller = el("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": "table" });
    table.replaceWith(scroller);
    scroller.append(table);
  }
  answer.hidden = false;
  $("partial").hidden = status.status !== "stopped";
}

// A citation opens its passage and brings it into view.
function openCitation(event) {
  const link = event.target.closest("a.cite");
  if (!link) return;
  const target = document.getElementById(link.getAttribute("href").slice(1));
  if (!target) return;
  event.preventDefault();
  if (target.tagName === "DETAILS") target.open = true;
  history.replaceState(history.state, "", link.getAttribute("href"));
  target.scrollIntoView({ block: "center" });
  target.querySelector("summary")?.focus();
}

// ---- evidence -----------------------------------------------------------------------------

function renderEvidence(bundle, gaps) {
  const gapBox = $("gaps");
  gapBox.replaceChildren();
  for (const gap of gaps || bundle.gaps || []) {
    gapBox.append(el("div", { class: "gap", text: `Gap: ${gap.subject} — ${gap.reason}` }));
  }
  const passages = $("passages");
  passages.replaceChildren();
  for (const passage of bundle.passages || []) {
    const summary = el("summary", {},
      el("strong", { text: `[${passage.id}] ` }),
      el("span", { class: "file", text: passage.file }),
      ` § ${passage.heading} (lines ${passage.lines[0]}-${passage.lines[1]}) `,
      el("span", { class: "score", text: `score ${passage.score}` }));
    passages.append(el("details", { class: "passage", id: `evidence-${passage.id}` }, summary,
      el("pre", { text: passage.text })));
  }
  renderSql(bundle.sql);
  const writer = bundle.writer && bundle.writer.kind;
  $("writer").textContent = writer ? `Written by the ${writer} writer` +
    (bundle.writer.model ? ` (${bundle.writer.model})` : "") + "." : "";
  $("evidence").hidden = false;
}

function renderSql(sql) {
  const box = $("sql");
  box.replaceChildren();
  if (!sql || !sql.enabled) return;
  const matches = sql.queries.filter((query) => query.rows.length);
  box.append(el("h4", { text: `SQL rows (${matches.length} of ${sql.queries.length} queries matched)` }));
  matches.forEach((query, index) => {
    const head = el("tr", {}, ...query.columns.map((column) => el("th", { text: column })));
    const rows = query.rows.map((row) => el("tr", {}, ...row.map((value) => el("td", { text: String(value) }))));
    box.append(el("div", { class: "sql table-scroll", id: `evidence-D${index + 1}`, tabindex: "0" },
      el("p", { class: "file", text: `${query.database} · ${query.table}` }),
      el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows))));
  });
}

async function cancelRun() {
  if (!current.runId) return;
  $("cancel-button").disabled = true;
  const { body } = await api(`${API}/${encodeURIComponent(current.runId)}/cancel`, { method: "POST" });
  $("cancel-button").disabled = false;
  if (body && body.status) {
    current.etag = null;
    renderStatus(body);
    clearTimeout(current.timer);
    poll(current.runId);
  }
}

// ---- recent runs --------------------------------------------------------------------------

function runItem(run) {
  const label = run.question || run.run_id;
  const link = el("a", { href: `/runs/${encodeURIComponent(run.run_id)}`, text: label, title: run.run_id });
  link.addEventListener("click", (event) => {
    event.preventDefault();
    history.pushState({}, "", link.getAttribute("href"));
    showRun(run.run_id);
    window.scrollTo(0, 0);
  });
  const took = duration(run);
  return el("li", { "data-run-id": run.run_id }, link,
    el("span", { class: `badge ${run.status}`, text: run.status.replaceAll("_", " ") }),
    el("span", { class: "when", text: ago(run.created_at) + (took ? ` · ${took}` : "") }));
}

async function loadRuns(reset) {
  clearTimeout(listTimer);
  if (reset) listCursor = null;
  const params = new URLSearchParams({ limit: "10" });
  const filter = $("status-filter").value;
  if (filter) params.set("status", filter);
  if (reset === false && listCursor) params.set("cursor", listCursor);
  const { response, body } = await api(`${API}?${params}`);
  // The list follows runs as they change, and tries again after a lost connection.
  listTimer = setTimeout(() => loadRuns(true), LIST_REFRESH_S * 1000);
  if (!response || !response.ok) return;
  const list = $("runs");
  if (reset !== false) list.replaceChildren();
  list.append(...body.runs.map(runItem));
  const none = filter ? `No ${filter.replaceAll("_", " ")} runs.` : "No runs yet: ask a question above.";
  $("runs-empty").textContent = none;
  $("runs-empty").hidden = list.children.length > 0;
  listCursor = body.next_cursor;
  $("more-runs").hidden = !listCursor;
}

// Options that would do nothing are not offered: LLM payload logging needs an LLM.
async function loadServiceInfo() {
  const { response, body } = await api("/api/v1/service-info");
  const llm = Boolean(response && response.ok && body.writer === "llm");
  $("llm-options").hidden = !llm;
  $("writer-in-use").textContent = response && response.ok
    ? `Answers are written by ${llm ? "an LLM" : "the extractive writer (no LLM configured)"}.` : "";
}

function route() {
  const runId = runIdFromPath();
  if (runId) showRun(runId);
  else {
    clearTimeout(current.timer);
    current = { runId: null, timer: null, etag: null, status: null, question: null, failures: 0 };
    $("run").hidden = true;
    document.title = "Runlane console";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", useKey);
  $("forget-key").addEventListener("click", forgetKey);
  $("forget-key").hidden = !sessionStorage.getItem(KEY_STORE);
  $("ask-form").addEventListener("submit", submitQuestion);
  $("question").addEventListener("keydown", submitOnCtrlEnter);
  $("cancel-button").addEventListener("click", cancelRun);
  $("answer").addEventListener("click", openCitation);
  $("regenerate-form").addEventListener("submit", regenerate);
  $("regenerate-force").addEventListener("click", () => regenerate(null, true));
  $("regenerate-keep").addEventListener("click", () => { $("regenerate-warning").hidden = true; });
  $("refresh-runs").addEventListener("click", () => loadRuns(true));
  $("more-runs").addEventListener("click", () => loadRuns(false));
  $("status-filter").addEventListener("change", () => loadRuns(true));
  window.addEventListener("popstate", route);
  route();
  loadRuns(true);
  loadServiceInfo();
});
