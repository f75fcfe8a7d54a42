"""API keys on disk: shown once, stored as a keyed hash, verified exactly, revoked for good."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from app.runs.api_keys import CACHE_S, KeyRing, key_id_of


def test_a_key_is_stored_only_as_a_hash_in_a_private_folder(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    record, key = ring.create("alice", documents=["documents"], max_active=2, rate_per_min=60)
    assert key_id_of(key) == record.id
    files = list(ring.folder.iterdir())
    assert all(key.encode() not in path.read_bytes() for path in files)
    # The secret may itself hold "_" (URL-safe base64), so split only at the two separators.
    secret = key.split("_", 2)[2]
    assert len(secret) == 43
    assert all(secret.encode() not in path.read_bytes() for path in files)
    assert stat.S_IMODE(os.stat(ring.folder).st_mode) == 0o700
    assert record.webhook_secret.startswith("whsec_")
    assert "digest" not in record.public() and "webhook_secret" not in record.public()


def test_only_the_exact_key_matches_its_record(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    record, key = ring.create("alice")
    server = KeyRing(tmp_path)  # another process: knows only the disk
    loaded = server.load(record.id)
    assert loaded is not None and server.matches(loaded, key)
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert key_id_of(forged) == record.id and not server.matches(loaded, forged)
    _, other_key = ring.create("bob")
    assert not server.matches(loaded, other_key)


def test_malformed_keys_name_no_id() -> None:
    for presented in ("", "rl_", "Bearer x", "rl_0123456789ab_short", "rl_XYZ456789abc_" + "a" * 43):
        assert key_id_of(presented) is None


def test_a_revoked_key_is_seen_revoked_once_the_cache_ages(tmp_path: Path) -> None:
    admin = KeyRing(tmp_path)
    record, _ = admin.create("alice")
    server = KeyRing(tmp_path)
    assert server.load(record.id) is not None
    fresh, cached = server.cached(record.id)
    assert fresh and cached is not None and cached.revoked_at is None
    revoked = admin.revoke(record.id)
    assert revoked is not None and revoked.revoked_at is not None
    reloaded = server.load(record.id)  # what the server does once CACHE_S has passed
    assert reloaded is not None and reloaded.revoked_at is not None
    assert CACHE_S <= 0.5  # revocation must reach every process within a second
    assert admin.revoke("000000000000") is None


def test_an_unknown_or_damaged_key_file_lets_nobody_in(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    record, _ = ring.create("alice")
    (ring.folder / f"{record.id}.json").write_text("{truncated")
    assert KeyRing(tmp_path).load(record.id) is None
    assert KeyRing(tmp_path).load("../../etc/passwd") is None
    assert [r.id for r in ring.all()] == []


def test_every_key_of_one_output_root_shares_its_pepper(tmp_path: Path) -> None:
    first, second = KeyRing(tmp_path), KeyRing(tmp_path)
    a, key_a = first.create("a")
    b, key_b = second.create("b")
    server = KeyRing(tmp_path)
    loaded_a, loaded_b = server.load(a.id), server.load(b.id)
    assert loaded_a is not None and loaded_b is not None
    assert server.matches(loaded_a, key_a) and server.matches(loaded_b, key_b)
    assert sorted(r.name for r in server.all()) == ["a", "b"]
