"""Run ids: the rule a client-chosen id must follow (it names a folder), and generated ids."""

from __future__ import annotations

import re
import secrets

from app.runs.run_state import utc_now

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RUN_ID_RULE = "1 to 128 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"


def new_run_id() -> str:
    """Timestamp prefix as in the contract, plus a random suffix unique within the second."""
    return utc_now().strftime("%Y%m%d_%H%M%S_") + secrets.token_hex(4)


def is_valid_run_id(run_id: str) -> bool:
    return RUN_ID_PATTERN.fullmatch(run_id) is not None
