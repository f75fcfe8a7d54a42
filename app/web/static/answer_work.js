// Working on a finished answer in the console: switch between its versions, edit a section
// (previewed as the server renders it, raw HTML never passing), and keep notes. Uses the
// helpers of console.js ($, el, api, API, current, renderAnswer). Text goes in as textContent;
// the only HTML inserted is what the server rendered.
"use strict";

const work = { runId: null, etag: null, latest: 1, shown: 1, sections: [] };
const runPath = (runId) => `${API}/${encodeURIComponent(runId)}`;

async function loadWork(runId) {
  const [output, versions, notes] = await Promise.all([
    api(`${runPath(runId)}/output`),
    api(`${runPath(runId)}/output/versions`),
    api(`${runPath(runId)}/annotations`),
  ]);
  if (current.runId !== runId || !output.response || !output.response.ok) return;
  Object.assign(work, {
    runId, etag: output.response.headers.get("etag"), latest: output.body.version,
    shown: output.body.version, sections: output.body.sections,
  });
  fillSections();
  if (versions.response && versions.response.ok) fillVersions(versions.body);
  if (notes.response && notes.response.ok) renderNotes(notes.body.annotations);
  listUncited($("uncited"), output.body.uncited_sentences, "Your edits say this without citing evidence:");
  if (output.body.unknown_citations.length) {
    $("uncited").append(el("p", {
      text: `Your edits cite evidence this run does not have: ${output.body.unknown_citations.join(", ")}.`,
    }));
    $("uncited").hidden = false;
  }
  $("edit-error").hidden = true;
  $("edit-preview").hidden = true;
  $("preview-uncited").hidden = true;
  $("work").hidden = false;
}

function fillSections() {
  for (const id of ["edit-section", "note-section"]) {
    const select = $(id);
    const chosen = select.value;
    select.replaceChildren(...work.sections.map((s) => el("option", { value: String(s.index), text: s.heading || "(top)" })));
    if (work.sections.some((s) => String(s.index) === chosen)) select.value = chosen;
  }
  fillEditText();
}

function fillEditText() {
  const section = work.sections.find((s) => String(s.index) === $("edit-section").value);
  $("edit-content").value = section ? section.content : "";
}

function fillVersions(listing) {
  const select = $("version-select");
  select.replaceChildren(...listing.versions.map((v) => el("option", {
    value: String(v.version),
    text: `${v.version} · ${v.source === "pipeline" ? "the pipeline's answer" : `edited ${v.sections_changed.join(", ")}`}` +
      (v.version === listing.latest_version ? " (latest)" : ""),
  })));
  select.value = String(work.shown);
  versionNote();
}

function versionNote() {
  const older = work.shown !== work.latest;
  $("version-note").textContent = older ? `Showing version ${work.shown}; the latest is ${work.latest}.` : "";
  // Edits are made on the latest version only.
  for (const id of ["edit-content", "edit-section", "save-edit", "preview-button"]) $(id).disabled = older;
}

async function showVersion() {
  const version = Number($("version-select").value);
  const { response, body } = await api(`${runPath(work.runId)}/output/html?version=${version}`);
  if (!response || !response.ok) return;
  work.shown = version;
  renderAnswer(body.html, current.status);
  versionNote();
}

function listUncited(box, sentences, title) {
  box.replaceChildren();
  box.hidden = !sentences.length;
  if (!sentences.length) return;
  box.append(el("p", { text: title }), el("ul", {}, ...sentences.map((s) => el("li", { text: s }))));
}

function editBody() {
  const section = Number($("edit-section").value);
  return JSON.stringify({ section, content: $("edit-content").value });
}

function showEditError(message) {
  $("edit-error").textContent = message;
  $("edit-error").hidden = false;
}

async function previewEdit() {
  $("edit-error").hidden = true;
  const { response, body, offline } = await api(`${runPath(work.runId)}/output/preview`, {
    method: "POST", headers: { "content-type": "application/json" }, body: editBody(),
  });
  if (offline || !response.ok) return showEditError(offline ? "Cannot reach the server." : body.message);
  const preview = $("edit-preview");
  preview.innerHTML = body.html; // rendered server-side with raw HTML disabled
  preview.hidden = false;
  listUncited($("preview-uncited"), body.uncited_sentences, "These sentences cite no evidence:");
}

async function saveEdit(event) {
  event.preventDefault();
  $("edit-error").hidden = true;
  $("save-edit").disabled = true;
  try {
    const { response, body, offline } = await api(`${runPath(work.runId)}/output`, {
      method: "PATCH",
      headers: { "content-type": "application/json", "If-Match": work.etag },
      body: editBody(),
    });
    if (offline) return showEditError("Cannot reach the server; your text is still here.");
    if (response.status === 409 && body.code === "VERSION_CONFLICT") {
      return showEditError(`Someone saved version ${body.latest_version} since you opened this answer. ` +
        "Copy your text, reload the page and edit the latest version.");
    }
    if (!response.ok) return showEditError(body.message);
    const html = await api(`${runPath(work.runId)}/output/html`);
    if (html.response && html.response.ok) renderAnswer(html.body.html, current.status);
    await loadWork(work.runId);
  } finally {
    $("save-edit").disabled = work.shown !== work.latest;
  }
}

function renderNotes(notes) {
  $("notes").replaceChildren(...notes.map((note) => {
    const remove = el("button", { type: "button", class: "secondary", text: "Delete" });
    remove.setAttribute("aria-label", `Delete note ${note.id}`);
    remove.addEventListener("click", () => deleteNote(note.id));
    return el("li", { "data-note-id": String(note.id) },
      el("strong", { text: note.section || "(top)" }), el("span", { class: "note-text", text: note.text }),
      el("span", { class: "meta", text: ago(note.created_at) }), remove);
  }));
  $("notes-empty").hidden = notes.length > 0;
}

async function reloadNotes() {
  const { response, body } = await api(`${runPath(work.runId)}/annotations`);
  if (response && response.ok) renderNotes(body.annotations);
}

async function addNote(event) {
  event.preventDefault();
  $("note-error").hidden = true;
  const { response, body, offline } = await api(`${runPath(work.runId)}/annotations`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ section: Number($("note-section").value), text: $("note-text").value }),
  });
  if (offline || !response.ok) {
    const error = offline ? null : (body.errors || []).find((e) => e.loc.includes("text"));
    $("note-error").textContent = offline ? "Cannot reach the server."
      : error ? `${error.msg.replace(/^Value error, /, "")}.` : body.message;
    $("note-error").hidden = false;
    return;
  }
  $("note-text").value = "";
  reloadNotes();
}

async function deleteNote(id) {
  const { response } = await api(`${runPath(work.runId)}/annotations/${id}`, { method: "DELETE" });
  if (response && (response.ok || response.status === 404)) reloadNotes();
}

document.addEventListener("DOMContentLoaded", () => {
  $("version-select").addEventListener("change", showVersion);
  $("edit-section").addEventListener("change", fillEditText);
  $("preview-button").addEventListener("click", previewEdit);
  $("edit-form").addEventListener("submit", saveEdit);
  $("note-form").addEventListener("submit", addNote);
});
