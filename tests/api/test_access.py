"""Who may see what, through a real server with RUNLANE_AUTH=api-key: every route of the served
OpenAPI document needs a key, another owner's run is an unknown run, admins see everything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.runs.api_keys import key_id_of
from tests.conftest import wait_until
from tests.support.keys import bearer, make_key, secret_of
from tests.support.server import Server, uvicorn_server

pytestmark = pytest.mark.slow

OPEN = {"/health", "/ready"}
Deployment = tuple[Server, dict[str, str], Path]
UNKNOWN = "20200101_000000_00000000"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("access")
    for folder in ("documents", "private"):
        (root / folder).mkdir()
        (root / folder / "note.md").write_text("# Note\n\nSolar subsidies fund rooftop panels.\n")
    output = root / "output"
    keys = {
        "alice": make_key(output, "alice")[1],
        "bob": make_key(output, "bob", documents=["documents"])[1],
        "admin": make_key(output, "ops", admin=True)[1],
    }
    settings = {"auth": "api-key", "pipeline": "tests.support.pipelines:instant_pipeline"}
    with uvicorn_server(root, **settings) as server:
        yield server, keys, root


def _call(client: httpx.Client, method: str, path: str, key: str | None = None) -> httpx.Response:
    headers = bearer(key) if key else {}
    body = None
    if method == "POST" and path.endswith("/runs"):
        body = {"question": "What is funded?"}
    elif method == "POST" and path.endswith("/regenerate"):
        body = {"feedback": "shorter, please"}
    elif path.endswith("/output/preview"):
        body = {"section": 0, "content": "A preview."}
    elif method == "PATCH" and path.endswith("/output"):
        body = {"section": 0, "content": "An edit.", "base_version": 1}
    elif method == "POST" and path.endswith("/annotations"):
        body = {"section": 0, "text": "A note."}
    return client.request(method, path.replace("{annotation_id}", "1"), headers=headers, json=body)


def _finished_run(client: httpx.Client, key: str) -> str:
    created = client.post("/api/v1/runs", json={"question": "What is funded?"}, headers=bearer(key))
    assert created.status_code == 202, created.text
    run_id: str = created.json()["run_id"]
    wait_until(
        lambda: (
            client.get(f"/api/v1/runs/{run_id}/status", headers=bearer(key)).json()["status"] == "completed"
        )
    )
    return run_id


def _operations(client: httpx.Client, admin: str) -> list[tuple[str, str]]:
    spec: dict[str, Any] = client.get("/openapi.json", headers=bearer(admin)).json()
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item]


def test_every_route_needs_a_key_and_hides_other_owners_runs(
    deployment: Deployment,
) -> None:
    server, keys, _ = deployment
    with httpx.Client(base_url=server.url, timeout=30) as client:
        operations = _operations(client, keys["admin"])
        assert len(operations) >= 12  # the document itself is what drives this table
        alices = _finished_run(client, keys["alice"])
        for method, path in operations:
            url = path.replace("{run_id}", alices)
            if path in OPEN:
                assert _call(client, method, url).status_code == 200
                continue
            missing = _call(client, method, url)
            assert missing.status_code == 401, (method, path)
            assert missing.headers["www-authenticate"].startswith("Bearer")
            assert missing.json()["code"] == "API_KEY_MISSING"
            if "{run_id}" in path:
                theirs = _call(client, method, url, keys["bob"])
                unknown = _call(client, method, path.replace("{run_id}", UNKNOWN), keys["bob"])
                assert theirs.status_code == unknown.status_code == 404, (method, path)
                assert theirs.text.replace(alices, UNKNOWN) == unknown.text
                assert theirs.headers["content-type"] == unknown.headers["content-type"]
        # The admin reaches every run route (DELETE last: it removes the run).
        for method, path in sorted(operations, key=lambda op: op[0] == "DELETE"):
            if "{run_id}" in path:
                reached = _call(client, method, path.replace("{run_id}", alices), keys["admin"])
                assert reached.status_code not in (401, 403, 404), (method, path, reached.text)


def test_bad_keys_are_told_apart_and_never_let_in(deployment: Deployment) -> None:
    server, keys, _ = deployment
    alice = keys["alice"]
    cases = {
        "API_KEY_MALFORMED": {"Authorization": "Bearer not-a-key"},
        "API_KEY_INVALID": {"Authorization": f"Bearer {alice[:-4]}AAAA"},
    }
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for code, headers in cases.items():
            refused = client.get("/api/v1/runs", headers=headers)
            assert (refused.status_code, refused.json()["code"]) == (401, code)
            assert 'error="invalid_token"' in refused.headers["www-authenticate"]
            assert refused.headers["content-type"] == "application/problem+json"
        assert client.get("/api/v1/runs", headers={"X-API-Key": alice}).status_code == 200
        basic = client.get("/api/v1/runs", headers={"Authorization": f"Basic {alice}"})
        assert basic.status_code == 401


def test_operations_need_an_admin_key_and_the_console_stays_open(
    deployment: Deployment,
) -> None:
    server, keys, _ = deployment
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path in ("/metrics", "/api/v1/service-info", "/docs", "/openapi.json"):
            forbidden = client.get(path, headers=bearer(keys["alice"]))
            assert (forbidden.status_code, forbidden.json()["code"]) == (403, "ADMIN_REQUIRED"), path
            assert client.get(path, headers=bearer(keys["admin"])).status_code == 200, path
        assert client.get("/").status_code == 200
        assert client.get("/static/console.js").status_code == 200


def test_listings_and_counts_hold_only_the_callers_runs(
    deployment: Deployment,
) -> None:
    server, keys, _ = deployment
    with httpx.Client(base_url=server.url, timeout=30) as client:
        alices = _finished_run(client, keys["alice"])
        bobs = _finished_run(client, keys["bob"])

        def listed(key: str) -> set[str]:
            return {run["run_id"] for run in client.get("/api/v1/runs", headers=bearer(key)).json()["runs"]}

        assert alices in listed(keys["alice"]) and bobs not in listed(keys["alice"])
        assert bobs in listed(keys["bob"]) and alices not in listed(keys["bob"])
        assert {alices, bobs} <= listed(keys["admin"])
        detail = client.get(f"/api/v1/runs/{alices}", headers=bearer(keys["admin"])).json()
        assert detail["key_id"] == key_id_of(keys["alice"])
        counts = client.get("/api/v1/service-info", headers=bearer(keys["admin"])).json()["runs"]
        assert counts["completed"] >= 2


def test_a_key_limited_to_folders_starts_runs_only_there(
    deployment: Deployment,
) -> None:
    server, keys, _ = deployment
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path in ("private", "./private", "documents/../private"):
            refused = client.post(
                "/api/v1/runs", json={"question": "q", "markdown_path": path}, headers=bearer(keys["bob"])
            )
            assert refused.status_code in (403, 422), path
        refused = client.post(
            "/api/v1/runs", json={"question": "q", "markdown_path": "private"}, headers=bearer(keys["bob"])
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "DOCUMENTS_FORBIDDEN")
        allowed = client.post(
            "/api/v1/runs", json={"question": "q", "markdown_path": "documents"}, headers=bearer(keys["bob"])
        )
        assert allowed.status_code == 202
        anywhere = client.post(
            "/api/v1/runs", json={"question": "q", "markdown_path": "private"}, headers=bearer(keys["alice"])
        )
        assert anywhere.status_code == 202


def test_run_ids_and_idempotency_keys_reveal_nothing_across_owners(
    deployment: Deployment,
) -> None:
    server, keys, _ = deployment
    alice, bob = bearer(keys["alice"]), bearer(keys["bob"])
    with httpx.Client(base_url=server.url, timeout=30) as client:
        body = {"question": "q", "run_id": "shared-name-1"}
        assert client.post("/api/v1/runs", json=body, headers=alice).status_code == 202
        own = client.post("/api/v1/runs", json=body, headers=alice)
        other = client.post("/api/v1/runs", json=body, headers=bob)
        assert own.status_code == other.status_code == 409
        assert own.text == other.text  # whose the id is, and whether it lives, is not told
        wait_until(
            lambda: (
                client.get("/api/v1/runs/shared-name-1/status", headers=alice).json()["status"] == "completed"
            )
        )
        assert client.delete("/api/v1/runs/shared-name-1", headers=alice).status_code == 204
        assert client.post("/api/v1/runs", json=body, headers=alice).status_code == 410
        after_delete = client.post("/api/v1/runs", json=body, headers=bob)
        assert after_delete.status_code == 409 and after_delete.text == other.text
        assert client.get("/api/v1/runs/shared-name-1/status", headers=bob).status_code == 404

        idem = {"Idempotency-Key": "same-key"}
        first = client.post("/api/v1/runs", json={"question": "a"}, headers={**alice, **idem})
        second = client.post("/api/v1/runs", json={"question": "b"}, headers={**bob, **idem})
        assert first.status_code == second.status_code == 202
        assert first.json()["run_id"] != second.json()["run_id"]
        again = client.post("/api/v1/runs", json={"question": "a"}, headers={**alice, **idem})
        assert (again.status_code, again.json()["run_id"]) == (200, first.json()["run_id"])


def test_keys_never_reach_logs_run_folders_or_answers(
    deployment: Deployment,
) -> None:
    server, keys, root = deployment
    with httpx.Client(base_url=server.url, timeout=30) as client:
        _finished_run(client, keys["alice"])
        client.get("/api/v1/runs", headers={"Authorization": f"Bearer {keys['alice']}x"})  # a wrong key
        metrics = client.get("/metrics", headers=bearer(keys["admin"])).text
    secrets = [secret_of(key) for key in keys.values()]
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(secret.encode() in data for secret in secrets), path
    assert not any(secret in metrics for secret in secrets)
