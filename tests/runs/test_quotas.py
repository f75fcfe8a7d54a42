"""Per-key quotas: a sliding minute of requests, and run counts taken under the key's lock."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.runs.api_keys import KeyRing
from app.runs.errors import QuotaExceededError
from app.runs.quotas import WINDOW_S, QuotaGate, SqliteRateLog, check_rate
from app.runs.run_index import RunIndex


def test_the_rate_log_admits_n_requests_in_any_minute(tmp_path: Path) -> None:
    log, other = SqliteRateLog(tmp_path), SqliteRateLog(tmp_path)  # two processes, one file
    assert [log.hit("k", 3, t) for t in (0.0, 1.0)] == [None, None]
    assert other.hit("k", 3, 2.0) is None
    assert other.hit("k", 3, 3.0) == pytest.approx(WINDOW_S - 3.0)  # the first ages out at 60
    assert log.hit("k2", 3, 3.0) is None  # another key has its own minute
    assert log.hit("k", 3, WINDOW_S + 0.5) is None
    assert log.hit("k", 3, WINDOW_S + 0.6) is not None


def test_check_rate_names_the_limit_and_when_to_retry(tmp_path: Path) -> None:
    record, _ = KeyRing(tmp_path).create("alice", rate_per_min=1)
    log = SqliteRateLog(tmp_path)
    check_rate(log, record)
    with pytest.raises(QuotaExceededError) as refused:
        check_rate(log, record)
    assert refused.value.code == "RATE_LIMITED" and 1 <= refused.value.retry_after_s <= 60


def test_the_gate_counts_a_keys_own_active_and_queued_runs(tmp_path: Path) -> None:
    index = RunIndex(tmp_path)
    ring = KeyRing(tmp_path)
    limited, _ = ring.create("alice", max_active=2, max_queued=1)
    gate = QuotaGate(index, tmp_path, None, retry_after_s=5)
    index.upsert("someone-elses", 1, "queued", None, key_id="other")
    with gate.admitting(limited):
        index.upsert("a", 2, "running", None, key_id=limited.id)
    with gate.admitting(limited):
        index.upsert("b", 3, "queued", None, key_id=limited.id)
    with pytest.raises(QuotaExceededError) as refused, gate.admitting(limited):
        pass
    assert refused.value.code == "QUOTA_QUEUED_RUNS"
    index.upsert("b", 3, "running", None, key_id=limited.id)
    with pytest.raises(QuotaExceededError) as refused, gate.admitting(limited):
        pass
    assert refused.value.code == "QUOTA_ACTIVE_RUNS"
    index.upsert("a", 2, "completed", 4, key_id=limited.id)
    with gate.admitting(limited):
        pass


def test_the_gate_lets_one_admission_at_a_time_per_key(tmp_path: Path) -> None:
    index = RunIndex(tmp_path)
    limited, _ = KeyRing(tmp_path).create("alice", max_active=1)
    first, second = QuotaGate(index, tmp_path, None, 5), QuotaGate(index, tmp_path, None, 5)
    outcome: list[str] = []

    def admit_second() -> None:
        try:
            with second.admitting(limited):
                outcome.append("admitted")
        except QuotaExceededError as exc:
            outcome.append(exc.code)

    with first.admitting(limited):
        thread = threading.Thread(target=admit_second)
        thread.start()
        thread.join(0.2)
        assert thread.is_alive()  # waits on the key's lock, not on a count taken too early
        index.upsert("a", 1, "queued", None, key_id=limited.id)
    thread.join(30)
    assert outcome == ["QUOTA_ACTIVE_RUNS"]
