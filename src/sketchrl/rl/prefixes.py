"""Real partial drawings to start episodes from (completion fine-tuning)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from sketchrl.errors import DataError
from sketchrl.strokes import stroke3_to_stroke5


def load_drawings(source: str) -> list[np.ndarray]:
    """Stroke-3 drawings (pixels) from a file (ndjson, samples.npz, sketch-rnn npz) or an asset
    name such as ``quickdraw:bird/simplified``."""
    from sketchrl.data import load_sketches

    path = Path(source).expanduser()
    if not path.exists() and ":" in source:
        from sketchrl.assets import resolve

        path = resolve(source, progress=False)
    drawings = [d for d in load_sketches(path) if len(d) >= 2]
    if not drawings:
        raise DataError(f"prefix_from={source!r}: no drawing with at least 2 rows")
    return drawings


class PrefixSource:
    """The first ``fraction`` of the rows of real drawings, in a model's units.

    Each group of a batch gets one drawing, drawn with the batch's generator.
    """

    def __init__(self, source: str, fraction: float, scale_factor: float) -> None:
        self.source, self.fraction = source, float(fraction)
        drawings = load_drawings(source)
        self.prefixes = [
            stroke3_to_stroke5(self.cut(d) / np.float32([scale_factor, scale_factor, 1.0]))[:-1]
            for d in drawings
        ]

    def cut(self, drawing: np.ndarray) -> np.ndarray:
        """The drawing's first ``ceil(fraction * rows)`` rows (at least one, never all)."""
        rows = min(max(1, math.ceil(self.fraction * len(drawing))), len(drawing) - 1)
        return np.asarray(drawing[:rows], dtype=np.float32)

    def __len__(self) -> int:
        return len(self.prefixes)

    def sample(self, groups: int, group_size: int, generator: torch.Generator,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(prefix (B, P, 5), lengths (B,))``: one drawing per group, repeated in its group."""
        picks = torch.randint(len(self.prefixes), (groups,), generator=generator,
                              device=generator.device).tolist()
        chosen = [self.prefixes[k] for k in picks]
        width = max(len(p) for p in chosen)
        padded = np.zeros((groups, width, 5), dtype=np.float32)
        for row, prefix in enumerate(chosen):
            padded[row, :len(prefix)] = prefix
        lengths = torch.tensor([len(p) for p in chosen], device=device)
        prefix = torch.from_numpy(padded).to(device)
        return (prefix.repeat_interleave(group_size, dim=0),
                lengths.repeat_interleave(group_size, dim=0))
