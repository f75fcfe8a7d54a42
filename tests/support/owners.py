"""Owners for tests: a process that has certainly exited, as a crashed server would be."""

from __future__ import annotations

import socket
import subprocess
import sys

from app.runs.run_owner import process_start_ticks
from app.runs.run_state import Owner


def dead_owner() -> Owner:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process_start_ticks(process.pid) or 1.0
    process.wait()
    return Owner(host=socket.gethostname(), pid=process.pid, process_started=started)
