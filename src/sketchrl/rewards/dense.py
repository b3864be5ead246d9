"""Dense rewards: score partial renders along the drawing and sum them with a discount.

Checkpoints: for a sketch of ``L`` stroke-3 rows and a period ``k`` (``every``), the checkpoints
are the prefixes of lengths ``k, 2k, ...`` strictly less than ``L``, then the whole sketch
(length ``L``). So the blank canvas (length 0) is never a checkpoint of a non-empty sketch,
nothing after the end is scored, and the final sketch is scored exactly once. An empty sketch
(``L = 0``) has the single checkpoint ``0``: the value a sparse reward gives it.

Return: with ``r_j`` the base reward of checkpoint ``j = 1..T``,
``G = sum_j gamma^(T - j) r_j``: the final sketch has weight 1 and earlier checkpoints are
discounted by their distance from the end (``gamma = 1`` sums them).

With ``normalize=True`` (not in the paper) the return is the weighted *mean*
``G / sum_j gamma^(T - j)``: with the plain sum, a sketch that never ends collects more
checkpoints and so more reward, which teaches the policy to draw to the step limit.

Each prefix is rendered on its own like any sketch (centred and scaled to fit the canvas), or
with ``frame="final"`` in the frame of the finished sketch, so that a fragment is drawn at the
size and place it has in the final drawing rather than zoomed to fill the canvas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sketchrl.errors import ConfigError
from sketchrl.render.geometry import Frame, sketch_frame
from sketchrl.rewards.base import Reward

#: How a partial sketch is framed: on its own, or as in the finished sketch.
FRAMES = ("prefix", "final")


def checkpoint_lengths(length: int, every: int) -> list[int]:
    """Prefix lengths scored for a sketch of ``length`` rows (see the module docstring)."""
    if every < 1:
        raise ConfigError(f"every={every}: the dense reward period must be >= 1 step")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if length == 0:
        return [0]
    return [*range(every, length, every), length]


def discounted_return(rewards: torch.Tensor | Sequence[float], gamma: float) -> torch.Tensor:
    """``G = sum_{j=1..T} gamma^(T-j) r_j`` of one sequence of checkpoint rewards (0 if empty)."""
    values = torch.as_tensor(rewards, dtype=torch.float64).reshape(-1)
    exponents = torch.arange(len(values) - 1, -1, -1, dtype=torch.float64)
    return (torch.pow(torch.tensor(float(gamma), dtype=torch.float64), exponents) * values).sum()


class DenseReward(Reward):
    """Dense form of ``base``: the discounted sum of its scores on partial renders."""

    def __init__(
        self, base: Reward, every: int = 25, gamma: float = 1.0, chunk_size: int = 256,
        normalize: bool = False, frame: str = "prefix",
    ) -> None:
        """
        Args:
            base: the reward scored at every checkpoint.
            every: checkpoint period k, in stroke-3 rows (decoder steps).
            gamma: discount in [0, 1].
            chunk_size: most prefixes rendered and scored in one call.
            normalize: divide G by the sum of its weights (a weighted mean: no length bonus).
            frame: ``prefix`` (each partial sketch framed on its own) or ``final`` (in the
                finished sketch's frame).
        """
        checkpoint_lengths(1, every)  # validates `every`
        if not 0.0 <= gamma <= 1.0:
            raise ConfigError(f"gamma={gamma}: the discount must be in [0, 1]")
        if chunk_size < 1:
            raise ConfigError(f"chunk_size={chunk_size}: must be >= 1")
        if frame not in FRAMES:
            raise ConfigError(f"frame={frame!r}: use one of {', '.join(FRAMES)}")
        self.frame = frame
        self.base = base
        self.every = int(every)
        self.gamma = float(gamma)
        self.chunk_size = int(chunk_size)
        self.normalize = bool(normalize)
        self.name = f"{base.name}_dense"
        self.render_options = base.render_options
        self.device = base.device

    def _score_chunked(self, sketches: list[np.ndarray],
                       frames: list[Frame | None] | None) -> torch.Tensor:
        scores = [
            self.base.score(sketches[start:start + self.chunk_size],
                            None if frames is None else frames[start:start + self.chunk_size])
            .to(self.device)
            for start in range(0, len(sketches), self.chunk_size)
        ]
        return torch.cat(scores).float() if scores else torch.zeros(0, device=self.device)

    def checkpoint_rewards(
        self, sketches: Sequence[np.ndarray], final_scores: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Per sketch, the base rewards ``r_1..r_T`` of its checkpoints.

        ``final_scores`` (the base reward of the whole sketches), when given, is used for the
        last checkpoints instead of rendering them again.
        """
        prefixes: list[np.ndarray] = []
        frames: list[Frame | None] = []
        counts: list[int] = []
        for sketch in sketches:
            lengths = checkpoint_lengths(len(sketch), self.every)
            if final_scores is not None:
                lengths = lengths[:-1]
            prefixes.extend(np.asarray(sketch)[:length] for length in lengths)
            frame = sketch_frame(sketch) if self.frame == "final" else None
            frames.extend(frame for _ in lengths)
            counts.append(len(lengths))
        flat = self._score_chunked(prefixes, frames if self.frame == "final" else None)
        rewards = list(torch.split(flat, counts))
        if final_scores is not None:
            finals = final_scores.to(self.device, torch.float32).reshape(-1, 1)
            rewards = [torch.cat([r, f]) for r, f in zip(rewards, finals, strict=True)]
        return rewards

    def returns(self, rewards: Sequence[torch.Tensor]) -> torch.Tensor:
        """Discounted returns ``(B,)`` float32 of per-sketch checkpoint rewards (vectorised)."""
        if len(rewards) == 0:
            return torch.zeros(0, dtype=torch.float32, device=self.device)
        counts = torch.tensor([len(r) for r in rewards], device=self.device)
        values = torch.cat(list(rewards)).to(torch.float64)
        owner = torch.repeat_interleave(torch.arange(len(rewards), device=self.device), counts)
        position = torch.cat([torch.arange(int(c), device=self.device) for c in counts])
        exponent = (counts[owner] - 1 - position).to(torch.float64)
        gamma = torch.tensor(self.gamma, dtype=torch.float64, device=self.device)
        weights = torch.pow(gamma, exponent)
        total = torch.zeros(len(rewards), dtype=torch.float64, device=self.device)
        total.index_add_(0, owner, weights * values)
        if self.normalize:
            weight_sums = torch.zeros_like(total).index_add_(0, owner, weights)
            total = total / weight_sums
        return total.float()

    def __call__(self, images: torch.Tensor, sketches: Sequence[np.ndarray]) -> torch.Tensor:
        """G per sketch; ``images`` (the full sketches' renders) score the last checkpoints."""
        return self.returns(self.checkpoint_rewards(sketches, self.base(images, sketches)))

    def score(self, sketches: Sequence[np.ndarray]) -> torch.Tensor:
        """G per sketch; every checkpoint (the final one included) rendered in chunked batches."""
        return self.returns(self.checkpoint_rewards(sketches))

    def __repr__(self) -> str:
        return (f"DenseReward({self.base!r}, every={self.every}, gamma={self.gamma}, "
                f"normalize={self.normalize}, frame={self.frame!r})")
