"""Small helpers shared by the data loaders."""

from __future__ import annotations

import os
from pathlib import Path

from sketchrl.errors import DataError

PathLike = str | os.PathLike


def existing_file(path: PathLike) -> Path:
    """``path`` as a Path; DataError when it is not an existing file."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise DataError(f"{path} {what}; check the path (or fetch the asset first)")
    return path
