// Runlane web console: talks to the public API only. Text goes in through textContent; the
// only HTML inserted is the answer, rendered by the server with raw HTML disabled.
"use strict";

const API = "/api/v1/runs";
// A server with RUNLANE_AUTH=api-key asks for a key once per tab: it lives in sessionStorage
// (gone when the tab closes), goes out only in the Authorization header, never in a URL.
const KEY_STORE = "runlane.apiKey";
const ACTIVE = ["queued", "running"];
const $ = (id) => document.getElementById(id);
let current = { runId: null, timer: null, etag: null, status: null };
let listCursor = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path, { ...options, headers });
  let body = null;
  if (response.status !== 204 && response.status !== 304) body = await response.json();
  if (response.status === 401) askForKey(key ? body.message : "");
  return { response, body };
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
}

function forgetKey() {
  sessionStorage.removeItem(KEY_STORE);
  location.assign("/");
}

function runIdFromPath() {
  const match = location.pathname.match(/^\/runs\/([^/]+)$/);
  return match ? decodeURIComponent(match[1]) : null;
}

// ---- asking -------------------------------------------------------------------------------

async function submitQuestion(event) {
  event.preventDefault();
  const request = {
    question: $("question").value,
    markdown_path: $("markdown_path").value || "documents",
    enable_sql: $("enable_sql").checked,
    log_llm_payload: $("log_llm_payload").checked,
  };
  if ($("run_id").value) request.run_id = $("run_id").value;
  if ($("timeout_s").value) request.timeout_s = Number($("timeout_s").value);
  $("ask-button").disabled = true;
  $("ask-error").hidden = true;
  try {
    const { response, body } = await api(API, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(request),
    });
    if (!response.ok) {
      $("ask-error").textContent = body.message;
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

// ---- following a run ----------------------------------------------------------------------

function showRun(runId) {
  clearTimeout(current.timer);
  current = { runId, timer: null, etag: null, status: null };
  $("run").hidden = false;
  $("run-title").textContent = runId;
  for (const id of ["answer", "evidence", "run-why"]) $(id).hidden = true;
  $("run-question").textContent = "";
  $("run-meta").textContent = "";
  api(`${API}/${encodeURIComponent(runId)}`).then(({ response, body }) => {
    if (response.ok && current.runId === runId) $("run-question").textContent = body.request.question;
  });
  poll(runId);
}

async function poll(runId) {
  if (current.runId !== runId) return;
  const headers = current.etag ? { "If-None-Match": current.etag } : {};
  const { response, body } = await api(`${API}/${encodeURIComponent(runId)}/status`, { headers });
  if (current.runId !== runId) return;
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

function renderStatus(status) {
  current.status = status;
  const badge = $("run-status");
  badge.textContent = status.status.replaceAll("_", " ");
  badge.className = `badge ${status.status}`;
  $("cancel-button").hidden = !ACTIVE.includes(status.status) || Boolean(status.cancel_requested_at);
  const progress = status.progress;
  const done = ["completed", "completed_with_gaps"].includes(status.status);
  const fraction = done ? 1 : progress ? progress.fraction : 0;
  $("progress-fill").style.width = `${Math.round(fraction * 100)}%`;
  let text = status.status === "queued" ? "waiting for a worker" : "";
  if (progress) {
    const step = progress.stage_count ? ` ${progress.stage_index + 1}/${progress.stage_count}` : "";
    text = `${progress.stage}${step}: ${progress.message}`;
  }
  if (done) text = "done";
  if (status.cancel_requested_at && ACTIVE.includes(status.status)) text = "cancelling…";
  $("progress-text").textContent = `${text} (${Math.round(fraction * 100)}%)`;
  $("run-meta").textContent = `created ${status.created_at}` +
    (status.completed_at ? ` · finished ${status.completed_at}` : "");
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
  if (output.response.ok) {
    $("answer").innerHTML = output.body.html; // rendered server-side with raw HTML disabled
    $("answer").hidden = false;
  }
  if (context.response.ok) renderEvidence(context.body.context_bundle, status.gaps);
  loadRuns(true); // the list showed this run as still going
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
  $("evidence").hidden = false;
}

function renderSql(sql) {
  const box = $("sql");
  box.replaceChildren();
  if (!sql || !sql.enabled) return;
  const matches = sql.queries.filter((query) => query.rows.length);
  box.append(el("h3", { text: `SQL rows (${matches.length} of ${sql.queries.length} queries matched)` }));
  matches.forEach((query, index) => {
    const head = el("tr", {}, ...query.columns.map((column) => el("th", { text: column })));
    const rows = query.rows.map((row) => el("tr", {}, ...row.map((value) => el("td", { text: String(value) }))));
    box.append(el("div", { class: "sql", id: `evidence-D${index + 1}` },
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

async function loadRuns(reset) {
  if (reset) listCursor = null;
  const params = new URLSearchParams({ limit: "10" });
  if (listCursor) params.set("cursor", listCursor);
  const { response, body } = await api(`${API}?${params}`);
  if (!response.ok) return;
  const list = $("runs");
  if (reset) list.replaceChildren();
  for (const run of body.runs) {
    const link = el("a", { href: `/runs/${encodeURIComponent(run.run_id)}`, text: run.run_id });
    link.addEventListener("click", (event) => {
      event.preventDefault();
      history.pushState({}, "", link.getAttribute("href"));
      showRun(run.run_id);
      window.scrollTo(0, 0);
    });
    list.append(el("li", {}, link,
      el("span", { class: `badge ${run.status}`, text: run.status.replaceAll("_", " ") }),
      el("span", { class: "when", text: run.created_at })));
  }
  listCursor = body.next_cursor;
  $("more-runs").hidden = !listCursor;
}

function route() {
  const runId = runIdFromPath();
  if (runId) showRun(runId);
  else {
    clearTimeout(current.timer);
    current = { runId: null, timer: null, etag: null, status: null };
    $("run").hidden = true;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", useKey);
  $("forget-key").addEventListener("click", forgetKey);
  $("forget-key").hidden = !sessionStorage.getItem(KEY_STORE);
  $("ask-form").addEventListener("submit", submitQuestion);
  $("cancel-button").addEventListener("click", cancelRun);
  $("refresh-runs").addEventListener("click", () => loadRuns(true));
  $("more-runs").addEventListener("click", () => loadRuns(false));
  window.addEventListener("popstate", route);
  route();
  loadRuns(true);
});
