"""No server-side request forgery: webhooks go to https on public addresses, or allow-listed hosts."""

from __future__ import annotations

import pytest

from app.runs.errors import WebhookUrlRefusedError
from app.runs.webhook_targets import check_url, resolve


@pytest.mark.parametrize(
    ("url", "allow", "why"),
    [
        ("http://127.0.0.1:9/hook", [], "must use https"),
        ("https://127.0.0.1:9/hook", [], "resolves to 127.0.0.1"),
        ("https://169.254.169.254/latest/meta-data", [], "resolves to 169.254.169.254"),
        ("https://10.0.0.1/hook", [], "resolves to 10.0.0.1"),
        ("https://[::1]/hook", [], "resolves to ::1"),
        ("https://[::ffff:127.0.0.1]/hook", [], "resolves to ::ffff:127.0.0.1"),
        ("https://100.64.0.1/hook", [], "resolves to 100.64.0.1"),
        ("https://localhost/hook", ["127.0.0.1"], "'localhost' resolves to 127.0.0.1"),
        ("http://localhost/hook", ["127.0.0.1"], "must use https"),
        ("ftp://example.com/hook", [], "https:// URL"),
        ("https://user:pw@example.com/hook", [], "user name"),
        ("https://", [], "https:// URL"),
    ],
)
def test_private_and_plain_http_targets_are_refused(url: str, allow: list[str], why: str) -> None:
    with pytest.raises(WebhookUrlRefusedError) as refused:
        resolve(url, allow)
    assert why in refused.value.message


def test_an_allow_listed_host_may_be_reached_over_http() -> None:
    check_url("http://127.0.0.1:8080/hook", ["127.0.0.1"])
    target = resolve("http://127.0.0.1:8080/hook?x=1", ["127.0.0.1"])
    assert (target.scheme, target.address, target.port, target.path) == (
        "http",
        "127.0.0.1",
        8080,
        "/hook?x=1",
    )
