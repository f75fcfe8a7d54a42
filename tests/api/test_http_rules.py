"""HTTP as RFC 9110 says: HEAD, If-None-Match, compression, Allow, redirects, refused preflights."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.modules.contract import PipelineResult, RunContext
from tests.conftest import running_app, wait_for_status


def big_answer(ctx: RunContext) -> PipelineResult:
    rows = [{"year": 2020 + n, "capacity_mw": 100 * n, "note": "offshore wind"} for n in range(200)]
    return PipelineResult("completed", "answered", "# Answer\n\n" + "Wind. " * 500, {"sql": rows})


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    cors = settings.model_copy(update={"cors_origins": ["https://app.example.com"]})
    with running_app(cors, big_answer) as test_client:
        yield test_client


@pytest.fixture
def finished(client: TestClient) -> str:
    run_id: str = client.post("/api/v1/runs", json={"question": "q"}).json()["run_id"]
    wait_for_status(client, run_id, "completed")
    return run_id


def test_head_answers_every_get_route_with_its_headers_and_no_body(client: TestClient, finished: str) -> None:
    spec = client.get("/openapi.json").json()
    gets = [path for path, item in spec["paths"].items() if "get" in item]
    assert len(gets) >= 9
    for path in gets:
        url = path.replace("{run_id}", finished)
        got, head = client.get(url), client.head(url)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        names = ["content-type", "etag", "retry-after"]
        if path != "/metrics":  # the GET itself moves the request counters
            names.append("content-length")
        for name in names:
            assert head.headers.get(name) == got.headers.get(name), (path, name)


def test_if_none_match_compares_weakly_and_takes_lists_and_star(client: TestClient, finished: str) -> None:
    for what in ("status", "output", "context"):
        url = f"/api/v1/runs/{finished}/{what}"
        etag = client.get(url).headers["etag"]
        for sent in (etag, f"W/{etag}", f'"other", W/{etag}', "*"):
            assert client.get(url, headers={"If-None-Match": sent}).status_code == 304, (what, sent)
        assert client.get(url, headers={"If-None-Match": '"other", W/"nope"'}).status_code == 200


def test_large_answers_are_gzipped_but_never_the_status_or_an_event_stream(
    client: TestClient, finished: str
) -> None:
    gz = {"Accept-Encoding": "gzip"}
    for what in ("context", "output", "output/html"):
        raw = client.get(f"/api/v1/runs/{finished}/{what}", headers={"Accept-Encoding": "identity"})
        zipped = client.get(f"/api/v1/runs/{finished}/{what}", headers=gz)
        assert zipped.headers["content-encoding"] == "gzip", what
        assert int(zipped.headers["content-length"]) < len(raw.content) / 3, what
        assert zipped.json() == raw.json()
    assert "content-encoding" not in client.get(f"/api/v1/runs/{finished}/status", headers=gz).headers
    with client.stream("GET", f"/api/v1/runs/{finished}/events", headers=gz) as stream:
        assert "content-encoding" not in stream.headers
        assert any(line.startswith("event: end") for line in stream.iter_lines())


def test_the_listing_is_gzipped_though_creation_at_the_same_path_is_not(client: TestClient) -> None:
    gz = {"Accept-Encoding": "gzip"}
    for _ in range(6):
        created = client.post("/api/v1/runs", json={"question": "a question long enough"}, headers=gz)
        assert created.status_code == 202
        assert "content-encoding" not in created.headers

    listing = client.get("/api/v1/runs", headers=gz)

    assert listing.headers["content-encoding"] == "gzip"
    assert len(listing.json()["runs"]) == 6


def test_405_names_every_method_the_path_serves(client: TestClient, finished: str) -> None:
    refused = client.put(f"/api/v1/runs/{finished}")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "DELETE, GET, HEAD"
    assert refused.json()["code"] == "METHOD_NOT_ALLOWED"
    assert client.delete("/api/v1/runs").headers["allow"] == "GET, HEAD, POST"


def test_a_trailing_slash_redirects_relative(client: TestClient) -> None:
    moved = client.get("/api/v1/runs/?limit=5", headers={"Host": "evil.example"}, follow_redirects=False)
    assert (moved.status_code, moved.headers["location"]) == (307, "/api/v1/runs?limit=5")
    assert client.get("/api/v1/nothing-here/", follow_redirects=False).status_code == 404


def test_a_refused_cors_preflight_answers_problem_json(client: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = client.options("/api/v1/runs", headers={"Origin": "https://app.example.com", **preflight})
    assert allowed.status_code == 200
    refused = client.options("/api/v1/runs", headers={"Origin": "https://evil.example", **preflight})
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "CORS_PREFLIGHT_REFUSED" and "origin" in refused.json()["message"]


def test_the_api_docs_work_offline(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "https://" not in html and "http://" not in html, page  # nothing from a CDN
        assets = re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', html)
        assert assets, page
        for asset in assets:
            served = client.get(asset)
            assert served.status_code == 200 and len(served.content) > 1000, asset
