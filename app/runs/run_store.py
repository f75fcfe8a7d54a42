"""The run store: the only writer of run state, persisting each run under `output/<run_id>/`.

Every change happens under the run's lock (a thread lock plus a file lock, so several
processes sharing the output root serialise too) as read-from-disk, check, write-atomically.
Creation and terminal states are durable (fsynced); claims and progress are atomic but not
fsynced: after a power loss such a run reads as it was before, and the reaper settles it.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson

from app import atomic_file
from app.runs import run_log
from app.runs.errors import (
    InvalidTransitionError,
    RunActiveError,
    RunAlreadyFinishedError,
    RunGoneError,
    RunIdConflictError,
    RunNotFoundError,
    RunStateUnreadableError,
    StorageFullError,
    storage_failure,
)
from app.runs.regular_files import read_regular
from app.runs.run_ids import is_valid_run_id, new_run_id
from app.runs.run_index import Index, RunIndex
from app.runs.run_state import (
    TRANSITIONS,
    Owner,
    Progress,
    RunError,
    RunState,
    RunStatus,
    iso,
    parse_iso,
    utc_now,
)
from app.runs.state_file import CLAIM_FILE, STATE_FILE, load_versioned_state
from app.runs.status_cache import StatusCache, StatusView
from app.runs.store_writer import DEFAULT_SYNC, Change, FileSystemSync, IndexRow, StoreWriter

logger = logging.getLogger("runlane.store")

REQUEST_FILE = "request.json"  # runs made before the request moved into the state file
FINAL_FILE = "final.md"
CONTEXT_FILE = "context_bundle.json"
TOMBSTONE_FILE = "tombstone.json"
LOCK_FILE = ".lock"  # the lock of runs made before the folder itself was locked
META_DIR = ".runlane"
STAGING_DIR = ".staging"

_LOCK_STRIPES = 64
_MAX_OWN_CLAIMS = 10_000
_LOCK_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_staging_names = itertools.count()


class RunLocks(Protocol):
    """Locks of runs across processes on other hosts (see app.runs.postgres)."""

    def hold(self, run_id: str) -> contextlib.AbstractContextManager[None]: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """A pipeline's result as the store persists it."""

    status: RunStatus
    finish_reason: str
    final_markdown: str | None
    context_bundle: dict[str, Any] | None
    gaps: list[dict[str, str]]
    pipeline_reason: str | None = None  # the pipeline's own words, when finish_reason differs


@contextlib.contextmanager
def storage_errors(retry_after_s: int = 30) -> Iterator[None]:
    """A full disk is the client's 507, not an internal error."""
    try:
        yield
    except OSError as exc:
        failure = storage_failure(exc, retry_after_s)
        if failure is exc:
            raise
        raise failure from exc
    except sqlite3.OperationalError as exc:
        if "full" in str(exc):
            raise StorageFullError(retry_after_s) from exc
        raise


