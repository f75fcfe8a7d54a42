"""People work on a finished answer: section edits as versions, annotations, and a regenerate
that warns before it would lose their edits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.modules.contract import PipelineResult, RunContext
from tests.api.routes.test_runs import assert_problem
from tests.conftest import running_app, wait_for_status
from tests.support.pipelines import GatedPipeline
from tests.support.server import REPO_ROOT, uvicorn_server

ANSWER = (
    "# {question}\n\n"
    "- The offshore wind target is 3.5 gigawatts by 2032. [1]\n\n"
    "## Funding\n\n"
    "- The fund provides 1.8 billion euro. [2]\n\n"
    "## Sources\n\n"
    "- [1] `documents/wind.md`\n"
    "- [2] `documents/fund.md`\n"
)
REQUEST = {"question": "What is the wind target and how is it funded?"}


def sectioned(ctx: RunContext) -> PipelineResult:
    markdown = ANSWER.format(question=ctx.options.question)
    return PipelineResult("completed", "answered", markdown, {"passages": [{"id": 1}, {"id": 2}]})


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with running_app(settings, sectioned) as test_client:
        yield test_client


def finished(client: TestClient) -> str:
    run_id: str = client.post("/api/v1/runs", json=REQUEST).json()["run_id"]
    wait_for_status(client, run_id, "completed")
    return run_id


def edit(client: TestClient, run_id: str, etag: str | None, **body: Any) -> httpx.Response:
    headers = {"If-Match": etag} if etag else {}
    return client.patch(f"/api/v1/runs/{run_id}/output", json=body, headers=headers)


def test_an_edit_replaces_one_section_as_a_new_version_and_keeps_the_original(
    client: TestClient, settings: Settings
) -> None:
    run_id = finished(client)
    first = client.get(f"/api/v1/runs/{run_id}/output")
    assert (first.json()["version"], first.json()["has_user_edits"]) == (1, False)
    new = "- The fund holds 1.8 billion euro from green bonds. [2]"
    edited = edit(client, run_id, first.headers["etag"], section="funding", content=new)
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert (body["version"], body["has_user_edits"], body["edited_sections"]) == (2, True, ["Funding"])
    assert new in body["content"] and "1.8 billion euro. [2]" not in body["content"]
    assert "3.5 gigawatts" in body["content"] and "## Sources" in body["content"]  # other sections stay
    assert edited.headers["etag"] != first.headers["etag"]
    latest = client.get(f"/api/v1/runs/{run_id}/output")
    assert latest.json()["content"] == body["content"] and latest.headers["etag"] == edited.headers["etag"]
    original = client.get(f"/api/v1/runs/{run_id}/output", params={"version": 1}).json()
    assert original["content"] == first.json()["content"] and original["version"] == 1
    # On disk: final.md holds the latest; versions/ holds every version; the bundle is untouched.
    run_dir = settings.output_dir / run_id
    assert (run_dir / "final.md").read_text() == body["content"]
    assert (run_dir / "versions" / "1.md").read_text() == first.json()["content"]
    assert (run_dir / "versions" / "2.md").read_text() == body["content"]
    assert body["final_output_path"].endswith(f"{run_id}/final.md")
    versions = client.get(f"/api/v1/runs/{run_id}/output/versions").json()
    assert versions["latest_version"] == 2
    assert [(v["version"], v["source"], v["sections_changed"]) for v in versions["versions"]] == [
        (1, "pipeline", []),
        (2, "edit", ["Funding"]),
    ]
    assert versions["versions"][1]["path"].endswith(f"{run_id}/versions/2.md")
    html = client.get(f"/api/v1/runs/{run_id}/output/html", params={"version": 1}).json()
    assert html["version"] == 1 and "1.8 billion euro." in html["html"]


def test_an_edit_on_a_stale_version_changes_nothing(client: TestClient) -> None:
    run_id = finished(client)
    etag = client.get(f"/api/v1/runs/{run_id}/output").headers["etag"]
    assert edit(client, run_id, etag, section=0, content="- First edit. [1]").status_code == 200
    stale = edit(client, run_id, etag, section=0, content="- Second edit on the old version. [1]")
    body = assert_problem(stale, 409, "VERSION_CONFLICT")
    assert body["latest_version"] == 2
    by_number = edit(client, run_id, None, section=0, content="- Also stale. [1]", base_version=1)
    assert_problem(by_number, 409, "VERSION_CONFLICT")
    content = client.get(f"/api/v1/runs/{run_id}/output").json()["content"]
    assert "First edit" in content and "old version" not in content and "Also stale" not in content
    fresh = edit(client, run_id, None, section=0, content="- On the latest. [1]", base_version=2)
    assert fresh.status_code == 200 and fresh.json()["version"] == 3
    assert_problem(edit(client, run_id, None, section=0, content="x"), 428, "PRECONDITION_REQUIRED")


def test_an_unknown_section_names_the_sections_that_exist(client: TestClient) -> None:
    run_id = finished(client)
    etag = client.get(f"/api/v1/runs/{run_id}/output").headers["etag"]
    body = assert_problem(edit(client, run_id, etag, section="Costs", content="x"), 422, "SECTION_NOT_FOUND")
    assert body["sections"] == [REQUEST["question"], "Funding", "Sources"]
    assert "Funding" in body["message"]
    assert_problem(edit(client, run_id, etag, section=7, content="x"), 422, "SECTION_NOT_FOUND")


def test_a_version_that_does_not_exist_is_404_and_an_edit_needs_a_finished_answer(
    settings: Settings,
) -> None:
    gated = GatedPipeline()
    with running_app(settings, gated) as client:
        run_id = client.post("/api/v1/runs", json=REQUEST).json()["run_id"]
        assert gated.started.wait(10)
        assert_problem(
            edit(client, run_id, None, section=0, content="x", base_version=1), 409, "RUN_NOT_FINISHED"
        )
        note = client.post(f"/api/v1/runs/{run_id}/annotations", json={"section": 0, "text": "early"})
        assert_problem(note, 409, "RUN_NOT_FINISHED")
        gated.gate.set()
        wait_for_status(client, run_id, "completed")
        missing = client.get(f"/api/v1/runs/{run_id}/output", params={"version": 2})
        assert assert_problem(missing, 404, "VERSION_NOT_FOUND")["latest_version"] == 1
        unknown = edit(client, "20260101_000000_00000000", None, section=0, content="x", base_version=1)
        assert_problem(unknown, 404, "RUN_NOT_FOUND")


def test_an_edited_sentence_without_a_citation_is_shown_as_uncited(client: TestClient) -> None:
    run_id = finished(client)
    etag = client.get(f"/api/v1/runs/{run_id}/output").headers["etag"]
    content = "- The fund provides 1.8 billion euro. [2]\n- It will surely double by 2040 anyway."
    body = edit(client, run_id, etag, section="Funding", content=content).json()
    assert body["uncited_sentences"] == ["It will surely double by 2040 anyway."]
    assert body["unknown_citations"] == []
    cites_nothing_real = "- The fund provides 1.8 billion euro. [9]"
    again = edit(client, run_id, None, section="Funding", content=cites_nothing_real, base_version=2).json()
    assert again["unknown_citations"] == ["[9]"]  # the run has passages 1 and 2 only
    context = client.get(f"/api/v1/runs/{run_id}/context").json()["context_bundle"]
    assert context == {"passages": [{"id": 1}, {"id": 2}]}  # the evidence is never edited


def test_annotations_are_added_listed_shown_in_the_detail_and_deleted(client: TestClient) -> None:
    run_id = finished(client)
    made = client.post(f"/api/v1/runs/{run_id}/annotations", json={"section": "Funding", "text": "Check it."})
    assert made.status_code == 201, made.text
    note = made.json()
    assert (note["id"], note["section"], note["text"], note["version"]) == (1, "Funding", "Check it.", 1)
    assert note["created_at"].endswith("Z")
    second = client.post(f"/api/v1/runs/{run_id}/annotations", json={"section": 0, "text": "Good."}).json()
    assert second["id"] == 2 and second["section"] == REQUEST["question"]
    listed = client.get(f"/api/v1/runs/{run_id}/annotations").json()["annotations"]
    assert [n["id"] for n in listed] == [1, 2]
    assert client.get(f"/api/v1/runs/{run_id}").json()["annotations"] == listed
    assert client.delete(f"/api/v1/runs/{run_id}/annotations/1").status_code == 204
    assert_problem(client.delete(f"/api/v1/runs/{run_id}/annotations/1"), 404, "ANNOTATION_NOT_FOUND")
    assert [n["id"] for n in client.get(f"/api/v1/runs/{run_id}/annotations").json()["annotations"]] == [2]
    third = client.post(f"/api/v1/runs/{run_id}/annotations", json={"section": "Sources", "text": "Ok"})
    assert third.json()["id"] == 3  # ids are never reused
    bad = client.post(f"/api/v1/runs/{run_id}/annotations", json={"section": "Nope", "text": "x"})
    assert_problem(bad, 422, "SECTION_NOT_FOUND")
    blank = client.post(f"/api/v1/runs/{run_id}/annotations", json={"section": 0, "text": " "})
    assert_problem(blank, 422, "VALIDATION_ERROR")


def test_regenerating_an_edited_answer_needs_force(client: TestClient) -> None:
    run_id = finished(client)
    plain = client.post(f"/api/v1/runs/{run_id}/regenerate", json={"feedback": "shorter"})
    assert plain.status_code == 202  # nothing edited: nothing to lose
    etag = client.get(f"/api/v1/runs/{run_id}/output").headers["etag"]
    edit(client, run_id, etag, section="Funding", content="- Edited. [2]")
    refused = client.post(f"/api/v1/runs/{run_id}/regenerate", json={"feedback": "shorter"})
    assert assert_problem(refused, 409, "EDITS_WOULD_BE_LOST")["edited_sections"] == ["Funding"]
    detail = client.get(f"/api/v1/runs/{run_id}").json()
    assert len(detail["children"]) == 1  # the refused one made no run
    assert detail["answer_versions"] == {"version": 2, "has_user_edits": True, "edited_sections": ["Funding"]}
    forced = client.post(f"/api/v1/runs/{run_id}/regenerate", json={"feedback": "shorter", "force": True})
    assert forced.status_code == 202
    child = forced.json()["run_id"]
    assert wait_for_status(client, child, "completed")["parent_run_id"] == run_id


def test_a_crash_between_writing_a_version_and_recording_it_leaves_the_last_recorded_one(
    client: TestClient, settings: Settings
) -> None:
    run_id = finished(client)
    etag = client.get(f"/api/v1/runs/{run_id}/output").headers["etag"]
    edit(client, run_id, etag, section="Funding", content="- Recorded edit. [2]")
    run_dir = settings.output_dir / run_id
    recorded = (run_dir / "final.md").read_text()
    # What an edit cut short leaves: its version file, written; the record and final.md, not.
    (run_dir / "versions" / "3.md").write_text("# Half an edit\n")
    after = client.get(f"/api/v1/runs/{run_id}/output").json()
    assert (after["version"], after["content"]) == (2, recorded)
    assert [
        v["version"] for v in client.get(f"/api/v1/runs/{run_id}/output/versions").json()["versions"]
    ] == [1, 2]
    assert_problem(
        client.get(f"/api/v1/runs/{run_id}/output", params={"version": 3}), 404, "VERSION_NOT_FOUND"
    )
    again = edit(client, run_id, None, section="Funding", content="- Next edit. [2]", base_version=2)
    assert again.json()["version"] == 3
    assert (run_dir / "versions" / "3.md").read_text() == again.json()["content"]
    # Cut short after the record but before final.md: the API serves the recorded version, and
    # the next edit brings final.md up to date.
    (run_dir / "final.md").write_text(recorded)
    assert client.get(f"/api/v1/runs/{run_id}/output").json()["content"] == again.json()["content"]


def test_two_edits_from_the_same_version_across_processes_exactly_one_wins(tmp_path: Path) -> None:
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "wind.md").write_text(
        (REPO_ROOT / "documents" / "renewable-energy.md").read_text()
    )
    with uvicorn_server(tmp_path, workers=2) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        run_id = http.post("/api/v1/runs", json={"question": "What is the offshore wind target?"}).json()[
            "run_id"
        ]
        wait_for_status(http, run_id, "completed")
        etag = http.get(f"/api/v1/runs/{run_id}/output").headers["etag"]
        start = threading.Barrier(8)
        answers: list[int] = []

        def attempt(n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as own:
                start.wait()
                reply = own.patch(
                    f"/api/v1/runs/{run_id}/output",
                    json={"section": 0, "content": f"- Edit number {n}. [1]"},
                    headers={"If-Match": etag},
                )
                answers.append(reply.status_code)

        threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(answers) == [200] + [409] * 7
        versions = http.get(f"/api/v1/runs/{run_id}/output/versions").json()["versions"]
        assert [v["version"] for v in versions] == [1, 2]


def test_versions_and_annotations_survive_a_restart(tmp_path: Path) -> None:
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "wind.md").write_text(
        (REPO_ROOT / "documents" / "renewable-energy.md").read_text()
    )
    with uvicorn_server(tmp_path) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        run_id = http.post("/api/v1/runs", json={"question": "What is the offshore wind target?"}).json()[
            "run_id"
        ]
        wait_for_status(http, run_id, "completed")
        etag = http.get(f"/api/v1/runs/{run_id}/output").headers["etag"]
        edited = http.patch(
            f"/api/v1/runs/{run_id}/output",
            json={"section": 0, "content": "- Kept. [1]"},
            headers={"If-Match": etag},
        ).json()
        http.post(f"/api/v1/runs/{run_id}/annotations", json={"section": 0, "text": "Still here?"})
    with uvicorn_server(tmp_path) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        again = http.get(f"/api/v1/runs/{run_id}/output")
        assert again.json()["content"] == edited["content"] and again.json()["version"] == 2
        assert [n["text"] for n in http.get(f"/api/v1/runs/{run_id}/annotations").json()["annotations"]] == [
            "Still here?"
        ]


def test_the_output_lists_its_sections_and_a_preview_saves_nothing(client: TestClient) -> None:
    run_id = finished(client)
    body = client.get(f"/api/v1/runs/{run_id}/output").json()
    assert [(s["index"], s["heading"]) for s in body["sections"]] == [
        (0, REQUEST["question"]),
        (1, "Funding"),
        (2, "Sources"),
    ]
    assert body["sections"][1]["content"] == "- The fund provides 1.8 billion euro. [2]"
    text = "- A <script>alert(1)</script> new figure. [2]\n- Said without any evidence at all."
    preview = client.post(f"/api/v1/runs/{run_id}/output/preview", json={"section": 1, "content": text})
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert "new figure" in shown["html"] and "<script>" not in shown["html"]
    assert shown["uncited_sentences"] == ["Said without any evidence at all."]
    after = client.get(f"/api/v1/runs/{run_id}/output").json()
    assert (after["version"], after["content"]) == (1, body["content"])
