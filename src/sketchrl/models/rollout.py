"""What one batched sampling run returns: the sketches and the log-probabilities of each step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class Rollout:
    """A batch of sampled sketches with per-step log-probabilities.

    Attributes:
        strokes: ``(B, T, 5)`` stroke-5 rows in model units; rows from ``lengths[b]`` on are
            ``[0, 0, 0, 0, 1]`` (T is the number of steps actually run).
        lengths: ``(B,)`` int64 drawing rows (the end row excluded); ``T`` when a sketch hit
            ``max_len`` before ending.
        log_probs: ``(B, T)`` log-probability of each sampled row under the tempered
            distribution (pen state, plus the ``(dx, dy)`` mixture density on drawing rows);
            0 where ``mask`` is False. Differentiable when sampled with ``grad=True``.
        mask: ``(B, T)`` bool, the steps actually sampled: drawing rows plus the end row (a
            completion's given prefix rows are not sampled).
        z: ``(B, z_size)`` latent vectors used, or None for a decoder-only model.
        prefix_lengths: ``(B,)`` rows given as a prefix (completion), or None.
        outputs: ``(B, T, 6M + 3)`` raw decoder outputs of every step, when kept.
        hidden: ``(B, T, H)`` decoder cell outputs of every step, when kept.
    """

    strokes: Tensor
    lengths: Tensor
    log_probs: Tensor
    mask: Tensor
    z: Tensor | None = None
    prefix_lengths: Tensor | None = None
    outputs: Tensor | None = None
    hidden: Tensor | None = None

    def __len__(self) -> int:
        return int(self.strokes.shape[0])

    def total_log_prob(self) -> Tensor:
        """``(B,)`` log-probability of each whole sketch (sum over its sampled steps)."""
        return (self.log_probs * self.mask).sum(dim=1)

    def to_stroke3(self) -> list[np.ndarray]:
        """The sketches as stroke-3 ``(lengths[b], 3)`` float32 arrays in model units."""
        strokes = self.strokes.detach().to("cpu", torch.float32)
        rows = torch.cat([strokes[..., :2], strokes[..., 3:4]], dim=-1).numpy()
        return [rows[b, :length].copy() for b, length in enumerate(self.lengths.tolist())]

    def detach(self) -> Rollout:
        """A copy without autograd history (e.g. to keep for logging)."""

        def detached(value: Tensor | None) -> Tensor | None:
            return None if value is None else value.detach()

        return Rollout(self.strokes.detach(), self.lengths, self.log_probs.detach(), self.mask,
                       detached(self.z), self.prefix_lengths, detached(self.outputs),
                       detached(self.hidden))
