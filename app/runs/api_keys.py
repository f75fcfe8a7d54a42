"""API keys: made, listed and revoked under the output root, and verified fast on every request.

A key is `rl_<id>_<secret>`.  Only a keyed hash of it is stored (HMAC-SHA256 with a pepper that
never leaves `.runlane/keys/`), so that the check on every poll costs a microsecond, not the
hundred milliseconds of a password hash; a key carries 256 random bits, so a fast hash loses
nothing.  Each record is cached for at most `CACHE_S`, which bounds how long a revocation takes
to reach every server process.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from pathlib import Path

import orjson
from pydantic import BaseModel, Field, ValidationError

from app import atomic_file
from app.runs.run_state import iso, utc_now

KEYS_DIR = "keys"
PEPPER_FILE = "pepper"
CACHE_S = 0.5
_KEY = re.compile(r"rl_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_ID = re.compile(r"[0-9a-f]{12}")


class ApiKey(BaseModel):
    """A key's record on disk: who it is and what it may do, never the key itself."""

    id: str
    name: str
    digest: str = Field(repr=False)
    admin: bool = False
    documents: list[str] | None = None
    max_active: int | None = None
    max_queued: int | None = None
    rate_per_min: int | None = None
    webhook_secret: str = Field(repr=False)
    created_at: str
    revoked_at: str | None = None

    def public(self) -> dict[str, object]:
        """What `runlane keys list` shows: neither the digest nor the webhook secret."""
        return self.model_dump(exclude={"digest", "webhook_secret"})


def key_id_of(presented: str) -> str | None:
    """The id a well-formed key names, or None for anything else."""
    match = _KEY.fullmatch(presented)
    return match.group(1) if match else None


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class KeyRing:
    """The keys of one output root; safe to share between threads."""

    def __init__(self, meta_dir: Path) -> None:
        self.folder = meta_dir / KEYS_DIR
        self._pepper: bytes | None = None
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._guard = threading.Lock()

    # -- verification (the request path) -------------------------------------------------------

    def cached(self, key_id: str) -> tuple[bool, ApiKey | None]:
        """(fresh, record) from memory only: never touches the disk, so the event loop may ask."""
        entry = self._cache.get(key_id)
        if entry is None or time.monotonic() - entry[0] > CACHE_S:
            return False, None
        return True, entry[1]

    def load(self, key_id: str) -> ApiKey | None:
        """The record from disk (revoked or not), and into the cache; None if there is none."""
        record = self._read(key_id) if _ID.fullmatch(key_id) else None
        with self._guard:
            self._cache[key_id] = (time.monotonic(), record)
        return record

    def matches(self, record: ApiKey, presented: str) -> bool:
        """Constant-time comparison of the presented key's digest with the stored one."""
        pepper = self._pepper
        if pepper is None:
            return False  # no key was ever loaded, so none can match
        digest = hmac.digest(pepper, presented.encode(), hashlib.sha256).hex()
        return hmac.compare_digest(digest, record.digest)

    def _read(self, key_id: str) -> ApiKey | None:
        try:
            raw = (self.folder / f"{key_id}.json").read_bytes()
            record = ApiKey.model_validate(orjson.loads(raw))
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError, ValidationError):
            return None  # a damaged key file lets nobody in
        if self._pepper is None:
            self._pepper = self._read_pepper()
        return record

    def _read_pepper(self) -> bytes | None:
        with contextlib.suppress(FileNotFoundError):
            return (self.folder / PEPPER_FILE).read_bytes()
        return None

    # -- administration (the `runlane keys` commands) -----------------------------------------

    def create(
        self,
        name: str,
        admin: bool = False,
        documents: list[str] | None = None,
        max_active: int | None = None,
        max_queued: int | None = None,
        rate_per_min: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key: its record, and the key itself, which is shown once and stored nowhere."""
        pepper = self._ensure_pepper()
        key_id = secrets.token_hex(6)
        key = f"rl_{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(
            id=key_id,
            name=name,
            digest=hmac.digest(pepper, key.encode(), hashlib.sha256).hex(),
            admin=admin,
            documents=documents,
            max_active=max_active,
            max_queued=max_queued,
            rate_per_min=rate_per_min,
            webhook_secret=new_webhook_secret(),
            created_at=iso(utc_now()) or "",
        )
        self._write(record)
        return record, key

    def all(self) -> list[ApiKey]:
        if not self.folder.is_dir():
            return []
        records = (self._read(path.stem) for path in sorted(self.folder.glob("*.json")))
        return sorted((r for r in records if r is not None), key=lambda r: r.created_at)

    def revoke(self, key_id: str) -> ApiKey | None:
        """Mark a key revoked (its record stays, for the runs it started); None if unknown."""
        record = self._read(key_id) if _ID.fullmatch(key_id) else None
        if record is None:
            return None
        if record.revoked_at is None:
            record = record.model_copy(update={"revoked_at": iso(utc_now())})
            self._write(record)
        return record

    def _write(self, record: ApiKey) -> None:
        self._make_folder()
        atomic_file.write_bytes(self.folder / f"{record.id}.json", orjson.dumps(record.model_dump()))

    def _make_folder(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)  # secrets live here: only the service's user may look

    def _ensure_pepper(self) -> bytes:
        """The pepper, made once per output root; two first keys made at once agree on it."""
        self._make_folder()
        path = self.folder / PEPPER_FILE
        if not path.exists():
            temp = self.folder / f".{PEPPER_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
            atomic_file.write_new(str(temp), secrets.token_bytes(32), fsync=True)
            try:
                os.link(temp, path)  # fails if another process made it first: theirs wins
                atomic_file.fsync_dir(self.folder)
            except FileExistsError:
                pass
            finally:
                temp.unlink()
        self._pepper = path.read_bytes()
        return self._pepper
