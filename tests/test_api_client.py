"""The client's progress wording: the web console's words, for every state a run can be in."""

from __future__ import annotations

from typing import Any

from app.api_client import progress_line

PROGRESS = {
    "stage": "retrieve",
    "stage_index": 2,
    "stage_count": 7,
    "fraction": 0.4,
    "message": "12 passages",
}


def status(state: str, progress: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"status": state, "progress": progress, "cancel_requested_at": None, **fields}


def test_progress_is_worded_as_the_console_words_it() -> None:
    assert progress_line(status("queued")) == "waiting for a worker"
    assert progress_line(status("running", PROGRESS)) == "retrieve 3/7: 12 passages (40%)"
    no_count = {**PROGRESS, "stage_count": None}
    assert progress_line(status("running", no_count)) == "retrieve: 12 passages (40%)"
    assert progress_line(status("running", PROGRESS, cancel_requested_at="now")) == "cancelling…"
    assert progress_line(status("completed_with_gaps", PROGRESS)) == "done (100%)"
    ended = {**PROGRESS, "message": "stopped during sql"}
    assert progress_line(status("stopped", ended)) == "stopped during sql"
    assert progress_line(status("failed")) == "failed"
