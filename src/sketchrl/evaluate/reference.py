"""Reference features: real Quick, Draw! drawings of one category through the FID pipeline.

Only 28x28 ``numpy_bitmap`` drawings exist in quantity, so both sides go through the same
pipeline: real bitmaps (ink 255 on 0) and generated sketches rendered Quick, Draw!-style
(``QUICKDRAW_OPTIONS``, ink 1 on 0) become black ink on white paper in ``[0, 1]``
(:func:`ink_to_paper`) before the Inception network. Features of the first
``min(n, available)`` real drawings are cached under ``sketchrl_home()/features/``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sketchrl.errors import ConfigError

logger = logging.getLogger(__name__)

#: Names the real-bitmap conversion; part of the cache key.
REFERENCE_PIPELINE = "qd28-ink-inverted-rgb"
REFERENCE_PREFIX = "quickdraw:"

FeatureExtractor = Callable[..., np.ndarray]


@dataclasses.dataclass
class ReferenceFeatures:
    """Features of the real drawings used as the reference set."""

    category: str
    features: np.ndarray
    available: int
    path: Path

    @property
    def count(self) -> int:
        return len(self.features)


def parse_reference(reference: str) -> str:
    """``quickdraw:<category>`` (or ``.../numpy_bitmap``) -> the category."""
    category = reference[len(REFERENCE_PREFIX):] if reference.startswith(REFERENCE_PREFIX) else ""
    category = category.removesuffix("/numpy_bitmap").strip()
    if not category or "/" in category:
        raise ConfigError(
            f"reference {reference!r} is not understood; use quickdraw:<category>, "
            "e.g. quickdraw:bird (real 28x28 Quick, Draw! bitmaps of that category)"
        )
    return category


def ink_to_paper(ink: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` ink = 1 on 0 -> ``(B, 3, H, W)`` black ink on white paper in [0, 1]."""
    if ink.ndim != 4 or ink.shape[1] != 1:
        raise ValueError(f"expected ink images (B, 1, H, W), got shape {tuple(ink.shape)}")
    return (1.0 - ink.float().clamp(0.0, 1.0)).expand(-1, 3, -1, -1)


def bitmaps_to_ink(bitmaps: np.ndarray) -> torch.Tensor:
    """``(N, 28, 28)`` uint8 numpy_bitmap rows (255 = ink) -> ``(N, 1, 28, 28)`` float ink."""
    return torch.from_numpy(np.asarray(bitmaps, dtype=np.float32) / 255.0).unsqueeze(1)


def load_reference_bitmaps(reference: str) -> tuple[np.ndarray, Path]:
    """All real bitmaps of the reference category and the file they came from."""
    from sketchrl.assets import resolve
    from sketchrl.data import load_bitmaps

    category = parse_reference(reference)
    path = resolve(f"quickdraw:{category}/numpy_bitmap")
    return load_bitmaps(path), path


def feature_cache_path(category: str, count: int, pipeline: str, source: Path) -> Path:
    """``sketchrl_home()/features/<category>-n<count>-<pipeline>-<file hash>.npy``."""
    from sketchrl.assets import file_digest, sketchrl_home

    safe_category = category.replace(" ", "_").replace("/", "_")
    name = f"{safe_category}-n{count}-{pipeline}-{REFERENCE_PIPELINE}-{file_digest(source)}.npy"
    return Path(sketchrl_home()) / "features" / name


def reference_features(
    reference: str,
    n: int,
    extractor: FeatureExtractor,
    *,
    progress: bool = False,
    cache: bool = True,
) -> ReferenceFeatures:
    """Features of the first ``min(n, available)`` real drawings of ``reference``.

    ``extractor(images (B, 3, 28, 28) in [0, 1], progress=...) -> (B, D)``; it is cached
    only when it has a ``name`` (the pipeline's identity, e.g. the Inception extractor's).
    """
    if n < 1:
        raise ConfigError(f"n={n}: ask for at least one reference drawing")
    category = parse_reference(reference)
    bitmaps, path = load_reference_bitmaps(reference)
    count = min(n, len(bitmaps))
    pipeline = getattr(extractor, "name", None)
    cache_file = feature_cache_path(category, count, pipeline, path) if cache and pipeline else None
    if cache_file is not None and cache_file.is_file():
        logger.info("reference features from cache %s", cache_file)
        features = np.load(cache_file)
    else:
        images = ink_to_paper(bitmaps_to_ink(bitmaps[:count]))
        features = np.asarray(extractor(images, progress=progress), dtype=np.float64)
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            partial = cache_file.with_suffix(f".{os.getpid()}.partial.npy")
            np.save(partial, features)
            partial.replace(cache_file)
    return ReferenceFeatures(category, features, available=len(bitmaps), path=path)
