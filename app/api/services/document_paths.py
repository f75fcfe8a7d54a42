"""Confinement of `markdown_path`: every documents folder lies inside the configured root."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from app.api.services.errors import InvalidRequestError

DEFAULT_MARKDOWN_PATH = "documents"


def resolve_markdown_path(root: Path, value: object) -> Path:
    """The real folder `value` names inside `root`, or InvalidRequestError saying what is wrong."""
    raw = DEFAULT_MARKDOWN_PATH if value is None else value
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidRequestError("markdown_path must be a non-empty relative path.")
    if "\x00" in raw:
        raise InvalidRequestError("markdown_path must not contain NUL characters.")
    relative = PurePosixPath(raw.replace("\\", "/"))
    if relative.is_absolute() or (len(raw) > 1 and raw[1] == ":"):
        raise InvalidRequestError(
            f"markdown_path '{raw}' is absolute; give a path relative to the documents root."
        )
    if ".." in relative.parts:
        raise InvalidRequestError(f"markdown_path '{raw}' must not contain '..'.")
    base = root.resolve()
    candidate = base.joinpath(*relative.parts)
    if not candidate.exists():
        raise InvalidRequestError(f"markdown_path '{raw}' does not exist under the documents root.")
    resolved = candidate.resolve()
    if not resolved.is_relative_to(base):
        raise InvalidRequestError(
            f"markdown_path '{raw}' leads outside the documents root (through a symbolic link)."
        )
    if not resolved.is_dir():
        raise InvalidRequestError(f"markdown_path '{raw}' is not a folder.")
    return resolved
