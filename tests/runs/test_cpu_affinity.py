"""pin_cpu: a process's threads on one CPU of their own, spread over CPUs across processes.

Pinning is per process and for good, so every case runs in a child process: the test runner
itself is never pinned.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.server import REPO_ROOT, uvicorn_server

ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
pytestmark = pytest.mark.skipif(len(ALLOWED) < 2, reason="pinning needs a process allowed on 2+ CPUs")

# A thread started before pinning, one started after by that early thread, and the answer.
CHILD = """
import json, os, sys, threading
from pathlib import Path
from app.runs.cpu_affinity import pin_to_one_cpu

pinned, started, done = threading.Event(), threading.Event(), threading.Event()
threads = []

def early():
    pinned.wait()
    later = threading.Thread(target=done.wait, daemon=True)
    later.start()
    threads.append(later)
    started.set()
    done.wait()

first = threading.Thread(target=early, daemon=True)
first.start()
cpu = pin_to_one_cpu(Path(sys.argv[1]))
again = pin_to_one_cpu(Path(sys.argv[1]))
pinned.set()
started.wait()
alive = [threading.main_thread(), first, *threads]
print(json.dumps({
    "cpu": cpu,
    "again": again,
    "threads": [sorted(os.sched_getaffinity(t.native_id)) for t in alive],
}))
done.set()
"""


def pin_in_child(lock_dir: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(lock_dir)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


@contextmanager
def held(lock_dir: Path, cpus: list[int]) -> Iterator[None]:
    """This process holds those CPUs' locks, as another server process would."""
    lock_dir.mkdir(exist_ok=True)
    fds = [os.open(lock_dir / f"cpu-{cpu}.lock", os.O_RDWR | os.O_CREAT) for cpu in cpus]
    try:
        for fd in fds:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        for fd in fds:
            os.close(fd)


def test_every_thread_moves_to_one_cpu_with_those_it_starts_later(tmp_path: Path) -> None:
    answer = pin_in_child(tmp_path / "locks")
    cpu = answer["cpu"]
    assert cpu in ALLOWED
    assert answer["again"] == cpu
    assert answer["threads"] == [[cpu]] * 3


def test_a_cpu_another_process_holds_is_left_to_it(tmp_path: Path) -> None:
    with held(tmp_path / "locks", ALLOWED[:1]):
        answer = pin_in_child(tmp_path / "locks")
    assert answer["cpu"] in ALLOWED[1:]
    assert answer["threads"] == [[answer["cpu"]]] * 3


def test_a_process_that_finds_every_cpu_taken_stays_unpinned(tmp_path: Path) -> None:
    with held(tmp_path / "locks", ALLOWED):
        answer = pin_in_child(tmp_path / "locks")
    assert answer["cpu"] is None
    assert answer["threads"] == [ALLOWED] * 3


def task_cpus(pid: int) -> dict[int, list[int]]:
    """Each thread of a process, with the CPUs it may run on."""
    cpus = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread that just ended
            status = (task / "status").read_text()
            allowed = next(line for line in status.splitlines() if line.startswith("Cpus_allowed_list"))
            cpus[int(task.name)] = parse_list(allowed.split(":", 1)[1].strip())
    return cpus


def finish_runs(url: str, count: int) -> None:
    """Runs through the whole lifecycle: the executor and the store writer start threads on demand."""
    body = {"question": "Solar?", "markdown_path": "documents"}
    run_ids = [httpx.post(f"{url}/api/v1/runs", json=body, timeout=30).json()["run_id"] for _ in range(count)]
    deadline = time.monotonic() + 60
    for run_id in run_ids:
        while httpx.get(f"{url}/api/v1/runs/{run_id}/status").json()["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, "the runs never finished"
            time.sleep(0.05)


def test_a_server_with_pin_cpu_runs_every_thread_on_one_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "note.md").write_text("# Note\n\nSolar subsidies fund rooftop panels.\n")
    # The server's lock folder goes under TMPDIR: nothing else on the machine competes for it.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with uvicorn_server(tmp_path, pin_cpu="true") as server:
        finish_runs(server.url, 3)
        cpus = task_cpus(server.process.pid)
    assert len(cpus) > 3
    assert len({tuple(allowed) for allowed in cpus.values()}) == 1
    assert next(iter(cpus.values()))[0] in ALLOWED
    assert len(next(iter(cpus.values()))) == 1
    assert (tmp_path / f"runlane-cpu-{os.getuid()}").is_dir()


def test_a_server_with_pin_cpu_off_leaves_its_threads_free(tmp_path: Path) -> None:
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "note.md").write_text("# Note\n\nSolar subsidies fund rooftop panels.\n")
    with uvicorn_server(tmp_path, pin_cpu="false") as server:
        finish_runs(server.url, 3)
        cpus = task_cpus(server.process.pid)
    assert len(cpus) > 3
    assert all(allowed == ALLOWED for allowed in cpus.values())


def parse_list(value: str) -> list[int]:
    """`0-1,3` -> [0, 1, 3]."""
    numbers: list[int] = []
    for part in value.split(","):
        low, _, high = part.partition("-")
        numbers += range(int(low), int(high or low) + 1)
    return numbers
