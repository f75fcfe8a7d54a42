"""Reading a finished run's artifacts; the run's state says whether each one should exist."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from app.runs.errors import ArtifactMissingError, ArtifactNotProducedError, RunGoneError, RunNotFinishedError
from app.runs.regular_files import read_regular
from app.runs.run_state import RunState
from app.runs.run_store import CONTEXT_FILE, FINAL_FILE, RunStore


@dataclass(frozen=True, slots=True)
class Artifact:
    state: RunState
    content: bytes
    display_path: str
    etag: str


def produced_state(store: RunStore, run_id: str, name: str) -> RunState:
    """The state of a terminal run that produced `final.md` (or `context_bundle.json`)."""
    state = store.get(run_id)
    what = "answer" if name == FINAL_FILE else "context bundle"
    if not state.status.is_terminal:
        raise RunNotFinishedError(run_id, state.status.value, what)
    produced = state.has_output if name == FINAL_FILE else state.has_context
    if not produced:
        raise ArtifactNotProducedError(run_id, state.status.value, what)
    return state


def read_artifact(store: RunStore, run_id: str, name: str) -> Artifact:
    """`final.md` or `context_bundle.json` of a terminal run, with its display path and ETag."""
    state = produced_state(store, run_id, name)
    try:
        content = read_regular(f"{store.root}/{run_id}/{name}")[0]
    except FileNotFoundError:
        # Deleted since its state was read: that is a 410 (or 404), not a server error.
        gone = store.absence_error(run_id)
        if isinstance(gone, RunGoneError) or not (store.root / run_id).exists():
            raise gone from None
        raise ArtifactMissingError(run_id, name, "missing from disk") from None
    except OSError as exc:
        raise ArtifactMissingError(run_id, name, f"unreadable ({exc.strerror or exc})") from None
    etag = f'"{hashlib.blake2b(content, digest_size=10).hexdigest()}"'
    return Artifact(state, content, store.display_path(run_id, name), etag)


def parse_context(artifact: Artifact) -> dict[str, Any]:
    try:
        bundle = orjson.loads(artifact.content)
    except orjson.JSONDecodeError:
        raise ArtifactMissingError(artifact.state.run_id, CONTEXT_FILE, "not valid JSON") from None
    if not isinstance(bundle, dict):
        raise ArtifactMissingError(artifact.state.run_id, CONTEXT_FILE, "not a JSON object")
    return bundle
