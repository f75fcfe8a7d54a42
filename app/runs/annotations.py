"""Notes people attach to a section of a finished run's answer, kept in `annotations.json`
in the run's folder (written atomically, under the run's lock)."""

from __future__ import annotations

from typing import Any

import orjson

from app import atomic_file
from app.runs.answer_sections import find_section, sections
from app.runs.answer_versions import AnswerVersions
from app.runs.errors import AnnotationNotFoundError, ArtifactMissingError, SectionNotFoundError
from app.runs.regular_files import read_regular
from app.runs.run_state import iso, utc_now

ANNOTATIONS_FILE = "annotations.json"


class Annotations:
    def __init__(self, versions: AnswerVersions) -> None:
        self.versions = versions
        self.store = versions.store

    def _load(self, run_id: str) -> dict[str, Any]:
        try:
            raw = read_regular(f"{self.store.root}/{run_id}/{ANNOTATIONS_FILE}")[0]
        except FileNotFoundError:
            return {"next_id": 1, "annotations": []}
        except OSError as exc:
            raise ArtifactMissingError(run_id, ANNOTATIONS_FILE, f"unreadable ({exc})") from None
        try:
            saved = orjson.loads(raw)
            valid = isinstance(saved["next_id"], int) and isinstance(saved["annotations"], list)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            valid = False
        if not valid:
            raise ArtifactMissingError(run_id, ANNOTATIONS_FILE, "not a valid list of annotations")
        return dict(saved)

    def listing(self, run_id: str) -> list[dict[str, Any]]:
        """A finished run's annotations, oldest first ([] for a run without an answer)."""
        return list(self._load(run_id)["annotations"])

    def add(self, run_id: str, wanted: str | int, text: str, key_id: str | None) -> dict[str, Any]:
        with self.store.locked(run_id) as run_dir:
            answer = self.versions.read(run_id)  # 409 until the run has an answer
            section = find_section(answer.text, wanted)
            if section is None:
                raise SectionNotFoundError(wanted, [s.heading for s in sections(answer.text)])
            saved = self._load(run_id)
            note = {
                "id": saved["next_id"],
                "section": section.heading,
                "text": text,
                "version": answer.version,
                "created_at": iso(utc_now()),
                "key_id": key_id,
            }
            saved = {"next_id": note["id"] + 1, "annotations": [*saved["annotations"], note]}
            atomic_file.write_json(run_dir / ANNOTATIONS_FILE, saved)
        return note

    def delete(self, run_id: str, annotation_id: int) -> None:
        with self.store.locked(run_id) as run_dir:
            self.versions.read(run_id)
            saved = self._load(run_id)
            kept = [note for note in saved["annotations"] if note.get("id") != annotation_id]
            if len(kept) == len(saved["annotations"]):
                raise AnnotationNotFoundError(run_id, annotation_id)
            atomic_file.write_json(run_dir / ANNOTATIONS_FILE, {**saved, "annotations": kept})
