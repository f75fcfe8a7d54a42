"""Schemathesis against a real server: generated requests, valid and not, never break the OpenAPI contract."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.main import create_app
from app.config import Settings
from tests.support.server import REPO_ROOT, uvicorn_server

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_MODE = 40


def _cases() -> list[tuple[str, str, GenerationMode]]:
    """Every operation the app serves, read from its own factory so that a new route is tested at once.

    Invalid data is sent where the document constrains something (a body, a query); a bare path id or
    an operation without inputs has nothing that could be invalid.
    """
    paths = create_app(Settings(output_dir=Path("/nonexistent"))).openapi()["paths"]
    cases = []
    for path, item in paths.items():
        for method, operation in item.items():
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            queries = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            if "requestBody" in operation or queries:
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


CASES = _cases()
CASE_IDS = [f"{method} {path} {mode.value}" for method, path, mode in CASES]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseSchema]:
    root = tmp_path_factory.mktemp("schemathesis")
    shutil.copytree(REPO_ROOT / "documents", root / "documents")
    with uvicorn_server(root) as server:
        # Finished runs, so that generated ids and cursors meet real data as well as unknown ids.
        for _ in range(3):
            httpx.post(f"{server.url}/api/v1/runs", json={"question": "What is the wind target?"}, timeout=10)
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        schema.config.update(base_url=server.url)
        schema.config.generation.update(modes=list(GenerationMode))
        yield schema


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=CASE_IDS)
def test_generated_requests_conform_to_the_openapi_document(
    api_schema: BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        derandomize=True,
        # Shrinking a negative case can turn it valid, which Hypothesis then reports as unsatisfiable.
        phases=[Phase.explicit, Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=30)

    conforms()
