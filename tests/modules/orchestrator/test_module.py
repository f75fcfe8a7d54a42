from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.modules.contract import PipelineResult, RunContext, RunOptions
from app.modules.orchestrator.module import STAGES, AnswerPipeline, PipelineConfig
from app.modules.writers.llm import LlmSettings
from tests.support.fake_llm import fake_llm

REPO = Path(__file__).resolve().parents[3]
DOCUMENTS = REPO / "documents"
DATA = DOCUMENTS / "data"

# Question -> the sample document that answers it.
QUALITY_PAIRS = [
    ("What are main climate initiatives?", "climate-strategy-overview.md"),
    ("How much funding does the Green Investment Fund provide?", "green-investment-fund.md"),
    ("When will the coal power plants close?", "coal-phase-out.md"),
    ("What grants exist for heat pumps and home insulation?", "building-retrofit.md"),
    ("How is the carbon price set and how is the revenue used?", "carbon-pricing.md"),
    ("What are the targets for electric cars and public charging points?", "clean-transport.md"),
    ("How many trees will the forest restoration programme plant?", "forest-restoration.md"),
    ("How is methane from landfills and livestock reduced?", "methane-reduction.md"),
    ("What protects the coast from flooding?", "flood-defence.md"),
    ("How are community energy cooperatives supported?", "community-energy.md"),
    ("What is the plan for green hydrogen in heavy industry?", "industrial-hydrogen.md"),
    ("What training is offered for green jobs?", "green-skills.md"),
    ("What is the offshore wind capacity target?", "renewable-energy.md"),
    ("How does the region cope with heatwaves?", "heat-resilience.md"),
    ("What are the recycling targets?", "circular-economy.md"),
    ("How is progress on emissions reported?", "monitoring-reporting.md"),
    ("How are cities increasing tree canopy?", "urban-greening.md"),
]


class Reports:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float | None]] = []

    def __call__(self, stage: str, message: str = "", fraction: float | None = None) -> None:
        self.calls.append((stage, message, fraction))


def context(
    tmp_path: Path,
    question: str,
    *,
    enable_sql: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    log_llm_payload: bool = False,
    documents: Path = DOCUMENTS,
    feedback: str | None = None,
) -> tuple[RunContext, Reports]:
    reports = Reports()
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    options = RunOptions(question, documents, enable_sql, log_llm_payload, feedback)
    return RunContext("run-1", run_dir, options, reports, should_stop), reports


@pytest.fixture
def pipeline(tmp_path: Path) -> AnswerPipeline:
    return AnswerPipeline(PipelineConfig(tmp_path / "indexes", DATA))


def cited_files(result: PipelineResult) -> set[str]:
    assert result.final_markdown is not None and result.context_bundle is not None
    answer = result.final_markdown.split("## Sources")[0]
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", answer)}
    return {p["file"].split("/")[-1] for p in result.context_bundle["passages"] if p["id"] in numbers}


def test_retrieval_puts_the_expected_file_in_the_top_5_and_the_answer_cites_it(
    pipeline: AnswerPipeline, tmp_path: Path
) -> None:
    assert len(QUALITY_PAIRS) >= 12
    retrieved = cited = 0
    misses = []
    for question, expected in QUALITY_PAIRS:
        ctx, _ = context(tmp_path, question)
        result = pipeline(ctx)
        assert result.context_bundle is not None
        top5 = [p["file"].split("/")[-1] for p in result.context_bundle["passages"][:5]]
        retrieved += expected in top5
        cited += expected in cited_files(result)
        if expected not in top5 or expected not in cited_files(result):
            misses.append((question, expected, top5))
    assert retrieved >= len(QUALITY_PAIRS) - 1, misses
    assert cited >= len(QUALITY_PAIRS) - 1, misses