class RunStore:
    def __init__(
        self,
        output_dir: Path,
        pipeline_name: str = "",
        retention: timedelta | None = None,
        sync: FileSystemSync | None = DEFAULT_SYNC,
        index: Index | None = None,
        locks: RunLocks | None = None,
        disk_workers: int = 0,
    ) -> None:
        self.root = output_dir.resolve()
        self._root_str = str(self.root)
        self.retention = retention
        self.display_root = output_dir.as_posix().rstrip("/") or "."
        self.pipeline_name = pipeline_name
        for folder in (self.root, self.root / STAGING_DIR, self.root / META_DIR):
            folder.mkdir(parents=True, exist_ok=True)
        self.index: Index = index or RunIndex(self.root / META_DIR)
        self.locks = locks
        self._stripes = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._statuses = StatusCache()
        self._dequeue_guard = threading.Lock()
        # Claims this store wrote, until its next write of their run: the run's end need not
        # read the claim file back (see state_file.load_versioned_state).
        self._claims: dict[str, RunState] = {}
        self._dequeued = 0
        self.writer = StoreWriter(self._root_str, self.index_rows, sync=sync, processes=disk_workers)

    def close(self) -> None:
        self.writer.close()
        self.index.close()

    @property
    def dequeued(self) -> int:
        """How many queued runs this process has moved on (claimed or stopped) so far."""
        return self._dequeued

    def run_dir(self, run_id: str) -> Path:
        if not is_valid_run_id(run_id):
            raise RunNotFoundError(run_id)
        return self.root / run_id

    def display_path(self, run_id: str, name: str) -> str:
        return f"{self.display_root}/{run_id}/{name}"

    @contextlib.contextmanager
    def locked(self, run_id: str) -> Iterator[Path]:
        """Exclusive access to one run, across threads and processes: flock(2) on the run's
        folder itself (released by the kernel if the process dies; no lock file, so a run
        costs one inode less), or with `locks` a thread-lock stripe, then the shared lock.
        Plain fcntl, because filelock's bookkeeping cost 0.19 ms of CPU per acquisition here."""
        run_dir = self.run_dir(run_id)
        if self.locks is not None:
            with self._stripes[hash(run_id) % _LOCK_STRIPES]:
                if not os.path.isdir(run_dir):
                    raise RunNotFoundError(run_id)
                with self.locks.hold(run_id):
                    yield run_dir
            return
        # Each thread opens the folder itself: flock(2) excludes other open file descriptions
        # in this process as in any other, so threads need no lock of their own (a shared one
        # made runs wait behind unrelated runs' durable writes).
        try:
            fd = os.open(f"{self._root_str}/{run_id}", _LOCK_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise RunNotFoundError(run_id) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield run_dir
        finally:
            os.close(fd)

    # -- creation ---------------------------------------------------------------------------

    def create(
        self,
        request: dict[str, Any],
        run_id: str | None,
        timeout_s: float,
        idempotency_key: str | None = None,
        key_id: str | None = None,
        parent_run_id: str | None = None,
    ) -> RunState:
        """Persist a new queued run durably; the folder appears whole or not at all, and an
        error means no run was created."""
        for _ in range(8):
            state = self.new_state(request, run_id, timeout_s, idempotency_key, key_id, parent_run_id)
            with storage_errors():
                if self.writer.write(self.creation(state)):
                    return state
            if run_id is not None:
                raise self.conflict_error(run_id)
        raise RunIdConflictError(state.run_id)

    @staticmethod
    def new_state(
        request: dict[str, Any],
        run_id: str | None,
        timeout_s: float,
        idempotency_key: str | None = None,
        key_id: str | None = None,
        parent_run_id: str | None = None,
    ) -> RunState:
        now = iso(utc_now())
        assert now is not None
        return RunState(
            run_id=run_id or new_run_id(),
            status=RunStatus.QUEUED,
            created_at=now,
            updated_at=now,
            timeout_s=timeout_s,
            request=request,
            idempotency_key=idempotency_key,
            key_id=key_id,
            parent_run_id=parent_run_id,
        )

    def creation(self, state: RunState) -> Change:
        """The change that publishes a new run's folder, whole, under its id."""
        staging = f"{self._root_str}/{STAGING_DIR}/{os.getpid()}.{next(_staging_names)}.{state.run_id}"
        return Change(
            staging,
            {STATE_FILE: state.model_dump_json().encode()},
            publish=f"{self._root_str}/{state.run_id}",
            index_row=self.index_row(state),
        )

    def conflict_error(self, run_id: str) -> Exception:
        """Why a chosen id cannot be created: deleted before (410) or in use (409)."""
        if os.path.exists(f"{self._root_str}/{run_id}/{TOMBSTONE_FILE}"):
            return self.absence_error(run_id)
        return RunIdConflictError(run_id)

    # -- reading ----------------------------------------------------------------------------

    def get(self, run_id: str) -> RunState:
        return self.status_view(run_id).state

    def status_view(self, run_id: str) -> StatusView:
        """The hot path: one stat(2) when the state file is unchanged since the last read."""
        if not is_valid_run_id(run_id):
            raise RunNotFoundError(run_id)
        # Plain strings, not pathlib: this runs on every poll of every open browser tab.
        try:
            return self._statuses.view(run_id, f"{self._root_str}/{run_id}/{STATE_FILE}")
        except FileNotFoundError:
            raise self.absence_error(run_id) from None

    def absence_error(self, run_id: str) -> Exception:
        """Why a run's files are missing: deleted (410, once a tombstone is written) or unknown."""
        try:
            record = orjson.loads(read_regular(f"{self._root_str}/{run_id}/{TOMBSTONE_FILE}")[0])
        except (OSError, orjson.JSONDecodeError):
            return RunNotFoundError(run_id)
        if not isinstance(record, dict):
            return RunNotFoundError(run_id)
        key_id = record.get("key_id")
        return RunGoneError(
            run_id, str(record.get("deleted_at")), key_id if isinstance(key_id, str) else None
        )

    def read_request(self, run_id: str) -> dict[str, Any]:
        return self.request_of(self.get(run_id))

    def request_of(self, state: RunState) -> dict[str, Any]:
        """The accepted request: in the state, or in `request.json` for runs made before."""
        if state.request is not None:
            return state.request
        run_id = state.run_id
        try:
            value = orjson.loads(read_regular(f"{self._root_str}/{run_id}/{REQUEST_FILE}")[0])
        except FileNotFoundError:
            raise self.absence_error(run_id) from None
        except (OSError, orjson.JSONDecodeError) as exc:
            raise RunStateUnreadableError(run_id, f"{REQUEST_FILE} is unreadable ({exc})") from None
        if not isinstance(value, dict):
            raise RunStateUnreadableError(run_id, f"{REQUEST_FILE} is not a JSON object")
        return value

    # -- transitions ------------------------------------------------------------------------

    def _read_locked(self, run_dir: Path) -> RunState:
        run_id = run_dir.name
        try:
            return load_versioned_state(run_id, f"{run_dir}/{STATE_FILE}", self._claims.get(run_id))[0]
        except FileNotFoundError:
            raise self.absence_error(run_id) from None

    def _write(
        self,
        run_dir: Path,
        state: RunState,
        event: dict[str, Any] | None = None,
        *,
        artifacts: dict[str, bytes] | None = None,
        durable: bool = True,
        at_once: bool = False,
        reindex: bool = True,
        state_file: str = STATE_FILE,
        traceback: str | None = None,
        detail: str | None = None,
    ) -> None:
        files = dict(artifacts or {})
        # The log before the state: whoever sees the new state (a live event stream) finds its
        # event logged; the artifacts before both, so a terminal state never lacks them.
        if event is not None:
            log = run_log.read_run_log(run_dir, state.created_at, self.pipeline_name)
            run_log.catch_up(log, state)
            run_log.add_event(log, {"at": state.updated_at, **event}, traceback, detail)
            files[run_log.RUN_LOG_FILE] = atomic_file.json_bytes(log)
        files[state_file] = state.model_dump_json().encode()
        row = self.index_row(state) if reindex else None
        self._claims.pop(state.run_id, None)
        self.writer.write(Change(str(run_dir), files, durable, index_row=row), at_once=at_once)
        if state_file == CLAIM_FILE:
            if len(self._claims) >= _MAX_OWN_CLAIMS:  # runs taken over elsewhere leave theirs
                self._claims.clear()
            self._claims[state.run_id] = state

    @staticmethod
    def index_row(state: RunState) -> IndexRow:
        finished_ns = None
        if state.completed_at is not None:
            finished_ns = int(parse_iso(state.completed_at).timestamp() * 1e9)
        created_ns = int(parse_iso(state.created_at).timestamp() * 1e9)
        # A finished run with a webhook is due for delivery; the index keeps a later schedule.
        webhook_due = time.time_ns() if finished_ns is not None and state.webhook_url else None
        return (
            state.run_id,
            created_ns,
            state.status.value,
            finished_ns,
            state.key_id,
            webhook_due,
            state.parent_run_id,
        )

    def index_state(self, state: RunState) -> None:
        self.index_rows([self.index_row(state)])

    def index_rows(self, rows: list[IndexRow]) -> None:
        """Bring the index in line with states just written, in one transaction."""
        if len(rows) == 1:
            self.index.upsert(*rows[0])
            return
        with self.index.batch():
            for row in rows:
                self.index.upsert(*row)

    def _moved(self, state: RunState, target: RunStatus, **changes: Any) -> RunState:
        if target not in TRANSITIONS[state.status]:
            raise InvalidTransitionError(state.run_id, state.status.value, target.value)
        now = utc_now()
        changes.setdefault("updated_at", iso(now))
        if target is RunStatus.RUNNING:
            changes.setdefault("started_at", iso(now))
        if target.is_terminal:
            changes["completed_at"] = changes["updated_at"]
            changes.setdefault("expires_at", self._expiry())
            if state.progress is not None:
                changes["progress"] = state.progress.ended(target)
            elif target in (RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_GAPS):
                changes["progress"] = Progress(
                    stage="done", stage_index=0, fraction=1.0, message="done", seq=1
                )
        return state.model_copy(update={"status": target, **changes})

    @contextlib.contextmanager
    def exclusive(self, run_id: str) -> Iterator[tuple[Path, RunState]]:
        """The run's folder and fresh state, held under its lock, for read-check-write changes."""
        with self.locked(run_id) as run_dir:
            yield run_dir, self._read_locked(run_dir)

    def commit(
        self,
        run_dir: Path,
        state: RunState,
        target: RunStatus | None = None,
        *,
        event: dict[str, Any] | None = None,
        artifacts: dict[str, bytes] | None = None,
        durable: bool = True,
        at_once: bool = False,
        logged: bool = True,
        as_claim: bool = False,
        traceback: str | None = None,
        detail: str | None = None,
        **changes: Any,
    ) -> RunState:
        """Write a change prepared inside `exclusive`; a status change must be in the table.
        `at_once` writes a change that need not be durable on this thread (see StoreWriter.write);
        `as_claim` writes the new state to the claim file (see state_file)."""
        if target is None:
            changes.setdefault("updated_at", iso(utc_now()))
            new = state.model_copy(update=changes)
        else:
            new = self._moved(state, target, **changes)
            event = {"event": "status", "status": target.value, **(event or {})}
            if new.finish_reason:
                event["finish_reason"] = new.finish_reason
            if new.error is not None:
                event["error"] = new.error.model_dump()
        self._write(
            run_dir,
            new,
            event if logged else None,
            artifacts=artifacts,
            durable=durable,
            at_once=at_once,
            reindex=target is not None,
            state_file=CLAIM_FILE if as_claim else STATE_FILE,
            traceback=traceback,
            detail=detail,
        )
        if target is not None and state.status is RunStatus.QUEUED:
            with self._dequeue_guard:
                self._dequeued += 1
        return new

    def transition(self, run_id: str, target: RunStatus, **changes: Any) -> RunState:
        """Move a run to `target`, or raise InvalidTransitionError if the table forbids it."""
        with self.exclusive(run_id) as (run_dir, state):
            return self.commit(run_dir, state, target, **changes)

    # -- the lifecycle operations ------------------------------------------------------------

    def claim(
        self, run_id: str, owner: Owner, take_over: Callable[[RunState], bool] | None = None
    ) -> RunState | None:
        """queued -> running for this owner, with the next attempt number; None if someone else
        claimed or stopped it first.  A running run for which `take_over` says yes (its owner
        died and it may be tried again) becomes this owner's next attempt: from then on every
        write of the earlier attempt is refused (see `_fenced`)."""
        with self.exclusive(run_id) as (run_dir, state):
            deadline = iso(utc_now() + timedelta(seconds=state.timeout_s))
            attempt = state.attempt + 1
            if state.status is RunStatus.RUNNING and take_over is not None and take_over(state):
                previous = state.owner.model_dump() if state.owner else None
                event = {"event": "attempt", "attempt": attempt, "previous_owner": previous}
                return self.commit(
                    run_dir, state, event=event, owner=owner, attempt=attempt, deadline_at=deadline
                )
            if state.status is not RunStatus.QUEUED:
                return None
            # The state alone, at once, to the claim file (see state_file): its rename is the
            # first heartbeat (the folder's mtime), and the log gets the `running` event with its
            # next write (see run_log.catch_up).
            return self.commit(
                run_dir,
                state,
                RunStatus.RUNNING,
                durable=False,
                at_once=True,
                logged=False,
                as_claim=True,
                owner=owner,
                attempt=attempt,
                deadline_at=deadline,
            )

    @staticmethod
    def _fenced(state: RunState, attempt: int | None) -> bool:
        """True when a write comes from an attempt that is no longer the run's current one."""
        return attempt is not None and state.attempt != attempt

    def record_progress(
        self,
        run_id: str,
        stage: str,
        message: str,
        fraction: float | None,
        stages: tuple[str, ...],
        attempt: int | None = None,
    ) -> None:
        """Store a progress report; fraction and stage index never go backwards."""
        with self.exclusive(run_id) as (run_dir, state):
            if state.status is not RunStatus.RUNNING or self._fenced(state, attempt):
                return
            previous = state.progress
            index = stages.index(stage) if stage in stages else None
            if previous is None:
                index = index if index is not None else 0
                floor, seq = 0.0, 0
            else:
                bumped = previous.stage_index + (stage != previous.stage)
                index = max(previous.stage_index, index if index is not None else bumped)
                floor, seq = previous.fraction, previous.seq
            value = min(1.0, max(floor, fraction if fraction is not None else floor))
            progress = Progress(
                stage=stage,
                stage_index=index,
                stage_count=len(stages) or None,
                fraction=value,
                message=message,
                seq=seq + 1,
            )
            event = {
                "event": "progress",
                "stage": stage,
                "stage_index": progress.stage_index,
                "stage_count": progress.stage_count,
                "message": message,
                "fraction": value,
                "seq": progress.seq,
            }
            self.commit(run_dir, state, event=event, durable=False, progress=progress)

    def finish(self, run_id: str, outcome: Outcome, attempt: int | None = None) -> RunState | None:
        """Write the artifacts, then flip to the terminal status; None if the run already ended
        or another attempt has taken it over."""
        with self.exclusive(run_id) as (run_dir, state):
            if state.status is not RunStatus.RUNNING or self._fenced(state, attempt):
                return None
            artifacts = {}
            if outcome.final_markdown is not None:
                artifacts[FINAL_FILE] = outcome.final_markdown.encode("utf-8")
            if outcome.context_bundle is not None:
                artifacts[CONTEXT_FILE] = atomic_file.json_bytes(outcome.context_bundle)
            said = {"pipeline_reason": outcome.pipeline_reason} if outcome.pipeline_reason else None
            return self.commit(
                run_dir,
                state,
                outcome.status,
                event=said,
                artifacts=artifacts,
                finish_reason=outcome.finish_reason,
                gaps=outcome.gaps,
                has_output=FINAL_FILE in artifacts,
                has_context=CONTEXT_FILE in artifacts,
            )

    def fail(
        self,
        run_id: str,
        error: RunError,
        finish_reason: str,
        traceback: str | None = None,
        detail: str | None = None,
        attempt: int | None = None,
    ) -> RunState | None:
        """running -> failed; None if the run already ended (e.g. stopped meanwhile) or another
        attempt has taken it over."""
        with self.exclusive(run_id) as (run_dir, state):
            if state.status is not RunStatus.RUNNING or self._fenced(state, attempt):
                return None
            return self.commit(
                run_dir,
                state,
                RunStatus.FAILED,
                traceback=traceback,
                detail=detail,
                error=error,
                finish_reason=finish_reason,
            )

    def stop(self, run_id: str, finish_reason: str, only_if: RunStatus) -> RunState | None:
        """-> stopped without artifacts, if the run is still in status `only_if`."""
        with self.exclusive(run_id) as (run_dir, state):
            if state.status is not only_if:
                return None
            return self.commit(run_dir, state, RunStatus.STOPPED, finish_reason=finish_reason)

    def request_cancel(self, run_id: str) -> RunState:
        """Stop a queued run now, or flag a running one; repeat cancels answer the status."""
        with storage_errors(), self.exclusive(run_id) as (run_dir, state):
            now = iso(utc_now())
            if state.status is RunStatus.QUEUED:
                return self.commit(
                    run_dir, state, RunStatus.STOPPED, finish_reason="cancelled", cancel_requested_at=now
                )
            if state.status is RunStatus.RUNNING:
                if state.cancel_requested_at is not None:
                    return state
                event = {"event": "cancel_requested"}
                return self.commit(run_dir, state, event=event, cancel_requested_at=now)
            if state.status is RunStatus.STOPPED and state.cancel_requested_at is not None:
                return state
            raise RunAlreadyFinishedError(run_id, state.status.value)

    def _expiry(self) -> str | None:
        if self.retention is None:
            return None
        return iso(utc_now() + self.retention)

    # -- deletion ---------------------------------------------------------------------------

    def delete(self, run_id: str) -> None:
        """Remove a terminal (or damaged) run's files, leaving a tombstone so it answers 410."""
        with storage_errors(), self.locked(run_id) as run_dir:
            key_id = None
            try:
                state = self._read_locked(run_dir)
            except RunStateUnreadableError:
                status = "damaged"  # nobody can run it; removing it is the way to mend it
            else:
                status, key_id = state.status.value, state.key_id
                if not state.status.is_terminal:
                    raise RunActiveError(run_id, status)
            record = {"run_id": run_id, "deleted_at": iso(utc_now()), "status": status, "key_id": key_id}
            atomic_file.write_json(run_dir / TOMBSTONE_FILE, record)
            self.remove_run_files(run_dir)
            self.index.remove(run_id)
        self._statuses.forget(run_id)

    @staticmethod
    def remove_run_files(run_dir: Path) -> None:
        keep = {TOMBSTONE_FILE, LOCK_FILE}
        # The state goes last so that a crash part-way leaves a run that still reads whole.
        entries = sorted(os.scandir(run_dir), key=lambda entry: entry.name == STATE_FILE)
        for entry in entries:
            if entry.name in keep:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        atomic_file.fsync_dir(run_dir)

    # -- heartbeats -------------------------------------------------------------------------

    def touch_heartbeat(self, run_id: str, attempt: int | None = None) -> None:
        """Mark the run alive: the heartbeat is its folder's mtime, which every write in the
        folder renews too, so it costs no file of its own.  An attempt that was taken over
        beats no more."""
        with contextlib.suppress(FileNotFoundError, RunGoneError, RunNotFoundError, RunStateUnreadableError):
            if attempt is not None and self.get(run_id).attempt != attempt:
                return
            os.utime(f"{self._root_str}/{run_id}")

    def heartbeat_age_s(self, run_id: str) -> float | None:
        try:
            return time.time() - os.stat(f"{self._root_str}/{run_id}").st_mtime
        except FileNotFoundError:
            return None
