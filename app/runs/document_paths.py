"""Confinement of `markdown_path`: every documents folder lies inside the configured root.

A documents folder is never the output root (nor inside it, nor around it) and never a hidden
folder, whatever the settings: otherwise runs would quote other runs' answers as evidence.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from app.runs.errors import InvalidRequestError

DEFAULT_MARKDOWN_PATH = "documents"
MAX_MARKDOWN_PATH = 1024


def resolve_markdown_path(root: Path, value: object, excluded: Path | None = None) -> Path:
    """The real folder `value` names inside `root`, or InvalidRequestError saying what is wrong."""
    raw = DEFAULT_MARKDOWN_PATH if value is None else value
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidRequestError("markdown_path must be a non-empty relative path.")
    if "\x00" in raw or len(raw) > MAX_MARKDOWN_PATH:
        raise InvalidRequestError(
            f"markdown_path must be at most {MAX_MARKDOWN_PATH} characters, without NUL characters."
        )
    relative = PurePosixPath(raw.replace("\\", "/"))
    if relative.is_absolute() or (len(raw) > 1 and raw[1] == ":"):
        raise InvalidRequestError(
            f"markdown_path '{raw}' is absolute; give a path relative to the documents root."
        )
    if ".." in relative.parts:
        raise InvalidRequestError(f"markdown_path '{raw}' must not contain '..'.")
    if any(part.startswith(".") for part in relative.parts if part != "."):
        raise InvalidRequestError(f"markdown_path '{raw}' names a hidden folder.")
    base = root.resolve()
    try:
        resolved = _existing_folder(base.joinpath(*relative.parts), raw)
    except OSError as exc:  # a name too long for the file system, a loop of links, ...
        raise InvalidRequestError(f"markdown_path '{raw}' cannot be used: {exc.strerror}.") from None
    if not resolved.is_relative_to(base):
        raise InvalidRequestError(
            f"markdown_path '{raw}' leads outside the documents root (through a symbolic link)."
        )
    if excluded is not None:
        output = excluded.resolve()
        if resolved.is_relative_to(output) or output.is_relative_to(resolved):
            raise InvalidRequestError(
                f"markdown_path '{raw}' holds run outputs; choose a folder of documents only."
            )
    return resolved


def _existing_folder(candidate: Path, raw: str) -> Path:
    if not candidate.exists():
        raise InvalidRequestError(f"markdown_path '{raw}' does not exist under the documents root.")
    resolved = candidate.resolve(strict=True)
    if not resolved.is_dir():
        raise InvalidRequestError(f"markdown_path '{raw}' is not a folder.")
    return resolved
