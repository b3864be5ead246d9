"""The reward protocol: a callable scoring rendered sketches, and weighted sums of rewards."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from sketchrl.errors import ConfigError
from sketchrl.render import RenderOptions, render
from sketchrl.render.geometry import Frame


class Reward(ABC):
    """A reward on rendered sketches.

    ``__call__(images, sketches)`` takes ``images (B, C, H, W)`` rendered with
    ``render_options`` (and the stroke-3 ``sketches`` they come from) and returns a float32
    ``(B,)`` tensor on ``device``; ``score(sketches)`` renders first. A new reward is one subclass
    registered in ``sketchrl.rewards.REWARDS``; it imports heavy dependencies lazily.
    """

    name: ClassVar[str] = "reward"
    render_options: RenderOptions
    device: torch.device

    @abstractmethod
    def __call__(self, images: torch.Tensor, sketches: Sequence[np.ndarray]) -> torch.Tensor:
        """Scores ``(B,)`` float32 of ``images`` (rendered with ``render_options``)."""

    def render(self, sketches: Sequence[np.ndarray],
               frames: Sequence[Frame | None] | None = None) -> torch.Tensor:
        """``sketches`` rendered with this reward's options, on its device (``frames``: see
        :func:`sketchrl.render.render`): by Agg on a CPU, by the batched torch rasteriser on a
        GPU."""
        backend = "torch" if self.device.type == "cuda" else "agg"
        return render(list(sketches), self.render_options, device=self.device, frames=frames,
                      backend=backend)

    def score(self, sketches: Sequence[np.ndarray],
              frames: Sequence[Frame | None] | None = None) -> torch.Tensor:
        """Render ``sketches`` with ``render_options`` and score them: ``(B,)`` float32."""
        if len(sketches) == 0:
            return torch.zeros(0, dtype=torch.float32, device=self.device)
        return self(self.render(sketches, frames), sketches)

    def check_images(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` on this reward's device, after checking they match ``render_options``."""
        options = self.render_options
        expected = (options.channels, options.size, options.size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"the {self.name} reward expects images (B, {', '.join(map(str, expected))}) "
                f"rendered with its render_options, got {tuple(images.shape)}"
            )
        return images.to(self.device, torch.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={str(self.device)!r})"


class WeightedSum(Reward):
    """``sum_i weight_i * reward_i``; each term sees images rendered with its own options."""

    name: ClassVar[str] = "weighted_sum"

    def __init__(self, rewards: Sequence[Reward], weights: Sequence[float]) -> None:
        if not rewards or len(rewards) != len(weights):
            raise ConfigError(
                f"a weighted sum needs one weight per reward, got {len(rewards)} rewards and "
                f"{len(weights)} weights"
            )
        self.rewards = list(rewards)
        self.weights = [float(w) for w in weights]
        self.render_options = self.rewards[0].render_options
        self.device = self.rewards[0].device

    def __call__(self, images: torch.Tensor, sketches: Sequence[np.ndarray]) -> torch.Tensor:
        renders: list[tuple[RenderOptions, torch.Tensor]] = [(self.render_options, images)]
        total = torch.zeros(len(sketches), dtype=torch.float32, device=self.device)
        for reward, weight in zip(self.rewards, self.weights, strict=True):
            matching = next((im for opts, im in renders if opts == reward.render_options), None)
            if matching is None:
                matching = reward.render(sketches)
                renders.append((reward.render_options, matching))
            total += weight * reward(matching, sketches).to(self.device, torch.float32)
        return total

    def __repr__(self) -> str:
        pairs = zip(self.rewards, self.weights, strict=True)
        terms = " + ".join(f"{weight:g} * {reward!r}" for reward, weight in pairs)
        return f"WeightedSum({terms})"
