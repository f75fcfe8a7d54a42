"""Signed webhooks through a real server: retried on 5xx, recorded in the run, delivered once
after a crash, never slowing a run, never sent where a request could forge its way."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.api.main import create_app
from app.config import Settings
from app.runs.run_index import WEBHOOK_DONE, RunIndex
from app.runs.run_store import META_DIR
from tests.conftest import wait_until
from tests.support.keys import bearer, make_key
from tests.support.pipelines import instant_pipeline
from tests.support.server import uvicorn_server
from tests.support.webhook_receiver import webhook_receiver

INSTANT = "tests.support.pipelines:instant_pipeline"
SECRET = "whsec_" + "QUFB" * 11
HOOKS = {"auth": "api-key", "pipeline": INSTANT, "webhook_allow_hosts": "127.0.0.1"}


def _documents(root: Path) -> None:
    (root / "documents").mkdir()
    (root / "documents" / "note.md").write_text("# Note\n\nSolar subsidies fund rooftop panels.\n")


def _start(url: str, key: str, webhook_url: str) -> str:
    body = {"question": "What is funded?", "webhook_url": webhook_url}
    created = httpx.post(f"{url}/api/v1/runs", json=body, headers=bearer(key))
    assert created.status_code == 202, created.text
    run_id: str = created.json()["run_id"]
    return run_id


def _webhook(url: str, key: str, run_id: str) -> dict[str, object]:
    record: dict[str, object] = httpx.get(f"{url}/api/v1/runs/{run_id}", headers=bearer(key)).json()[
        "webhook"
    ]
    return record


@pytest.mark.slow
def test_a_finished_run_is_told_signed_and_retried_after_server_errors(tmp_path: Path) -> None:
    _documents(tmp_path)
    record, key = make_key(tmp_path / "output", "alice")
    with (
        webhook_receiver(record.webhook_secret) as receiver,
        uvicorn_server(tmp_path, webhook_backoff_s="0.05", **HOOKS) as server,
    ):
        receiver.answers["/hook"] = [500, 500]
        run_id = _start(server.url, key, receiver.url("/hook"))
        wait_until(lambda: _webhook(server.url, key, run_id)["status"] == "delivered")
        deliveries = receiver.to("/hook")
        assert [d.answered for d in deliveries] == [500, 500, 200]
        assert all(d.verified for d in deliveries)
        assert len({d.headers["webhook-id"] for d in deliveries}) == 1
        event = deliveries[-1].body
        status = httpx.get(f"{server.url}/api/v1/runs/{run_id}/status", headers=bearer(key)).json()
        assert event == {
            "type": "run.finished",
            "run_id": run_id,
            "status": "completed",
            "finish_reason": status["finish_reason"],
            "status_url": f"/api/v1/runs/{run_id}/status",
            "occurred_at": status["completed_at"],
        }
        attempts = _webhook(server.url, key, run_id)["attempts"]
        assert [a["status_code"] for a in attempts] == [500, 500, 200]  # type: ignore[attr-defined,index]


@pytest.mark.slow
def test_a_pending_delivery_survives_a_crash_and_is_made_once_after_it(tmp_path: Path) -> None:
    _documents(tmp_path)
    record, key = make_key(tmp_path / "output", "alice")
    index = RunIndex(tmp_path / "output" / META_DIR)
    settings = {**HOOKS, "webhook_backoff_s": "1.5"}
    with webhook_receiver(record.webhook_secret) as receiver:
        receiver.answers["/hook"] = [503]
        with uvicorn_server(tmp_path, **settings) as server:
            run_id = _start(server.url, key, receiver.url("/hook"))
            wait_until(lambda: len(receiver.to("/hook")) == 1)

            def retry_scheduled() -> bool:  # the failed attempt is recorded and its retry due soon
                due = dict(index.webhooks_due(time.time_ns() + 10**11, 10)).get(run_id)
                return due is not None and due < time.time_ns() + 5 * 10**9

            wait_until(retry_scheduled)
            server.kill()
        assert len(receiver.to("/hook")) == 1
        with uvicorn_server(tmp_path, **settings) as restarted:
            wait_until(lambda: _webhook(restarted.url, key, run_id)["status"] == "delivered")
            assert [d.answered for d in receiver.to("/hook")] == [503, 200]
            assert index.webhooks_due(time.time_ns() + 10**12, 10) == []
            due = index._connect().execute("SELECT webhook_due_ns FROM runs WHERE run_id = ?", (run_id,))
            assert due.fetchone()[0] == WEBHOOK_DONE


@pytest.mark.slow
def test_a_slow_receiver_delays_neither_its_run_nor_other_deliveries(tmp_path: Path) -> None:
    _documents(tmp_path)
    record, key = make_key(tmp_path / "output", "alice")
    with (
        webhook_receiver(record.webhook_secret) as receiver,
        uvicorn_server(tmp_path, webhook_backoff_s="0.05", **HOOKS) as server,
    ):
        slow = _start(server.url, key, receiver.url("/slow"))
        status_url = f"{server.url}/api/v1/runs/{slow}/status"
        wait_until(lambda: httpx.get(status_url, headers=bearer(key)).json()["status"] == "completed")
        fast = _start(server.url, key, receiver.url("/fast"))
        wait_until(lambda: _webhook(server.url, key, fast)["status"] == "delivered")
        assert receiver.to("/slow") == [] and _webhook(server.url, key, slow)["status"] == "pending"
        receiver.release.set()
        wait_until(lambda: _webhook(server.url, key, slow)["status"] == "delivered")


@pytest.mark.parametrize(
    ("url", "allow", "why"),
    [
        ("http://127.0.0.1:9/hook", "", "must use https"),
        ("https://127.0.0.1:9/hook", "", "resolves to 127.0.0.1"),
        ("https://169.254.169.254/latest/meta-data/", "127.0.0.1", "resolves to 169.254.169.254"),
        ("https://10.0.0.1/hook", "127.0.0.1", "resolves to 10.0.0.1"),
        ("https://localhost:9/hook", "127.0.0.1", "'localhost' resolves to 127.0.0.1"),
    ],
)
def test_forged_targets_are_refused_when_the_run_is_started(
    settings: Settings, url: str, allow: str, why: str
) -> None:
    hooked = settings.model_copy(
        update={"webhook_allow_hosts": [allow] if allow else [], "webhook_secret": SecretStr(SECRET)}
    )
    with TestClient(create_app(hooked, instant_pipeline)) as client:
        refused = client.post("/api/v1/runs", json={"question": "q", "webhook_url": url})
        assert (refused.status_code, refused.json()["code"]) == (422, "WEBHOOK_URL_REFUSED")
        assert why in refused.json()["message"]
        assert client.get("/api/v1/runs").json()["runs"] == []


def test_without_keys_a_webhook_needs_a_signing_secret(settings: Settings) -> None:
    with TestClient(create_app(settings, instant_pipeline)) as client:
        refused = client.post("/api/v1/runs", json={"question": "q", "webhook_url": "https://example.com/h"})
        assert (refused.status_code, refused.json()["code"]) == (422, "WEBHOOK_URL_REFUSED")
        assert "RUNLANE_WEBHOOK_SECRET" in refused.json()["message"]


def test_without_keys_the_settings_secret_signs_every_webhook(settings: Settings) -> None:
    hooked = settings.model_copy(
        update={
            "webhook_allow_hosts": ["127.0.0.1"],
            "webhook_secret": SecretStr(SECRET),
            "webhook_backoff_s": 0.05,
        }
    )
    with webhook_receiver(SECRET) as receiver, TestClient(create_app(hooked, instant_pipeline)) as client:
        receiver.answers["/hook"] = [502]
        body = {"question": "q", "webhook_url": receiver.url("/hook")}
        run_id = client.post("/api/v1/runs", json=body).json()["run_id"]
        wait_until(lambda: client.get(f"/api/v1/runs/{run_id}").json()["webhook"]["status"] == "delivered")
        assert [(d.answered, d.verified) for d in receiver.to("/hook")] == [(502, True), (200, True)]
        detail = client.get(f"/api/v1/runs/{run_id}").json()
        assert detail["key_id"] is None and detail["request"]["webhook_url"] == receiver.url("/hook")
