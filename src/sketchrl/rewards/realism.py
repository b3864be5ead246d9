"""Realism reward: how far inside the manifold of real drawings of a category a sketch lies, in
a classifier's feature space (the realism score of Kynkäänniemi et al., 2019)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from sketchrl.devices import resolve_device
from sketchrl.errors import ConfigError
from sketchrl.render import QUICKDRAW_OPTIONS
from sketchrl.rewards.base import Reward


def realism_scores(features: torch.Tensor, real: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """``max_j radii[j] / ||features[i] - real[j]||`` per row of ``features`` ``(B, D)``.

    1 or more: the sketch lies in the k-NN ball of some real drawing (prdc's precision counts
    it); below 1, the fraction of the nearest such ball's radius it would have to move closer.
    """
    distances = torch.cdist(features, real).clamp_min(1e-12)
    return (radii.unsqueeze(0) / distances).amax(dim=1)


def real_manifold(real: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The real features kept and their k-NN radii: the half with the smaller radii, as the
    realism score's authors prune outliers whose balls would cover everything."""
    distances = torch.cdist(real, real)
    radii = distances.kthvalue(k + 1, dim=1).values  # the first is the point itself
    kept = radii <= radii.median()
    return real[kept], radii[kept]


class RealismReward(Reward):
    """``min(realism score, cap)`` of the 28x28 render against real drawings of ``category``.

    The features are the penultimate layer of a classifier trained by ``sketchrl classifier``;
    the real drawings are the first ``samples`` of the category's ``reward`` half of
    ``numpy_bitmap`` (the half the reward classifier learns from, never the evaluation
    classifier's). Added to a category reward (``weighted_sum``), it pays for drawings that
    resemble real ones of the category rather than for any image the classifier is sure of.
    """

    name: ClassVar[str] = "realism"

    def __init__(
        self,
        model: str | None = None,
        category: str = "bird",
        samples: int = 2000,
        k: int = 3,
        cap: float = 1.0,
        device: str | torch.device | None = None,
    ) -> None:
        """
        Args:
            model: directory written by ``sketchrl classifier train`` (its features are used).
            category: the real drawings' category (need not be one of the classifier's).
            samples: how many real drawings form the manifold (before its outlier half is
                pruned).
            k: the neighbour whose distance is each real drawing's radius.
            cap: the reward is ``min(score, cap)``; 1 (default): every sketch inside the
                manifold scores the same.
            device: where the classifier runs (None = cpu).
        """
        from sketchrl.classifiers import load_category_bitmaps, load_classifier, subset_indices

        if not model:
            raise ConfigError(
                "the realism reward needs model=DIR: a classifier from `sketchrl classifier "
                "train --arch cnn --subset reward --out DIR`"
            )
        if samples < k + 2 or k < 1:
            raise ConfigError(
                f"the realism reward needs k >= 1 and samples >= k + 2, got k={k}, "
                f"samples={samples}"
            )
        if cap <= 0:
            raise ConfigError(f"the realism reward's cap must be positive, got {cap}")
        self.device = resolve_device(device)
        self.render_options = QUICKDRAW_OPTIONS
        self.cap, self.category = float(cap), category
        self.ink = 1.0 if self.render_options.ink_on_black else 0.0
        self.classifier = load_classifier(model, device=self.device)
        bitmaps = load_category_bitmaps(category)
        chosen = np.sort(subset_indices(len(bitmaps), "reward")[:samples])
        if len(chosen) < k + 2:
            raise ConfigError(
                f"category {category!r} has {len(chosen)} drawings in its reward half, "
                f"fewer than k + 2 = {k + 2}"
            )
        real = self.classifier.features(torch.from_numpy(bitmaps[chosen]))
        self.real, self.radii = real_manifold(real, k)

    def __call__(self, images: torch.Tensor, sketches: Sequence[np.ndarray]) -> torch.Tensor:
        features = self.classifier.features(self.check_images(images), ink=self.ink)
        scores = realism_scores(features, self.real, self.radii)
        return scores.clamp(max=self.cap).contiguous()
