"""A full output disk, for real: a small tmpfs is the output root, filled to the last byte."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.runs.run_reaper import RunReaper
from app.runs.run_store import RunStore
from tests.api.routes.test_runs import assert_problem
from tests.conftest import running_app, wait_for_status
from tests.support.pipelines import instant_pipeline

REQUEST = {"question": "q", "markdown_path": "documents"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_disk_answers_507_creates_nothing_and_recovers(small_disk: Path, settings: Settings) -> None:
    settings = settings.model_copy(
        update={"output_dir": small_disk / "output", "min_free_bytes": 1024 * 1024}
    )
    with running_app(settings, instant_pipeline) as client:
        assert client.get("/ready").status_code == 200
        before = set(os.listdir(settings.output_dir))
        filler = fill(small_disk)
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["output_free_space"] is False
        response = client.post("/api/v1/runs", json=REQUEST)
        body = assert_problem(response, 507, "INSUFFICIENT_STORAGE")
        assert int(response.headers["Retry-After"]) > 0 and "full" in body["message"]
        assert set(os.listdir(settings.output_dir)) == before  # no run, no leftover
        assert not os.listdir(settings.output_dir / ".staging")
        filler.unlink()
        created = client.post("/api/v1/runs", json=REQUEST)
        assert created.status_code == 202
        wait_for_status(client, created.json()["run_id"], "completed")
        # By default a disk worker process did those writes, and told the full disk truly.
        assert client.app.state.runs.store.writer.worker_pids()  # type: ignore[attr-defined]


class IndexOnAFullDisk(RunStore):
    def index_rows(self, rows: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")


def test_a_run_whose_index_write_fails_is_still_created_and_indexed_later(tmp_path: Path) -> None:
    store = IndexOnAFullDisk(tmp_path / "output")
    state = store.create(REQUEST, "kept", 60)  # no error: the run exists, so it was created
    healthy = RunStore(tmp_path / "output")
    assert healthy.get("kept").status.value == "queued"
    assert "kept" not in healthy.index.run_ids()
    RunReaper(healthy, orphan_after_s=30, timeout_grace_s=0).reconcile_index()
    assert healthy.index.with_status("queued") == [state.run_id]
