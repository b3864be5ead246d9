"""``samples.npz``: generated sketches as concatenated stroke-3 rows plus per-sketch lengths."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sketchrl.data.common import PathLike, existing_file
from sketchrl.errors import DataError
from sketchrl.strokes import as_stroke3

__all__ = ["load_samples", "save_samples"]


def save_samples(path: PathLike, sketches: Sequence[np.ndarray]) -> Path:
    """Write ``sketches`` (stroke-3, model units) to ``path`` exactly (no suffix is added).

    The file holds ``strokes`` (all rows concatenated, float32 ``(R, 3)``) and ``lengths``
    (int64 rows per sketch). Parent directories are created. Returns the path.
    """
    path = Path(path)
    arrays = [as_stroke3(sketch, what=f"sketch {index}") for index, sketch in enumerate(sketches)]
    lengths = np.array([len(sketch) for sketch in arrays], dtype=np.int64)
    strokes = np.concatenate(arrays) if arrays else np.zeros((0, 3), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez(handle, strokes=strokes.astype(np.float32), lengths=lengths)
    return path


def load_samples(path: PathLike) -> list[np.ndarray]:
    """Read a ``samples.npz`` back as a list of float32 stroke-3 arrays; validates it."""
    path = existing_file(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"strokes", "lengths"} - set(archive.files)
            if missing:
                raise DataError(
                    f"{path} is not a samples file: missing {sorted(missing)}; expected "
                    "'strokes' and 'lengths' (written by save_samples)"
                )
            strokes, lengths = archive["strokes"], archive["lengths"]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable samples .npz ({exc})") from exc
    strokes = as_stroke3(strokes, what=f"{path} 'strokes'")
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer) or (lengths < 0).any():
        raise DataError(f"{path}: 'lengths' must be a 1-D array of non-negative integers")
    if int(lengths.sum()) != len(strokes):
        raise DataError(
            f"{path}: 'lengths' add up to {int(lengths.sum())} rows but 'strokes' has "
            f"{len(strokes)}; the file is corrupt, write it again with save_samples"
        )
    if len(lengths) == 0:
        return []
    return [part.copy() for part in np.split(strokes, np.cumsum(lengths)[:-1])]
