"""The ``update`` / ``compute`` / ``reset`` metric over kept real and generated feature sets."""

from __future__ import annotations

from typing import Any

import numpy as np

from sketchrl.errors import DataError


class FeatureSetMetric:
    """Keeps every feature vector given to ``update``; ``compute`` hands both sets to
    :meth:`score`. Like :class:`~sketchrl.evaluate.fid.FID`, :meth:`reset` keeps the real
    features unless ``reset_real_features``, so one reference serves many generated sets."""

    #: Name in the error raised when a side is missing.
    name = "the metric"

    def __init__(self, reset_real_features: bool = False) -> None:
        self.reset_real_features = reset_real_features
        self.real: list[np.ndarray] = []
        self.fake: list[np.ndarray] = []

    def update(self, *, real: np.ndarray | None = None, fake: np.ndarray | None = None) -> None:
        if real is not None:
            self.real.append(np.asarray(real, dtype=np.float64))
        if fake is not None:
            self.fake.append(np.asarray(fake, dtype=np.float64))

    def compute(self) -> dict[str, Any]:
        if not self.real or not self.fake:
            raise DataError(f"{self.name} needs both real and fake features; call update() "
                            "first")
        return self.score(np.concatenate(self.real), np.concatenate(self.fake))

    def score(self, real: np.ndarray, fake: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def reset(self) -> None:
        self.fake = []
        if self.reset_real_features:
            self.real = []
