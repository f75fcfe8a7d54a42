"""Versions of a finished run's answer: people edit one section at a time, every version is kept.

In the run's folder:
  final.md             the latest answer (the pipeline's, until somebody edits it)
  versions/1.md        the pipeline's answer, kept at the first edit and never changed again
  versions/<n>.md      every edited version, whole
  versions.json        the record: one entry per version (number, time, source, sections
                       changed, the key that made it)

`versions.json` is the commit point.  An edit writes its version file, then the record, then
final.md, each atomically, under the run's lock: a version file the record does not list is a
leftover of an edit cut short (the next edit writes over it), and the API reads the version the
record names, so a crash before final.md is rewritten shows no version the record lacks; the
next edit brings final.md up to date.  The context bundle is never edited.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

from app import atomic_file
from app.runs.answer_sections import (
    Section,
    find_section,
    replace_section,
    section_text,
    sections,
    uncited_sentences,
)
from app.runs.errors import (
    ArtifactMissingError,
    PreconditionRequiredError,
    SectionNotFoundError,
    VersionConflictError,
    VersionNotFoundError,
)
from app.runs.regular_files import read_regular
from app.runs.run_artifacts import produced_state, read_artifact
from app.runs.run_state import RunState, iso, utc_now
from app.runs.run_store import FINAL_FILE, RunStore

VERSIONS_DIR = "versions"
CITATION = re.compile(r"\[(D?\d+)\]")
RECORD_FILE = "versions.json"


def etag_of(version: int, content: bytes) -> str:
    # Version 1 keeps the ETag the output always had; later ones name their number too.
    data = content if version == 1 else f"v{version}\n".encode() + content
    return f'"{hashlib.blake2b(data, digest_size=10).hexdigest()}"'


@dataclass(frozen=True)
class Answer:
    """One version of a run's answer, with what a client needs to edit it."""

    state: RunState
    content: bytes
    version: int
    latest: int
    record: list[dict[str, Any]]  # empty while nobody has edited the answer
    display_path: str

    @property
    def etag(self) -> str:
        return etag_of(self.version, self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def edited_sections(self) -> list[str]:
        """Every section people have changed, in the order they first changed it."""
        return changed_sections(self.record)

    def sections(self) -> list[dict[str, Any]]:
        """Each section: its index, heading and text (what an editor starts from)."""
        return [
            {"index": s.index, "heading": s.heading, "content": section_text(self.text, s).strip("\n")}
            for s in sections(self.text)
        ]

    def uncited(self) -> list[str]:
        """Sentences of edited sections that cite nothing: said by a person, not the evidence."""
        edited = set(self.edited_sections)
        return [
            sentence
            for section in sections(self.text)
            if section.heading in edited
            for sentence in uncited_sentences(section_text(self.text, section))
        ]

    def unknown_citations(self, evidence: set[str] | None) -> list[str]:
        """Citations in edited sections of evidence the run does not have ([9] of five passages);
        None when the run's bundle does not say what it holds (a plugged-in pipeline's own)."""
        if evidence is None:
            return []
        edited = set(self.edited_sections)
        cited = (
            label
            for section in sections(self.text)
            if section.heading in edited
            for label in CITATION.findall(section_text(self.text, section))
        )
        return [f"[{label}]" for label in dict.fromkeys(cited) if label not in evidence]


def changed_sections(record: list[dict[str, Any]]) -> list[str]:
    changed = (name for entry in record for name in entry.get("sections_changed", []))
    return list(dict.fromkeys(changed))


def evidence_labels(bundle: dict[str, Any]) -> set[str] | None:
    """What an answer may cite, from the default pipeline's bundle: [n] passages, [Dn] data."""
    passages = bundle.get("passages")
    if not isinstance(passages, list):
        return None
    labels = {str(p.get("id")) for p in passages if isinstance(p, dict)}
    sql = bundle.get("sql")
    queries = sql.get("queries", []) if isinstance(sql, dict) else []
    return labels | {str(q["label"]) for q in queries if isinstance(q, dict) and q.get("label")}


class AnswerVersions:
    def __init__(self, store: RunStore) -> None:
        self.store = store

    def _record(self, run_id: str) -> list[dict[str, Any]]:
        path = f"{self.store.root}/{run_id}/{RECORD_FILE}"
        try:
            raw = read_regular(path)[0]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ArtifactMissingError(run_id, RECORD_FILE, f"unreadable ({exc})") from None
        try:
            record = orjson.loads(raw)["versions"]
            valid = isinstance(record, list) and all(isinstance(entry["version"], int) for entry in record)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            valid = False
        if not valid:
            raise ArtifactMissingError(run_id, RECORD_FILE, "not a valid version record")
        return list(record)

    def _version_file(self, run_id: str, version: int) -> bytes:
        name = f"{VERSIONS_DIR}/{version}.md"
        try:
            return read_regular(f"{self.store.root}/{run_id}/{name}")[0]
        except OSError as exc:
            raise ArtifactMissingError(run_id, name, f"unreadable ({exc})") from None

    def read(self, run_id: str, version: int | None = None) -> Answer:
        """The latest version of a finished run's answer, or the one asked for."""
        state = produced_state(self.store, run_id, FINAL_FILE)  # 409 until it has an answer
        record = self._record(run_id)
        latest = record[-1]["version"] if record else 1
        wanted = latest if version is None else version
        if not 1 <= wanted <= latest:
            raise VersionNotFoundError(run_id, wanted, latest)
        if record:
            content = self._version_file(run_id, wanted)
        else:  # never edited: final.md is the one version
            content = read_artifact(self.store, run_id, FINAL_FILE).content
        path = self.store.display_path(
            run_id, FINAL_FILE if wanted == latest else f"{VERSIONS_DIR}/{wanted}.md"
        )
        return Answer(state, content, wanted, latest, record, path)

    def summary(self, run_id: str) -> dict[str, Any]:
        """What the run detail says of the answer's versions (from the record alone)."""
        record = self._record(run_id)
        return {
            "version": record[-1]["version"] if record else 1,
            "has_user_edits": len(record) > 1,
            "edited_sections": changed_sections(record),
        }

    def listing(self, run_id: str) -> list[dict[str, Any]]:
        """Every version, oldest first, each with the path of its file."""
        answer = self.read(run_id)
        if not answer.record:
            only = _entry(1, "pipeline", [], None, answer.state.completed_at)
            return [{**only, "path": self.store.display_path(run_id, FINAL_FILE)}]
        return [{**entry, "path": self.store.display_path(run_id, entry["path"])} for entry in answer.record]

    def preview(self, run_id: str, wanted: str | int, content: str) -> tuple[str, list[str]]:
        """The latest answer as it would read with one section replaced, and the sentences of
        the new text that cite nothing; nothing is saved."""
        current = self.read(run_id)
        section = _section(current.text, wanted)
        return replace_section(current.text, section, content), uncited_sentences(content)

    def edit(
        self,
        run_id: str,
        wanted: str | int,
        content: str,
        if_match: str | None,
        base_version: int | None,
        key_id: str | None,
    ) -> Answer:
        """Replace one section of the latest version with `content`, as a new version.  The
        edit names the version it was made on (an ETag or a number); a stale one changes nothing."""
        with self.store.locked(run_id) as run_dir:
            current = self.read(run_id)
            if if_match is None and base_version is None:
                raise PreconditionRequiredError()
            fresh = if_match in (current.etag, f"W/{current.etag}") if if_match is not None else True
            if not fresh or (base_version is not None and base_version != current.latest):
                raise VersionConflictError(run_id, current.latest, current.etag)
            section = _section(current.text, wanted)
            edited = replace_section(current.text, section, content).encode()
            number = current.latest + 1
            record = current.record or [_entry(1, "pipeline", [], None, current.state.completed_at)]
            record = [*record, _entry(number, "edit", [section.heading], key_id, iso(utc_now()))]
            folder = run_dir / VERSIONS_DIR
            folder.mkdir(exist_ok=True)
            if not current.record:  # the pipeline's answer, kept before anything changes
                atomic_file.write_bytes(folder / "1.md", current.content)
            atomic_file.write_bytes(folder / f"{number}.md", edited)
            atomic_file.write_json(run_dir / RECORD_FILE, {"versions": record})  # the commit
            atomic_file.write_bytes(run_dir / FINAL_FILE, edited)
        return Answer(
            current.state, edited, number, number, record, self.store.display_path(run_id, FINAL_FILE)
        )


def _section(markdown: str, wanted: str | int) -> Section:
    section = find_section(markdown, wanted)
    if section is None:
        raise SectionNotFoundError(wanted, [s.heading for s in sections(markdown)])
    return section


def _entry(
    version: int, source: str, changed: list[str], key_id: str | None, at: str | None
) -> dict[str, Any]:
    return {
        "version": version,
        "created_at": at,
        "source": source,
        "sections_changed": changed,
        "key_id": key_id,
        "path": f"{VERSIONS_DIR}/{version}.md",
    }
