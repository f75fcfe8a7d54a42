"""The default pipeline: answer a question from markdown documents (and SQL), with evidence and gaps.

Stages, each reported as progress: load, index, retrieve, sql, generate, validate, save.
Between stages (and between streamed LLM chunks) the pipeline asks whether it should stop,
and stops keeping what it has.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.modules.asked_facts import part_gaps
from app.modules.citations import explain_citations
from app.modules.contract import Gap, PipelineResult, RunContext
from app.modules.feedback import parse_feedback
from app.modules.relevance import term_weights
from app.modules.search.passage_index import PassageIndex, index_path_for
from app.modules.search.synonyms import synonyms
from app.modules.search.text import keywords, question_parts
from app.modules.sql.aggregates import find_aggregate
from app.modules.sql.figures import find_rows
from app.modules.validation import find_gaps
from app.modules.writers.evidence import Draft, Evidence, Source, Writer
from app.modules.writers.extractive import ExtractiveWriter
from app.modules.writers.llm import PAYLOAD_DIR, LlmSettings, LlmWriter

STAGES = ("load", "index", "retrieve", "sql", "generate", "validate", "save")
PASSAGES_PER_PART = 5
MAX_YEARS = 8  # years named in a question that narrow SQL rows (bounded, like its terms)


@dataclass(frozen=True)
class PipelineConfig:
    index_dir: Path
    data_dir: Path
    llm: LlmSettings | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineConfig:
        llm = None
        if settings.llm_base_url:
            llm = LlmSettings(
                settings.llm_base_url,
                settings.llm_model,
                settings.llm_api_key.get_secret_value(),
                settings.llm_timeout_s,
            )
        return cls(settings.output_dir / ".runlane" / "indexes", settings.data_dir, llm)


class StopRequestedError(Exception):
    """Raised between stages once the run should stop."""


class _Run:
    """One execution: the context, what has been gathered so far, and stage bookkeeping."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.bundle: dict[str, Any] = {
            "question": ctx.options.question,
            "options": {
                "markdown_path": ctx.options.markdown_path.name,
                "enable_sql": ctx.options.enable_sql,
                "log_llm_payload": ctx.options.log_llm_payload,
            },
            # Stage timings have one home, the run's log; the bundle points there.
            "stage_timings": "run.json (stages)",
        }
        self.stage = ""

    def enter(self, stage: str, message: str) -> None:
        if self.ctx.should_stop():
            raise StopRequestedError(stage)
        self.stage = stage
        self.ctx.report(stage, message, STAGES.index(stage) / len(STAGES))


