"""Confinement of `markdown_path`: every documents folder lies inside the configured root.

A documents folder is never the output root (nor inside it, nor around it) and never a hidden
folder, whatever the settings: otherwise runs would quote other runs' answers as evidence.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from app.runs.errors import DocumentsForbiddenError, InvalidRequestError

DEFAULT_MARKDOWN_PATH = "documents"
MAX_MARKDOWN_PATH = 1024


def resolve_markdown_path(
    root: Path, value: object, excluded: Path | None = None, allowed: Sequence[str] | None = None
) -> Path:
    """The real folder `value` names inside `root`, or InvalidRequestError saying what is wrong.
    With `allowed` (an API key's folders, relative to `root`), the folder must lie in one of
    them, compared by real path so that no link or spelling gets around it."""
    raw = DEFAULT_MARKDOWN_PATH if value is None else value
    if not isinstance(raw, str):
        raise InvalidRequestError("markdown_path must be a non-empty relative path.")
    base = _real_root(str(root))
    resolved = _existing_folder(base, _relative_parts(raw), raw)
    if not _inside(resolved, base):
        raise InvalidRequestError(
            f"markdown_path '{raw}' leads outside the documents root (through a symbolic link)."
        )
    if excluded is not None:
        output = _real_root(str(excluded))
        if _inside(resolved, output) or _inside(output, resolved):
            raise InvalidRequestError(
                f"markdown_path '{raw}' holds run outputs; choose a folder of documents only."
            )
    if allowed is not None and not any(_inside(resolved, _allowed_folder(base, a)) for a in allowed):
        raise DocumentsForbiddenError(raw)
    return _path(resolved)


# Every run names its documents folder twice (accept, execute), nearly always the same few:
# the checks on the words are worth remembering, the file system is asked each time.
@functools.lru_cache(maxsize=256)
def _relative_parts(raw: str) -> tuple[str, ...]:
    """The folder names of a relative `raw` path, or InvalidRequestError saying what is wrong."""
    if not raw.strip():
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
    return relative.parts


@functools.lru_cache(maxsize=256)
def _path(resolved: str) -> Path:
    return Path(resolved)


def _allowed_folder(base: str, folder: str) -> str:
    relative = PurePosixPath(folder.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        return "\x00"  # names nothing: a key's folders are checked when it is made, this is a backstop
    return os.path.realpath(os.path.join(base, *relative.parts))


def _existing_folder(base: str, parts: tuple[str, ...], raw: str) -> str:
    # One lstat(2) per component below the (already real) root: a path without symbolic links
    # is its own real path, and only one with a link pays for realpath.  This runs twice for
    # every run (accept, execute).  The root itself is looked at only when it is the folder
    # asked for: a missing root fails the first component's lstat anyway.
    path = base
    try:
        mode = os.stat(base).st_mode if not parts else 0
        for part in parts:
            path = f"{path}/{part}"
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                path = os.path.realpath(os.path.join(base, *parts), strict=True)
                mode = os.stat(path).st_mode
                break
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidRequestError(f"markdown_path '{raw}' does not exist under the documents root.") from None
    except OSError as exc:  # a name too long for the file system, a loop of links, ...
        raise InvalidRequestError(f"markdown_path '{raw}' cannot be used: {exc.strerror}.") from None
    if not stat.S_ISDIR(mode):
        raise InvalidRequestError(f"markdown_path '{raw}' is not a folder.")
    return path


@functools.lru_cache(maxsize=64)
def _real_root(path: str) -> str:
    """A configured root, resolved once: what it named at start-up is what stays allowed."""
    return os.path.realpath(path)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")