def test_contract_question_is_completed_with_a_cited_answer_and_its_evidence(
    pipeline: AnswerPipeline, tmp_path: Path
) -> None:
    ctx, reports = context(tmp_path, "What are main climate initiatives?")
    result = pipeline(ctx)
    assert (result.status, result.finish_reason, result.gaps) == ("completed", "answered", [])
    assert result.final_markdown is not None and result.context_bundle is not None
    assert "Renewable Power Programme" in result.final_markdown
    assert (
        "## Sources" in result.final_markdown
        and "`documents/climate-strategy-overview.md`" in result.final_markdown
    )
    for line in result.final_markdown.split("## Sources")[0].splitlines():
        if line.startswith("- "):
            assert re.search(r"\[\d+\]$", line), f"uncited statement: {line}"
    bundle = result.context_bundle
    assert bundle["question"] == "What are main climate initiatives?"
    assert bundle["writer"] == {"kind": "extractive"}
    passage = bundle["passages"][0]
    fields = {
        "id",
        "file",
        "heading",
        "lines",
        "score",
        "question_part",
        "also_answers_parts",
        "text",
        "cited",
    }
    assert set(passage) == fields
    assert bundle["stage_timings"] == "run.json (stages)"  # one home for timings
    # The bundle says what the answer cites, and from which line; Sources lists only those.
    cited = {label for entry in bundle["citations"] for label in entry["cites"]}
    assert all(entry["sentence"] in result.final_markdown for entry in bundle["citations"])
    assert {str(p["id"]) for p in bundle["passages"] if p["cited"]} == cited
    sources = result.final_markdown.split("## Sources")[1]
    assert {n for n in re.findall(r"\[(\d+)\]", sources)} == cited
    assert bundle["also_considered"] == [p["id"] for p in bundle["passages"] if not p["cited"]]
    assert bundle["documents"]["files"] == 17
    assert [stage for stage, _, _ in reports.calls] == list(STAGES)
    fractions = [fraction for _, _, fraction in reports.calls]
    assert fractions == sorted(fractions) and all(0 <= f < 1 for f in fractions if f is not None)
    orjson.dumps(bundle)  # the bundle is JSON-serialisable


def test_unanswerable_question_ends_with_gaps_and_invents_nothing(
    pipeline: AnswerPipeline, tmp_path: Path
) -> None:
    ctx, _ = context(tmp_path, "What is the recipe for chocolate cake?")
    result = pipeline(ctx)
    assert result.status == "completed_with_gaps"
    assert "unanswered_part" in result.finish_reason
    [gap] = result.gaps
    assert gap.kind == "unanswered_part" and "chocolate" in gap.reason
    assert result.final_markdown is not None and "## Gaps" in result.final_markdown
    assert "do not answer" in result.final_markdown
    assert not re.search(r"^- .*\[\d+\]$", result.final_markdown, re.M)  # no cited claims
    assert result.context_bundle is not None and result.context_bundle["gaps"] == [gap.as_dict()]


def test_a_question_with_an_unanswerable_part_names_that_part(
    pipeline: AnswerPipeline, tmp_path: Path
) -> None:
    ctx, _ = context(tmp_path, "What is the offshore wind target? What is the price of bananas in Tokyo?")
    result = pipeline(ctx)
    assert result.status == "completed_with_gaps"
    assert [gap.subject for gap in result.gaps] == ["What is the price of bananas in Tokyo"]
    assert result.final_markdown is not None and "3.5 gigawatts" in result.final_markdown


def test_sql_rows_are_found_recorded_and_cited_when_enabled(pipeline: AnswerPipeline, tmp_path: Path) -> None:
    ctx, _ = context(tmp_path, "What is the offshore wind capacity target?", enable_sql=True)
    result = pipeline(ctx)
    assert result.status == "completed"
    sql = result.context_bundle["sql"] if result.context_bundle else {}
    assert sql["enabled"] and sql["databases"] == ["climate_programmes.sqlite"]
    assert all({"database", "table", "sql", "params", "columns", "rows"} <= set(q) for q in sql["queries"])
    rows = [row for query in sql["queries"] for row in query["rows"]]
    assert any("offshore wind capacity" in row for row in rows)
    assert result.final_markdown is not None and "## Figures from the data" in result.final_markdown
    assert "[D1]" in result.final_markdown


def test_sql_is_not_touched_when_disabled(pipeline: AnswerPipeline, tmp_path: Path) -> None:
    ctx, _ = context(tmp_path, "What is the offshore wind capacity target?")
    result = pipeline(ctx)
    assert result.context_bundle is not None
    assert result.context_bundle["sql"] == {"enabled": False, "databases": [], "queries": []}


@pytest.mark.parametrize("checks_before_stop", [0, 2, 4])
def test_stop_request_ends_the_run_stopped_keeping_what_it_has(
    pipeline: AnswerPipeline, tmp_path: Path, checks_before_stop: int
) -> None:
    checks = {"count": 0}

    def should_stop() -> bool:
        checks["count"] += 1
        return checks["count"] > checks_before_stop

    ctx, reports = context(tmp_path, "What are main climate initiatives?", should_stop=should_stop)
    result = pipeline(ctx)
    assert result.status == "stopped"
    assert result.finish_reason == f"stopped before {STAGES[checks_before_stop]}"
    assert len(reports.calls) == checks_before_stop
    assert result.context_bundle is not None and result.context_bundle["question"] == ctx.options.question


def llm_pipeline(tmp_path: Path, url: str) -> AnswerPipeline:
    settings = LlmSettings(url, "fake-model", "sk-test-secret-key", 10)
    return AnswerPipeline(PipelineConfig(tmp_path / "indexes", DATA, settings))


