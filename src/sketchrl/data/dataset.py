"""``StrokeDataset``: stroke-3 sketches served as normalised, padded stroke-5 for training."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from sketchrl.errors import ConfigError, DataError
from sketchrl.strokes import (
    as_stroke3,
    augment_strokes,
    normalize,
    random_scale,
    stroke3_to_stroke5,
)
from sketchrl.strokes import scale_factor as compute_scale_factor

__all__ = ["StrokeDataset"]

logger = logging.getLogger(__name__)


class StrokeDataset(Dataset):
    """Sketches as ``(stroke5 float32 (max_seq_len, 5), length int)`` pairs, Magenta style.

    - Sketches with more than ``max_seq_len`` rows are dropped (``num_dropped`` says how many).
    - Offsets are divided by ``scale_factor`` (default: the std of the kept sketches' offsets,
      as Magenta computes it); the value is kept in ``.scale_factor`` (pixels per model unit).
    - ``stroke5`` has no start token; ``length`` is the number of stroke-3 rows, so row
      ``length`` is the first end row ``[0, 0, 0, 0, 1]`` (absent when ``length == max_seq_len``).
    - Augmentations, applied on every fetch only when asked (as Magenta's ``get_batch``):
      ``random_scale_factor`` stretches x and y by factors in ``[1 - f, 1 + f]``, then
      ``augment_stroke_prob`` drops points inside strokes (``length`` is measured after it).
    - ``seed`` makes the augmentations reproducible. Inside ``DataLoader`` workers each worker
      reseeds from ``(seed, worker seed)`` so workers never repeat one another (seed torch to
      make those reproducible too).

    The default ``DataLoader`` collate turns a batch into ``(B, max_seq_len, 5)`` and ``(B,)``.
    """

    def __init__(
        self,
        sketches: Sequence[np.ndarray],
        max_seq_len: int,
        *,
        scale_factor: float | None = None,
        random_scale_factor: float = 0.0,
        augment_stroke_prob: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if max_seq_len < 1:
            raise ConfigError(f"max_seq_len must be at least 1, got {max_seq_len}")
        if not 0.0 <= random_scale_factor < 1.0:
            raise ConfigError(f"random_scale_factor must be in [0, 1), got {random_scale_factor}")
        if not 0.0 <= augment_stroke_prob <= 1.0:
            raise ConfigError(f"augment_stroke_prob must be in [0, 1], got {augment_stroke_prob}")
        if scale_factor is not None and not scale_factor > 0:
            raise ConfigError(f"scale_factor must be positive, got {scale_factor}")
        arrays = [as_stroke3(sketch, what=f"sketch {i}") for i, sketch in enumerate(sketches)]
        kept = [sketch for sketch in arrays if len(sketch) <= max_seq_len]
        self.num_dropped = len(arrays) - len(kept)
        if not kept:
            raise DataError(
                f"none of the {len(arrays)} sketches has at most max_seq_len={max_seq_len} "
                "rows; raise max_seq_len or load more data"
            )
        if self.num_dropped:
            logger.info(
                "dropped %d of %d sketches longer than max_seq_len=%d",
                self.num_dropped,
                len(arrays),
                max_seq_len,
            )
        self.max_seq_len = int(max_seq_len)
        self.scale_factor = (
            compute_scale_factor(kept) if scale_factor is None else float(scale_factor)
        )
        self.sketches: list[np.ndarray] = normalize(kept, self.scale_factor)
        self.random_scale_factor = float(random_scale_factor)
        self.augment_stroke_prob = float(augment_stroke_prob)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._rng_worker: int | None = None

    def __len__(self) -> int:
        return len(self.sketches)

    def _generator(self) -> np.random.Generator:
        worker = get_worker_info()
        if worker is not None and self._rng_worker != worker.seed:
            entropy = [worker.seed] if self.seed is None else [self.seed, worker.seed]
            self._rng = np.random.default_rng(entropy)
            self._rng_worker = worker.seed
        return self._rng

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sketch = self.sketches[index]
        if self.random_scale_factor > 0.0:
            sketch = random_scale(sketch, self.random_scale_factor, self._generator())
        if self.augment_stroke_prob > 0.0:
            sketch = augment_strokes(sketch, self.augment_stroke_prob, self._generator())
        stroke5 = stroke3_to_stroke5(sketch, self.max_seq_len)
        return torch.from_numpy(stroke5), len(sketch)
