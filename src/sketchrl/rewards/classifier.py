"""Classifier reward: the probability of a category under a Quick, Draw! classifier (or an
ensemble of them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

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
    that an evaluation classifier trained on the ``eval`` subset stays independent. With an
    ``ensemble`` (more classifiers, e.g. trained with other seeds) the probability is their mean
    or, with ``aggregate = "min"``, the least sure of them: a drawing that fools one network
    scores only what the others give it (reward-model ensembles against over-optimisation).
    """

    name: ClassVar[str] = "classifier"

    def __init__(
        self,
        model: str | None = None,
        category: str = "bird",
        cap: float = 1.0,
        ensemble: Sequence[str] = (),
        aggregate: Literal["mean", "min"] = "mean",
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
            ensemble: more classifier directories scored alongside ``model``; each must know
                ``category``. Empty (default): ``model`` alone.
            aggregate: how the ensemble's probabilities combine: ``"mean"`` (default) or
                ``"min"`` (the least sure classifier).
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
        if aggregate not in ("mean", "min"):
            raise ConfigError(
                f"the classifier reward's aggregate must be mean or min, got {aggregate!r}"
            )
        self.cap = float(cap)
        self.aggregate = aggregate
        self.device = resolve_device(device)
        self.render_options = QUICKDRAW_OPTIONS
        self.category = category
        self.classifiers, self.category_indices = [], []
        for directory in [model, *ensemble]:
            classifier = load_classifier(directory, device=self.device)
            if category not in classifier.categories:
                raise ConfigError(
                    f"category {category!r} is not one of the categories of classifier "
                    f"{directory} ({', '.join(classifier.categories)})"
                )
            self.classifiers.append(classifier)
            self.category_indices.append(classifier.categories.index(category))
        self.ink = 1.0 if self.render_options.ink_on_black else 0.0

    def __call__(self, images: torch.Tensor, sketches: Sequence[np.ndarray]) -> torch.Tensor:
        images = self.check_images(images)
        probabilities = torch.stack([
            classifier.predict_proba(images, ink=self.ink)[:, index].float()
            for classifier, index in zip(self.classifiers, self.category_indices, strict=True)
        ])
        combined = probabilities.mean(0) if self.aggregate == "mean" else probabilities.amin(0)
        return combined.clamp(max=self.cap).contiguous()
