"""Small helpers shared by the data loaders and the commands that write folders."""

from __future__ import annotations

import os
from pathlib import Path

from sketchrl.errors import DataError

PathLike = str | os.PathLike

#: Longest file or folder name most file systems accept (bytes).
NAME_MAX = 255


def existing_file(path: PathLike) -> Path:
    """``path`` as a Path; DataError when it is not an existing file."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise DataError(f"{path} {what}; check the path (or fetch the asset first)")
    return path


def _check_writable(path: Path, option: str, fix: str) -> None:
    if path.exists() and not path.is_dir():
        raise DataError(f"{option} {path} exists and is not a folder; {fix}")
    existing, missing = path.absolute(), False
    while not existing.exists() and existing.parent != existing:
        existing, missing = existing.parent, True
    if not existing.is_dir():
        raise DataError(f"{option} {path}: {existing} is a file, not a folder; {fix}")
    if hasattr(os, "statvfs") and os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise DataError(f"{option} {path}: {existing} is on a read-only file system; {fix}")
    if not os.access(existing, os.W_OK | os.X_OK):
        verb = "create folders in" if missing else "write into"
        raise DataError(f"{option} {path}: no permission to {verb} {existing}; {fix}")


def writable_directory(path: PathLike, option: str = "--out") -> Path:
    """``path`` as a Path, after checking, without creating anything, that it is a folder this
    process can write into or can create; DataError naming ``option`` otherwise.

    Call it before any slow work so that a bad output folder never costs the work.
    """
    path = Path(path).expanduser()
    fix = f"choose another {option}" if option else "choose another folder"
    too_long = [name for name in path.parts if len(os.fsencode(name)) > NAME_MAX]
    if too_long:
        raise DataError(
            f"{option} {path}: the name {too_long[0][:40]!r}... is longer than {NAME_MAX} bytes; "
            f"{fix}"
        )
    try:
        _check_writable(path, option, fix)
    except OSError as error:  # e.g. a path too long for the system, or a broken mount
        raise DataError(f"{option} {path}: {error.strerror or error}; {fix}") from None
    return path
