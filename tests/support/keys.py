"""API keys for tests: made on disk, as `runlane keys create` makes them, before a server starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.runs.api_keys import ApiKey, KeyRing
from app.runs.run_store import META_DIR


def make_key(output_dir: Path, name: str, **rights: Any) -> tuple[ApiKey, str]:
    return KeyRing(output_dir.resolve() / META_DIR).create(name, **rights)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def secret_of(key: str) -> str:
    """The secret part of `rl_<id>_<secret>` (which may itself hold underscores)."""
    return key.split("_", 2)[2]
