"""The contract's example request, through the real app and the default pipeline."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from app.config import Settings
from tests.conftest import running_app, wait_for_status
from tests.support.fake_llm import fake_llm

REPO = Path(__file__).resolve().parents[2]
CONTRACT_REQUEST = {
    "question": "What are main climate initiatives?",
    "enable_sql": False,
    "markdown_path": "documents",
    "log_llm_payload": False,
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        output_dir=tmp_path / "output",
        documents_root=REPO,
        data_dir=REPO / "documents" / "data",
        pin_cpu=False,  # pinning is per process: the test runner itself is never pinned
    )


@pytest.mark.parametrize("enable_sql", [False, True])
def test_contract_example_completes_with_a_cited_answer_and_evidence(
    settings: Settings, enable_sql: bool
) -> None:
    with running_app(settings, None) as client:  # type: ignore[arg-type]
        created = client.post("/api/v1/runs", json={**CONTRACT_REQUEST, "enable_sql": enable_sql}).json()
        status = wait_for_status(client, created["run_id"], "completed", "completed_with_gaps", "failed")
        assert status["status"] == "completed", status
        assert status["progress"]["stage"] == "save" and status["progress"]["stage_count"] == 7
        output = client.get(created["output_url"]).json()
        context = client.get(created["context_url"]).json()
    assert "[1]" in output["content"] and "documents/climate-strategy-overview.md" in output["content"]
    bundle = context["context_bundle"]
    assert bundle["passages"] and bundle["sql"]["enabled"] is enable_sql
    run_dir = settings.output_dir / created["run_id"]
    assert (run_dir / "final.md").read_text() == output["content"]
    log = orjson.loads((run_dir / "run.json").read_bytes())
    assert [stage["name"] for stage in log["stages"]] == [
        "load",
        "index",
        "retrieve",
        "sql",
        "generate",
        "validate",
        "save",
    ]
    assert all(stage["duration_s"] is not None for stage in log["stages"])


def test_configured_llm_endpoint_is_used_by_the_default_pipeline(settings: Settings) -> None:
    with fake_llm(["Renewable power is central [1]."]) as llm:
        configured = settings.model_copy(update={"llm_base_url": llm.url, "llm_model": "local-model"})
        with running_app(configured, None) as client:  # type: ignore[arg-type]
            created = client.post("/api/v1/runs", json={**CONTRACT_REQUEST, "log_llm_payload": True}).json()
            wait_for_status(client, created["run_id"], "completed")
            context = client.get(created["context_url"]).json()
    assert context["context_bundle"]["writer"]["model"] == "local-model"
    assert llm.requests[0]["model"] == "local-model"
    assert (settings.output_dir / created["run_id"] / "llm" / "request.json").exists()


def test_a_question_of_600_distinct_words_with_sql_ends_answered_not_failed(settings: Settings) -> None:
    words = " ".join(f"term{number}x" for number in range(600))
    question = f"What budget does {words} have?"[:4000]
    with running_app(settings, None) as client:  # type: ignore[arg-type]
        created = client.post(
            "/api/v1/runs", json={**CONTRACT_REQUEST, "question": question, "enable_sql": True}
        )
        status = wait_for_status(
            client, created.json()["run_id"], "completed", "completed_with_gaps", "failed"
        )
    assert status["status"] != "failed", status["error"]
