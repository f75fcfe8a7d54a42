"""Checks of each response the smoke gate sees against the OpenAPI document the server serves,
so that the gate and the document cannot drift apart."""

from __future__ import annotations

import re
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from app.scripts.contract_checks import require

JSON_TYPES = ("application/json", "application/problem+json")


class DocumentChecks:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._templates = [
            (re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"), path) for path in document["paths"]
        ]
        # Literal paths first: /api/v1/runs/{run_id}/output/html is not /{run_id}/output.
        self._templates.sort(key=lambda entry: entry[1].count("{"))

    @classmethod
    def fetch(cls, client: httpx.Client) -> DocumentChecks | None:
        """The served document; None when this key may not read it (keys on, not an admin)."""
        response = client.get("/openapi.json")
        if response.status_code in (401, 403):
            return None
        require(
            response.status_code == 200, "GET /openapi.json: the server serves its document", response.text
        )
        return cls(response.json())

    def _template(self, path: str) -> str | None:
        return next((template for pattern, template in self._templates if pattern.match(path)), None)

    def check(self, response: httpx.Response, body: Any) -> None:
        """The status code is declared for the operation, and a JSON body fits its schema."""
        method, path = response.request.method.lower(), response.request.url.path
        template = self._template(path)
        where = f"{method.upper()} {template or path}"
        require(template is not None, f"{where}: the document has the path", path)
        operation = self.document["paths"][template].get(method)
        require(operation is not None, f"{where}: the document has the operation", path)
        declared = operation["responses"].get(str(response.status_code))
        require(declared is not None, f"{where}: the document declares {response.status_code}", body)
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in JSON_TYPES:
            return
        content = declared.get("content", {})
        require(media_type in content, f"{where} {response.status_code}: declared as {media_type}", content)
        schema = content[media_type].get("schema")
        if schema is None:
            return
        validator = Draft202012Validator({**schema, "components": self.document.get("components", {})})
        errors = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
        first = errors[0] if errors else None
        where_in = "/".join(str(part) for part in first.absolute_path) if first else ""
        require(
            first is None,
            f"{where} {response.status_code}: the body fits the document's schema"
            + (f" ({where_in}: {first.message})" if first else ""),
            body,
        )