def test_llm_writer_streams_a_cited_answer_and_logs_payloads_without_the_key(tmp_path: Path) -> None:
    chunks = ["The main initiatives are ", "renewable power [1] ", "and home retrofits [2]."]
    with fake_llm(chunks) as llm:
        ctx, _ = context(tmp_path, "What are main climate initiatives?", log_llm_payload=True)
        result = llm_pipeline(tmp_path, llm.url)(ctx)
    assert result.status == "completed", result.gaps
    assert result.final_markdown is not None
    assert "renewable power [1] and home retrofits [2]." in result.final_markdown
    assert result.context_bundle is not None
    assert result.context_bundle["writer"]["kind"] == "llm"
    [request] = llm.requests
    assert request["stream"] is True and request["model"] == "fake-model"
    assert "[1] (documents/" in request["messages"][1]["content"]
    assert llm.headers[0]["authorization"] == "Bearer sk-test-secret-key"
    logged = {path.name: path.read_text() for path in (ctx.run_dir / "llm").iterdir()}
    assert set(logged) == {"request.json", "response.json"}
    assert "renewable power" in logged["response.json"]
    assert all("sk-test-secret-key" not in text for text in logged.values())


def test_llm_answer_citing_missing_evidence_is_a_gap(tmp_path: Path) -> None:
    with fake_llm(["Everything is solved [99]."]) as llm:
        ctx, _ = context(tmp_path, "What are main climate initiatives?")
        result = llm_pipeline(tmp_path, llm.url)(ctx)
    assert result.status == "completed_with_gaps"
    assert {gap.kind for gap in result.gaps} == {"broken_citation", "uncited_answer"}
    assert not (ctx.run_dir / "llm").exists()  # payload logging was off


def test_an_llm_sentence_that_cites_nothing_is_a_gap_naming_it(tmp_path: Path) -> None:
    chunks = ["The main initiatives include renewable power [1]. ", "Nuclear plants are planned for 2040."]
    with fake_llm(chunks) as llm:
        ctx, _ = context(tmp_path, "What are main climate initiatives?")
        result = llm_pipeline(tmp_path, llm.url)(ctx)
    assert result.status == "completed_with_gaps"
    assert [(gap.kind, gap.subject) for gap in result.gaps] == [
        ("uncited_sentence", "Nuclear plants are planned for 2040.")
    ]


def test_an_llm_answer_citing_nothing_for_one_part_has_that_part_as_a_gap(tmp_path: Path) -> None:
    question = "What is the offshore wind target, and when are the auction rounds?"
    with fake_llm(["The offshore wind target is 3.5 gigawatts [1]."]) as llm:
        ctx, _ = context(tmp_path, question)
        result = llm_pipeline(tmp_path, llm.url)(ctx)
    assert result.context_bundle is not None
    second = result.context_bundle["passages"]
    assert not any(p["id"] == 1 and 1 in [p["question_part"], *p["also_answers_parts"]] for p in second)
    assert [(gap.kind, gap.subject, gap.reason) for gap in result.gaps] == [
        ("unanswered_part", "when are the auction rounds", "the answer cites no evidence for this part")
    ]


def test_llm_stream_is_abandoned_promptly_when_the_run_should_stop(tmp_path: Path) -> None:
    with fake_llm(["first part [1] ", "never sent"]) as llm:
        llm.hold_after_first_chunk.clear()
        stop: dict[str, Any] = {"now": False}

        def should_stop() -> bool:
            if llm.first_chunk_sent.is_set():
                stop["now"] = True
            return bool(stop["now"])

        ctx, _ = context(tmp_path, "What are main climate initiatives?", should_stop=should_stop)
        result = llm_pipeline(tmp_path, llm.url)(ctx)
    assert result.status == "stopped" and result.finish_reason == "stopped before generate"


def test_stop_closes_an_llm_stream_that_has_stalled(tmp_path: Path) -> None:
    """The endpoint goes silent after one chunk; the stop must not wait for a chunk that never comes."""
    with fake_llm(["first part [1] ", "never sent"]) as llm:
        llm.hold_after_first_chunk.clear()
        stop_requested = threading.Event()

        def should_stop() -> bool:
            return stop_requested.is_set()

        ctx, _ = context(tmp_path, "What are main climate initiatives?", should_stop=should_stop)
        outcome: list[PipelineResult] = []
        worker = threading.Thread(target=lambda: outcome.append(llm_pipeline(tmp_path, llm.url)(ctx)))
        worker.start()
        assert llm.first_chunk_sent.wait(10)
        stop_requested.set()
        # Generous room for a loaded machine, far below the 600 s the server stays silent: only
        # a stop that waits for the stalled stream can run out of it.
        worker.join(60)
        assert not worker.is_alive()
    assert outcome[0].status == "stopped"


def _answer(result: PipelineResult) -> str:
    assert result.final_markdown is not None
    return result.final_markdown.split("## Sources")[0]


