"""The answer benchmark's questions that the default pipeline answers well today stay answered:
every expected fact stated, gaps exactly when the documents fall short."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.server import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))

from answer_questions import QUESTIONS, Question
from bench_answers import precision, run, score

PINNED = [question for question in QUESTIONS if question.pinned]


def test_the_question_set_covers_every_category_the_benchmark_reports() -> None:
    categories = {question.category for question in QUESTIONS}
    assert len(QUESTIONS) >= 40 and len(categories) == 8
    assert all(sum(q.category == c for q in QUESTIONS) >= 5 for c in categories)


@pytest.mark.parametrize("question", PINNED, ids=[q.question for q in PINNED])
def test_a_pinned_question_keeps_its_facts_and_its_gap_decision(question: Question, tmp_path: Path) -> None:
    result = score(question, run(question, tmp_path))
    assert result.facts_found == result.facts, result.answer
    assert result.gap_right, result.answer
    assert not any(bad.lower() in result.answer.lower() for bad in question.forbidden), result.answer


def test_the_answers_stay_on_topic_over_the_whole_question_set(tmp_path: Path) -> None:
    scores = [score(question, run(question, tmp_path)) for question in QUESTIONS]
    assert precision(scores) >= 0.9, [s.answer for s in scores if s.on_topic < s.sentences]
