"""Where a webhook may go: https (or http to allow-listed hosts), never to a private address.

A URL is checked when the run is started, and again, with a fresh name lookup, before every
delivery attempt, whose connection then goes to the very address that was checked: a name that
is re-pointed at 127.0.0.1 or 169.254.169.254 between the two gets nothing.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.runs.errors import WebhookUrlRefusedError

MAX_URL = 2048


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked address the connection goes to


def _parts(url: str, allow_hosts: Sequence[str]) -> tuple[str, str, int, str]:
    if len(url) > MAX_URL:
        raise WebhookUrlRefusedError(f"webhook_url is longer than {MAX_URL} characters.")
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        raise WebhookUrlRefusedError("webhook_url is not a valid URL.") from None
    host = (split.hostname or "").lower()
    if split.scheme not in ("https", "http") or not host:
        raise WebhookUrlRefusedError("webhook_url must be an https:// URL with a host.")
    if split.username is not None or split.password is not None:
        raise WebhookUrlRefusedError("webhook_url must not carry a user name or password.")
    if split.scheme == "http" and host not in allow_hosts:
        raise WebhookUrlRefusedError(
            f"webhook_url must use https; plain http only reaches hosts in RUNLANE_WEBHOOK_ALLOW_HOSTS, "
            f"and '{host}' is not one."
        )
    path = (split.path or "/") + (f"?{split.query}" if split.query else "")
    return split.scheme, host, port or (443 if split.scheme == "https" else 80), path


def check_url(url: str, allow_hosts: Sequence[str]) -> None:
    """What can be said without a name lookup (safe to call on the event loop)."""
    _parts(url, allow_hosts)


def resolve(url: str, allow_hosts: Sequence[str]) -> Target:
    """The URL's target, with an address that is public or allow-listed (blocks on DNS)."""
    scheme, host, port, path = _parts(url, allow_hosts)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookUrlRefusedError(f"webhook_url host '{host}' does not resolve ({exc}).") from None
    addresses = [str(info[4][0]) for info in infos]
    if host not in allow_hosts:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            mapped = getattr(ip, "ipv4_mapped", None)
            if not (mapped or ip).is_global:
                raise WebhookUrlRefusedError(
                    f"webhook_url host '{host}' resolves to {address}, a private, loopback, link-local "
                    "or reserved address; add the host to RUNLANE_WEBHOOK_ALLOW_HOSTS to allow it."
                )
    return Target(scheme, host, port, path, addresses[0])


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the certificate still verified against the host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST to the target's checked address; the status code (redirects are not followed)."""
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHTTPS(target, timeout)
    else:
        connection = http.client.HTTPConnection(target.address, target.port, timeout=timeout)
    host = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    try:
        connection.request("POST", target.path, body, {**headers, "Host": host})
        response = connection.getresponse()
        response.read(64 * 1024)
        return response.status
    finally:
        connection.close()
