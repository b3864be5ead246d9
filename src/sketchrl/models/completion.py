"""Completion: the model continues a drawing a person started.

Units: a model draws in *model units* = pixels / ``model.config.scale_factor`` (the pixels of
the 0-255 space of Quick, Draw!'s simplified drawings, which sketch-rnn was trained on).
:func:`complete_sketch` takes the partial drawing in either unit (``units``) and returns
completions in model units, like every sampled sketch (``samples.npz``).

Inputs (:func:`load_drawing`): a Quick, Draw! ``.ndjson`` (raw or simplified; pixels; also as an
asset name such as ``quickdraw:bird/simplified``), a
``samples.npz`` (model units), a sketch-rnn dataset ``.npz`` (its test split; pixels), or a
stroke-3 ``.json`` file: one drawing as a list of ``[dx, dy, pen_lifted]`` rows, or a list of
such drawings (model units unless told otherwise).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from sketchrl.data import load_ndjson_stroke3, load_sketches
from sketchrl.data.common import existing_file
from sketchrl.data.npz import npz_member_names
from sketchrl.errors import ConfigError, DataError
from sketchrl.models.mixture import Temperature, as_temperature
from sketchrl.models.sampling import sample_rollout
from sketchrl.models.sketch_rnn import SketchRNN
from sketchrl.strokes import as_stroke3, stroke3_to_stroke5

logger = logging.getLogger(__name__)

#: Units a partial drawing can be given in.
UNITS = ("model", "pixels")
#: Asset names (``quickdraw:<cat>/simplified`` or ``/raw``) are resolved like other assets.
QUICKDRAW_PREFIX = "quickdraw:"


@dataclasses.dataclass
class Completion:
    """Completions of one partial drawing.

    Attributes:
        sketches: stroke-3 float32 arrays in model units: the prefix rows, then the model's
            continuation.
        starts: per sketch, the row where the continuation starts (the prefix's row count).
        prefix: the partial drawing as given to the model (model units).
        temperature: how the continuations were sampled.
    """

    sketches: list[np.ndarray]
    starts: list[int]
    prefix: np.ndarray
    temperature: Temperature

    def continuations(self) -> list[np.ndarray]:
        """The model's rows only (each sketch from its ``starts`` row on)."""
        return [sketch[start:] for sketch, start in zip(self.sketches, self.starts, strict=True)]


def load_drawing(path: str | Path, index: int = 0, *, skip_bad: bool = False
                 ) -> tuple[np.ndarray, str]:
    """Drawing ``index`` of a file and its units (``"pixels"`` or ``"model"``).

    See the module docstring for the formats. DataError for a missing or unreadable file, an
    index out of range, or an empty drawing.
    """
    if str(path).startswith(QUICKDRAW_PREFIX):
        from sketchrl.assets import resolve

        path = resolve(str(path))
    path = existing_file(path)
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ConfigError(f"index {index!r}: use a drawing number >= 0")
    suffix = path.suffix.lower()
    if suffix == ".ndjson":
        drawings, units = load_ndjson_stroke3(path, skip_bad=skip_bad, limit=index + 1), "pixels"
    elif suffix == ".npz":
        samples = {"strokes", "lengths"} <= set(npz_member_names(path))
        drawings, units = load_sketches(path), ("model" if samples else "pixels")
    elif suffix == ".json":
        drawings, units = _load_json_drawings(path), "model"
    else:
        raise DataError(f"{path}: cannot read a drawing from a '{suffix}' file; use an .ndjson, "
                        "a samples .npz, a sketch-rnn .npz or a stroke-3 .json")
    if index >= len(drawings):
        count = f"{len(drawings)} drawing{'s' if len(drawings) != 1 else ''}"
        raise ConfigError(f"index {index} is out of range: {path} holds {count} "
                          f"(use 0..{len(drawings) - 1})")
    drawing = np.asarray(drawings[index], dtype=np.float32).reshape(-1, 3)
    if len(drawing) == 0:
        raise DataError(f"drawing {index} of {path} is empty; pick another index")
    return drawing, units


def _load_json_drawings(path: Path) -> list[np.ndarray]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a JSON file ({error})") from None
    if isinstance(content, list) and content and all(
            isinstance(row, list) and row and not isinstance(row[0], list) for row in content):
        content = [content]  # one drawing: a list of [dx, dy, pen] rows
    if not isinstance(content, list):
        raise DataError(f"{path}: expected a list of [dx, dy, pen_lifted] rows or a list of them")
    drawings = []
    for number, rows in enumerate(content):
        try:
            values = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(f"{path}: drawing {number} is not a list of [dx, dy, pen_lifted] "
                            "rows") from None
        drawings.append(values.reshape(0, 3) if values.size == 0 else
                        as_stroke3(values, what=f"{path} drawing {number}"))
    return drawings


def prepare_prefix(drawing: np.ndarray, model: SketchRNN, *, units: str = "model",
                   fraction: float = 1.0) -> np.ndarray:
    """The first ``fraction`` of the rows of ``drawing`` (at least one) in model units."""
    if units not in UNITS:
        raise ConfigError(f"units {units!r}: use one of {', '.join(UNITS)}")
    if not 0 < fraction <= 1:
        raise ConfigError(f"prefix fraction {fraction!r}: use a value in (0, 1]")
    drawing = as_stroke3(np.asarray(drawing, dtype=np.float32).reshape(-1, 3), what="drawing")
    if len(drawing) == 0:
        raise DataError("the partial drawing is empty: give at least one row")
    prefix = drawing[: max(1, math.ceil(fraction * len(drawing)))].copy()
    if units == "pixels":
        prefix[:, :2] /= model.config.scale_factor
    return prefix


def complete_sketch(
    model: SketchRNN,
    prefix: np.ndarray,
    n: int = 8,
    *,
    units: str = "model",
    temperature: float | Temperature = 0.5,
    seed: int | torch.Generator = 0,
    max_len: int | None = None,
    batch_size: int = 256,
    progress: bool = False,
) -> Completion:
    """``n`` completions of the partial drawing ``prefix`` (stroke-3 in ``units``).

    The prefix rows are fed through the decoder, then the model samples until it draws its
    end row or the sketch has ``max_len`` rows (default ``model.config.max_seq_len``; it
    includes the prefix). A VAE draws a fresh prior z per completion. Returns the completed
    sketches in model units and where each continuation starts.
    """
    prefix = prepare_prefix(prefix, model, units=units)
    temperature = as_temperature(temperature)
    max_len = model.config.max_seq_len if max_len is None else max_len
    if not isinstance(max_len, int) or max_len <= len(prefix):
        raise ConfigError(f"max_len={max_len!r} leaves no room after the {len(prefix)}-row "
                          f"prefix: use more than {len(prefix)} (or a shorter prefix)")
    if not isinstance(n, int) or n < 1 or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"n={n!r}, batch_size={batch_size!r}: use positive integers")
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    rows = torch.from_numpy(stroke3_to_stroke5(prefix)[: len(prefix)]).to(model.device)
    sketches: list[np.ndarray] = []
    with tqdm(total=n, desc=f"completing with {model.config.name}", unit="sketch",
              disable=not progress) as bar:
        while len(sketches) < n:
            count = min(batch_size, n - len(sketches))
            rollout = sample_rollout(model, count, temperature=temperature, max_len=max_len,
                                     generator=generator,
                                     prefix=rows.unsqueeze(0).expand(count, -1, -1))
            sketches.extend(rollout.to_stroke3())
            bar.update(count)
    logger.info("completed a %d-row drawing %d times with %s", len(prefix), n, model.config.name)
    return Completion(sketches=sketches, starts=[len(prefix)] * n, prefix=prefix,
                      temperature=temperature)
