"""Classifier reward: the probability of a category under a Quick, Draw! classifier."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from sketchrl.devices import resolve_device
from sketchrl.errors import ConfigError
from sketchrl.render import QUICKDRAW_OPTIONS
from sketchrl.rewards.base import Reward


class ClassifierReward(Reward):
    """``P(category | 28x28 render)`` under a classifier trained by ``sketchrl classifier``.

    Sketches are drawn like Quick, Draw!'s ``numpy_bitmap`` files (``QUICKDRAW_OPTIONS``),
    the classifier's training data. Train the reward classifier on the ``reward`` subset, so
    that an evaluation classifier trained on the ``eval`` subset stays independent.
    """

    name: ClassVar[str] = "classifier"

    def __init__(
        self,
        model: str | None = None,
        category: str = "bird",
        cap: float = 1.0,
        device: str | torch.device | None = None,
    ) -> None:
        """
        Args:
            model: directory written by ``sketchrl classifier train``.
            category: the rewarded category; one of the classifier's (default: the offline
                experiment's bird).
            cap: the reward is ``min(P(category), cap)``, in (0, 1]: below 1, every sketch the
                classifier is confident enough about scores the same, so the policy is pushed
                to fix the ones it does not recognise rather than toward the classifier's
                most confident (and least varied) drawings. 1 (default): the probability.
            device: where the classifier runs (None = cpu).
        """
        from sketchrl.classifiers import load_classifier

        if not model:
            raise ConfigError(
                "the classifier reward needs model=DIR: train one with `sketchrl classifier "
                "train --arch cnn --subset reward --out DIR`, then --set reward.model=DIR"
            )
        if not 0.0 < cap <= 1.0:
            raise ConfigError(f"the classifier reward's cap must be in (0, 1], got {cap}")
        self.cap = float(cap)
        self.device = resolve_device(device)
        self.render_options = QUICKDRAW_OPTIONS
        self.classifier = load_classifier(model, device=self.device)
        if category not in self.classifier.categories:
            raise ConfigError(
                f"category {category!r} is not one of the classifier's categories "
                f"({', '.join(self.classifier.categories)})"
            )
        self.category = category
        self.category_index = self.classifier.categories.index(category)
        self.ink = 1.0 if self.render_options.ink_on_black else 0.0

    def __call__(self, images: torch.Tensor, sketches: Sequence[np.ndarray]) -> torch.Tensor:
        probabilities = self.classifier.predict_proba(self.check_images(images), ink=self.ink)
        return probabilities[:, self.category_index].float().clamp(max=self.cap).contiguous()
