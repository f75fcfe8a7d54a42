"""Feedback on an answer: what a regenerated run should leave out and focus on."""

from __future__ import annotations

from app.modules.feedback import parse_feedback


def test_leave_out_and_focus_on_clauses_are_read_from_plain_words() -> None:
    feedback = parse_feedback(
        "Please leave out methane; focus on heat pumps and grants. Omit the transport-plan.md"
    )
    assert feedback is not None
    assert feedback.leave_out == ("methane", "transport-plan.md")
    assert feedback.focus_on == ("heat", "pump", "grant")  # content words, as the search stems them
    assert feedback.leaves_out_sentence("Methane warms the climate strongly.")
    assert not feedback.leaves_out_sentence("Heat pumps get grants.")
    assert feedback.leaves_out_file("documents/transport-plan.md")
    assert not feedback.leaves_out_file("documents/climate-strategy-overview.md")


def test_feedback_without_either_clause_still_travels_as_text() -> None:
    feedback = parse_feedback("Shorter, please.")
    assert feedback is not None and feedback.text == "Shorter, please."
    assert (feedback.leave_out, feedback.focus_on) == ((), ())
    assert parse_feedback("  ") is None and parse_feedback(None) is None
