"""Answer quality on the bundled documents and data; prints figures, asserts nothing.

    .venv/bin/python scripts/bench_answers.py [--category NAME] [--show]

Runs every question of `scripts/answer_questions.py` through the default pipeline (in this
process, no server) and prints, per category and overall:
  * recall: the share of expected facts the answer states;
  * precision: the share of the answer's cited sentences that are on topic (they cite an
    expected source and state nothing forbidden);
  * gaps: the share of questions whose run ends with gaps exactly when the documents fall short.
Targets (issue 12): recall >= 0.85 in every category, precision >= 0.9, gaps >= 0.9.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from answer_questions import HELD_OUT, QUESTIONS, Question  # noqa: E402

from app.modules.contract import PipelineResult, RunContext, RunOptions  # noqa: E402
from app.modules.orchestrator.module import AnswerPipeline, PipelineConfig  # noqa: E402

DOCUMENTS = REPO_ROOT / "documents"
CITATION = re.compile(r"\[(D?\d+)\]")


@dataclass
class Score:
    facts_found: int
    facts: int
    on_topic: int
    sentences: int
    gap_right: bool
    answer: str


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def run(question: Question, workdir: Path) -> PipelineResult:
    run_dir = workdir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    options = RunOptions(question.question, DOCUMENTS, question.sql, False)
    ctx = RunContext("bench", run_dir, options, lambda *_args, **_kwargs: None, lambda: False)
    return AnswerPipeline(PipelineConfig(workdir / "indexes", DOCUMENTS / "data"))(ctx)


def score(question: Question, result: PipelineResult) -> Score:
    markdown = result.final_markdown or ""
    answer = markdown.split("\n## Sources", 1)[0]
    bundle: dict[str, Any] = result.context_bundle or {}
    files = {str(p["id"]): str(p["file"]).rsplit("/", 1)[-1] for p in bundle.get("passages", [])}
    text = _normalise(answer)
    found = sum(1 for fact in question.facts if _normalise(fact) in text)
    on_topic = sentences = 0
    for line in answer.splitlines():
        labels = CITATION.findall(line)
        if not labels or line.lstrip().startswith("|"):
            continue
        sentences += 1
        cites = {"sql" if label.startswith("D") else files.get(label, "?") for label in labels}
        relevant = bool(cites & set(question.sources)) and not question.gaps
        clean = not any(_normalise(bad) in _normalise(line) for bad in question.forbidden)
        on_topic += relevant and clean
    gap_right = (result.status == "completed_with_gaps") == question.gaps
    return Score(found, len(question.facts), on_topic, sentences, gap_right, answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--category", help="only this category")
    parser.add_argument("--show", action="store_true", help="print each answer that misses something")
    parser.add_argument(
        "--held-out", action="store_true", help="the questions the pipeline was never tuned on"
    )
    args = parser.parse_args()
    questions = [q for q in (HELD_OUT if args.held_out else QUESTIONS) if args.category in (None, q.category)]
    rows: dict[str, list[Score]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="runlane-answers-") as tmp:
        for question in questions:
            result = score(question, run(question, Path(tmp)))
            rows[question.category].append(result)
            missed = result.facts_found < result.facts or not result.gap_right
            if args.show and (missed or result.on_topic < result.sentences):
                print(f"--- {question.category}: {question.question}\n{result.answer}\n")
    kind = "held-out questions" if args.held_out else "questions"
    print(f"{len(questions)} {kind} over the bundled documents and data (default pipeline)\n")
    print("| category | questions | fact recall | sentence precision | gap decisions |")
    print("|---|---|---|---|---|")
    everything: list[Score] = []
    for category, scores in rows.items():
        everything += scores
        print(_row(category, scores))
    print(_row("**all**", everything))


def precision(scores: list[Score]) -> float:
    sentences = sum(s.sentences for s in scores)
    return sum(s.on_topic for s in scores) / sentences if sentences else 1.0


def _row(name: str, scores: list[Score]) -> str:
    facts = sum(s.facts for s in scores)
    recall = sum(s.facts_found for s in scores) / facts if facts else 1.0
    gaps = sum(s.gap_right for s in scores) / len(scores)
    return f"| {name} | {len(scores)} | {recall:.2f} | {precision(scores):.2f} | {gaps:.2f} |"


if __name__ == "__main__":
    main()