class AnswerPipeline:
    stages = STAGES

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config

    def __call__(self, ctx: RunContext) -> PipelineResult:
        run = _Run(ctx)
        draft: Draft | None = None
        try:
            evidence = self._gather(run)
            run.enter("generate", "writing the answer")
            draft = self._writer(ctx).write(evidence, ctx.should_stop)
            if draft.stopped:
                raise StopRequestedError("generate")
            run.bundle["writer"] = draft.writer
            explain_citations(run.bundle, draft.markdown)
            run.enter("validate", "checking what the answer supports")
            gaps = find_gaps(evidence, draft.markdown)
            run.enter("save", "assembling the answer and its evidence")
        except StopRequestedError as stop:
            partial = draft.markdown if draft is not None else None
            return PipelineResult("stopped", f"stopped before {stop.args[0]}", partial, run.bundle)
        return self._result(run, draft.markdown, gaps)

    def _gather(self, run: _Run) -> Evidence:
        ctx = run.ctx
        run.enter("load", "reading the documents folder")
        index = PassageIndex(index_path_for(self.config.index_dir, ctx.options.markdown_path))
        try:
            run.enter("index", "updating the passage index")
            stats = index.sync(ctx.options.markdown_path)
            run.bundle["documents"] = {"folder": ctx.options.markdown_path.name, **stats.__dict__}
            run.enter("retrieve", "finding the best passages")
            evidence = self._retrieve(index, ctx)
        finally:
            index.close()
        run.bundle["passages"] = [source.as_dict() for source in evidence.sources]
        run.enter("sql", "querying the data folder" if ctx.options.enable_sql else "SQL not requested")
        if ctx.options.enable_sql:
            terms = [term for part in evidence.part_terms for term in part]
            years = [int(year) for year in re.findall(r"\b(?:19|20)\d{2}\b", ctx.options.question)]
            evidence.sql = find_rows(self.config.data_dir, terms, years[:MAX_YEARS])
            total = find_aggregate(self.config.data_dir, ctx.options.question, terms, years[:MAX_YEARS])
            if total is not None:  # "the largest / total / how many": the one figure asked for
                evidence.sql.queries.insert(0, total)
            # The answer cites the best-matching queries as [D1], [D2], ...
            labels = {id(query): f"D{n}" for n, query in enumerate(evidence.sql.matches, start=1)}
            run.bundle["sql"] = {
                "enabled": True,
                "databases": evidence.sql.databases,
                "queries": [
                    {**query.as_dict(), "label": labels.get(id(query))} for query in evidence.sql.queries
                ],
            }
        else:
            run.bundle["sql"] = {"enabled": False, "databases": [], "queries": []}
        # A part nothing answers is said to be unanswered, not filled with loosely related text.
        evidence.part_gaps = part_gaps(evidence)
        run.bundle["question_parts"] = [
            {
                "text": part,
                "keywords": terms,
                "answered": i not in evidence.part_gaps,
                "gap": evidence.part_gaps[i].as_dict() if i in evidence.part_gaps else None,
            }
            for i, (part, terms) in enumerate(zip(evidence.parts, evidence.part_terms, strict=True))
        ]
        return evidence

    def _retrieve(self, index: PassageIndex, ctx: RunContext) -> Evidence:
        parts = question_parts(ctx.options.question)
        feedback = parse_feedback(ctx.options.feedback)
        part_terms = [keywords(part) for part in parts]
        # "focus on <terms>" searches with them too (gaps are still judged on the question alone).
        focus = list(feedback.focus_on) if feedback else []
        # A question's words, the words that may stand for them ("rubbish dump": landfill) and
        # the feedback's focus are all searched for.
        searched = [
            list(dict.fromkeys([*terms, *(w for t in terms for w in sorted(synonyms(t))), *focus]))
            for terms in part_terms
        ]
        sources: list[Source] = []
        seen: dict[int, Source] = {}
        label = ctx.options.markdown_path.name
        for number, terms in enumerate(searched):
            for hit in index.search(terms, PASSAGES_PER_PART):
                if hit.passage_id in seen:
                    # Found again for another part: the same source serves that part too.
                    earlier = seen[hit.passage_id]
                    if earlier.part != number and number not in earlier.also:
                        widened = dataclasses.replace(earlier, also=earlier.also | {number})
                        sources[sources.index(earlier)] = seen[hit.passage_id] = widened
                    continue
                if feedback and feedback.leaves_out_file(f"{label}/{hit.file}"):
                    continue
                source = Source(
                    len(sources) + 1,
                    f"{label}/{hit.file}",
                    hit.heading,
                    hit.start_line,
                    hit.end_line,
                    hit.text,
                    hit.score,
                    number,
                )
                seen[hit.passage_id] = source
                sources.append(source)
        asked = {term for terms in part_terms for term in terms} | set(focus)
        weights = term_weights(sorted(asked), index.frequency, index.passage_count())
        return Evidence(ctx.options.question, parts, part_terms, sources, feedback=feedback, weights=weights)

    def _writer(self, ctx: RunContext) -> Writer:
        if self.config.llm is None:
            return ExtractiveWriter()
        payload_dir = ctx.run_dir / PAYLOAD_DIR if ctx.options.log_llm_payload else None
        return LlmWriter(self.config.llm, payload_dir)

    def _result(self, run: _Run, markdown: str, gaps: list[Gap]) -> PipelineResult:
        run.bundle["gaps"] = [gap.as_dict() for gap in gaps]
        if not gaps:
            return PipelineResult("completed", "answered", markdown, run.bundle)
        listed = "\n".join(f"- **{gap.subject}**: {gap.reason} ({gap.kind})" for gap in gaps)
        markdown = f"{markdown.rstrip()}\n\n## Gaps\n\n{listed}\n"
        kinds = sorted({gap.kind for gap in gaps})
        reason = f"{len(gaps)} gap(s) found: {', '.join(kinds)}"
        return PipelineResult("completed_with_gaps", reason, markdown, run.bundle, gaps)


@functools.cache
def _from_environment() -> AnswerPipeline:
    return AnswerPipeline(PipelineConfig.from_settings(Settings()))


def bind(settings: Settings) -> AnswerPipeline:
    """Runlane calls this at start-up so the pipeline follows the app's own settings."""
    return AnswerPipeline(PipelineConfig.from_settings(settings))


def run_pipeline(ctx: RunContext) -> PipelineResult:
    """The pipeline named by default in RUNLANE_PIPELINE (configured from the environment)."""
    return _from_environment()(ctx)


run_pipeline.stages = STAGES  # type: ignore[attr-defined]
run_pipeline.bind = bind  # type: ignore[attr-defined]
