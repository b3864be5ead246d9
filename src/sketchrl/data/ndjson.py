"""Quick, Draw! ``.ndjson`` files (raw and simplified): one JSON drawing per line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketchrl.data.common import PathLike, existing_file
from sketchrl.errors import DataError
from sketchrl.strokes import drawing_to_stroke3, is_raw_drawing

__all__ = ["NdjsonDrawings", "iter_ndjson", "load_ndjson", "load_ndjson_stroke3"]

logger = logging.getLogger(__name__)


@dataclass
class NdjsonDrawings:
    """The drawings of an ndjson file (dicts with at least ``word`` and ``drawing``)."""

    drawings: list[dict] = field(default_factory=list)
    skipped: int = 0  # bad lines skipped with ``skip_bad=True``


class _BadLine(ValueError):
    """A line that is not a valid drawing (the message says why)."""


def _check_drawing(record: object) -> dict:
    """Return ``record`` if it is a drawing dict of the documented shape, else raise _BadLine."""
    if not isinstance(record, dict):
        raise _BadLine(f"a JSON {type(record).__name__}, not an object with a 'drawing' key")
    if "drawing" not in record:
        raise _BadLine("missing the 'drawing' key")
    drawing = record["drawing"]
    if not isinstance(drawing, list) or not drawing:
        raise _BadLine("'drawing' is not a non-empty list of strokes")
    for index, stroke in enumerate(drawing):
        try:
            values = np.asarray(stroke, dtype=np.float64)
        except (TypeError, ValueError):
            raise _BadLine(
                f"stroke {index} of 'drawing' is not [xs, ys] or [xs, ys, ts] of equal length"
            ) from None
        if values.ndim != 2 or values.shape[0] not in (2, 3) or values.shape[1] == 0:
            raise _BadLine(
                f"stroke {index} of 'drawing' has shape {values.shape}; expected (2 or 3, k>0)"
            )
        if not np.isfinite(values).all():
            raise _BadLine(f"stroke {index} of 'drawing' has non-finite values")
    return record


def iter_ndjson(
    path: PathLike, *, skip_bad: bool = False, counter: list[int] | None = None
) -> Iterator[dict]:
    """Yield the drawings of an ndjson file one by one, validating each line.

    A bad line (not JSON, e.g. a truncated last line; no ``drawing`` key; strokes of the wrong
    shape) raises DataError naming the file and line, or with ``skip_bad=True`` is skipped and
    counted in ``counter[0]``. Blank lines are ignored. A missing ``word`` is set to the file's
    stem.
    """
    path = existing_file(path)
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise _BadLine(f"not valid JSON ({exc.msg}; truncated file?)") from None
                drawing = _check_drawing(record)
            except _BadLine as exc:
                if not skip_bad:
                    raise DataError(
                        f"{path}, line {number}: {exc}; fix or remove the line, or skip bad "
                        "lines with --skip-bad (skip_bad=True)"
                    ) from None
                if counter is not None:
                    counter[0] += 1
                continue
            drawing.setdefault("word", path.stem)
            yield drawing


def _warn_skipped(path: PathLike, skipped: int) -> None:
    if skipped:
        logger.warning("%s: skipped %d bad line(s)", path, skipped)


def load_ndjson(path: PathLike, *, skip_bad: bool = False) -> NdjsonDrawings:
    """Read every drawing of a raw or simplified Quick, Draw! ndjson file.

    Raises DataError for a missing file, a bad line (see :func:`iter_ndjson`) or a file with
    no drawing at all.
    """
    counter = [0]
    drawings = list(iter_ndjson(path, skip_bad=skip_bad, counter=counter))
    _warn_skipped(path, counter[0])
    if not drawings:
        skipped = f" ({counter[0]} bad line(s) skipped)" if counter[0] else ""
        raise DataError(f"{Path(path)} holds no drawing{skipped}; expected one JSON per line")
    return NdjsonDrawings(drawings=drawings, skipped=counter[0])


def load_ndjson_stroke3(
    path: PathLike,
    *,
    skip_bad: bool = False,
    raw: bool | None = None,
    limit: int | None = None,
) -> list[np.ndarray]:
    """Read an ndjson file as float32 stroke-3 sketches (in the 0-255 simplified pixel space).

    ``raw=None`` detects each drawing's kind from its timestamps (``[xs, ys, ts]`` strokes are
    raw and go through the official simplification; see :func:`drawing_to_stroke3`);
    ``raw=True/False`` forces it. ``limit`` stops after that many drawings.
    """
    if limit is not None and limit < 1:
        raise DataError(f"limit must be a positive number of drawings, got {limit}")
    counter = [0]
    sketches = []
    for record in iter_ndjson(path, skip_bad=skip_bad, counter=counter):
        drawing = record["drawing"]
        is_raw = is_raw_drawing(drawing) if raw is None else raw
        sketches.append(drawing_to_stroke3(drawing, raw=is_raw))
        if limit is not None and len(sketches) >= limit:
            break
    _warn_skipped(path, counter[0])
    if not sketches:
        raise DataError(f"{Path(path)} holds no drawing; expected one JSON drawing per line")
    return sketches