def test_every_sentence_of_the_answer_is_about_the_question(pipeline: AnswerPipeline, tmp_path: Path) -> None:
    answer = _answer(pipeline(context(tmp_path, "What are main climate initiatives?")[0]))
    assert "Renewable Power Programme" in answer
    # Methane warming the climate was cited here once: a sentence that shares one word.
    assert "Methane warms" not in answer
    wind = _answer(pipeline(context(tmp_path, "What is the offshore wind capacity target?")[0]))
    assert "3.5 gigawatts" in wind
    assert "cooperatives" not in wind and "demand response" not in wind


def test_feedback_leaves_out_a_topic_and_focuses_on_terms(pipeline: AnswerPipeline, tmp_path: Path) -> None:
    question = "What are main climate initiatives?"
    before = _answer(pipeline(context(tmp_path, question)[0]))
    assert "methane" in before.lower() and "heat pump" not in before.lower()
    ctx, _ = context(tmp_path, question, feedback="leave out methane; focus on heat pumps")
    after = _answer(pipeline(ctx))
    assert "methane" not in after.lower()
    assert "heat pump" in after.lower()
    assert "Renewable Power Programme" in after  # still an answer to the question


def test_feedback_leaves_out_a_source_file(pipeline: AnswerPipeline, tmp_path: Path) -> None:
    question = "What are main climate initiatives?"
    first = pipeline(context(tmp_path, question)[0])
    assert "documents/climate-strategy-overview.md" in cited_files(first) | {
        p["file"] for p in (first.context_bundle or {}).get("passages", [])
    }
    ctx, _ = context(tmp_path, question, feedback="leave out climate-strategy-overview.md")
    result = pipeline(ctx)
    assert result.context_bundle is not None
    assert all("climate-strategy-overview" not in p["file"] for p in result.context_bundle["passages"])


def test_the_llm_writer_is_given_the_feedback(tmp_path: Path) -> None:
    with fake_llm(["Renewable power [1]."]) as llm:
        ctx, _ = context(tmp_path, "What are main climate initiatives?", feedback="focus on heat pumps")
        llm_pipeline(tmp_path, llm.url)(ctx)
    prompt = llm.requests[0]["messages"][-1]["content"]
    assert prompt.endswith("Feedback on an earlier answer to this question; follow it:\nfocus on heat pumps")


def test_a_question_of_hundreds_of_distinct_words_with_sql_still_answers(
    pipeline: AnswerPipeline, tmp_path: Path
) -> None:
    """SQLite once refused such a question ("Expression tree is too large"): the SQL it builds
    stays bounded however many words the question has."""
    filler = " ".join(a + b + c for a in "bcdfg" for b in "aeiou" for c in "klmnprst")  # 200 words
    question = f"What is the offshore wind capacity target and {filler} {filler.upper()} {filler.title()}"[
        :4000
    ]
    assert len(set(question.lower().split())) >= 200 and len(question.split()) >= 500
    ctx, _ = context(tmp_path, question, enable_sql=True)
    result = pipeline(ctx)
    assert result.status in ("completed", "completed_with_gaps")
    assert result.context_bundle is not None and result.context_bundle["sql"]["enabled"] is True
    queries = result.context_bundle["sql"]["queries"]
    assert queries and max(len(query["sql"]) for query in queries) < 20_000  # not one LIKE per word


def test_one_passage_answers_every_part_it_covers(pipeline: AnswerPipeline, tmp_path: Path) -> None:
    """The offshore wind passage gives both the target and the auction rounds: the second part
    is answered from it, not reported as a gap."""
    ctx, _ = context(tmp_path, "What is the offshore wind target, and when are the auction rounds?")
    result = pipeline(ctx)
    assert result.status == "completed", result.gaps
    answer = _answer(result)
    assert "3.5 gigawatts" in answer and "2026, 2028 and 2030" in answer
    assert result.context_bundle is not None
    shared = [p for p in result.context_bundle["passages"] if p["also_answers_parts"]]
    assert any("auction rounds" in p["text"] for p in shared)


def test_a_fact_the_documents_do_not_give_is_a_gap_not_a_list_of_related_sentences(
    pipeline: AnswerPipeline, tmp_path: Path
) -> None:
    ctx, _ = context(tmp_path, "How many electric buses did the region buy in 2019?")
    result = pipeline(ctx)
    assert result.status == "completed_with_gaps"
    assert [(gap.kind, gap.reason) for gap in result.gaps] == [
        ("unanswered_part", "no passage or data row gives this for 2019")
    ]
    answer = _answer(result)
    assert "The documents do not answer this" in answer
    assert not [line for line in answer.splitlines() if line.startswith("- ")]  # no loosely related bullets
    assert result.context_bundle is not None
    [part] = result.context_bundle["question_parts"]
    assert part["answered"] is False
    assert part["gap"] == {"code": "year_not_given", "reason": "no passage or data row gives this for 2019"}
