"""Batched sampling: all sketches of a batch advance together, one tensor per step."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from sketchrl.errors import ConfigError
from sketchrl.models.mixture import (
    PEN_END,
    apply_temperature,
    check_temperature,
    draw_step_noise,
    row_log_prob,
    sample_rows,
    split_output,
)
from sketchrl.models.rollout import Rollout

if TYPE_CHECKING:
    from sketchrl.models.sketch_rnn import SketchRNN

logger = logging.getLogger(__name__)


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name}={value!r}: use a positive integer")


def sample_rollout(
    model: SketchRNN,
    n: int,
    *,
    temperature: float = 0.5,
    max_len: int | None = None,
    z: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    grad: bool = False,
    sigma_scale: str = "sqrt",
    progress: bool = False,
) -> Rollout:
    """Sample ``n`` sketches from ``model`` as one batch.

    Args:
        temperature: tau > 0; pi and pen logits / tau, sigma * sqrt(tau) (``sigma_scale="sqrt"``,
            the SketchRNN paper) or sigma * tau (``"linear"``, Magenta's TF sampler).
        max_len: most steps per sketch (default ``model.config.max_seq_len``); sampling stops
            earlier once every sketch has drawn its end row.
        z: ``(z_size,)`` shared by the batch, ``(n, z_size)``, or None (drawn from the prior
            for a VAE; must be None for a decoder-only model).
        generator: source of all randomness (on any device; draws are moved to the model's).
        grad: keep the autograd graph of ``log_probs`` (for policy gradients); otherwise
            sampling runs under ``no_grad``. The model's train/eval mode is left as it is.
    """
    _check_count("n", n)
    check_temperature(temperature, sigma_scale)
    max_len = model.config.max_seq_len if max_len is None else max_len
    _check_count("max_len", max_len)
    device = model.device
    num_mixture = model.config.num_mixture
    with torch.set_grad_enabled(grad):
        if z is None and model.config.conditional:
            z = model.sample_prior_z(n, generator)
        z = model.batch_z(z, n)
        state = model.decoder.start_state(n, z)
        rows = model.start_token.expand(n, 5)
        end_row = torch.zeros(5, device=device, dtype=rows.dtype)
        end_row[2 + PEN_END] = 1.0
        active = torch.ones(n, dtype=torch.bool, device=device)
        all_rows, all_log_probs, all_masks = [], [], []
        for _ in tqdm(range(max_len), desc="sampling", unit="step", disable=not progress,
                      leave=False):
            y, state = model.decoder.step(rows, z, state)
            params = apply_temperature(split_output(y, num_mixture), temperature, sigma_scale)
            noise = draw_step_noise(n, num_mixture, device=device, generator=generator)
            rows = torch.where(active.unsqueeze(1), sample_rows(params, noise), end_row)
            all_log_probs.append(torch.where(active, row_log_prob(params, rows), 0.0))
            all_rows.append(rows)
            all_masks.append(active)
            active = active & (rows[:, 2 + PEN_END] < 0.5)
            if not bool(active.any()):
                break
    mask = torch.stack(all_masks, dim=1)
    strokes = torch.stack(all_rows, dim=1)
    lengths = (mask & (strokes[..., 2 + PEN_END] < 0.5)).sum(dim=1)
    return Rollout(strokes=strokes, lengths=lengths, log_probs=torch.stack(all_log_probs, dim=1),
                   mask=mask, z=z)


def sample_sketches(
    model: SketchRNN,
    n: int,
    *,
    temperature: float = 0.5,
    max_len: int | None = None,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
    sigma_scale: str = "sqrt",
    progress: bool = False,
) -> list[np.ndarray]:
    """``n`` stroke-3 sketches (float32, model units) sampled in batches of ``batch_size``.

    A VAE draws a fresh prior z per sketch. No gradients; the model's mode is unchanged.
    """
    _check_count("n", n)
    _check_count("batch_size", batch_size)
    sketches: list[np.ndarray] = []
    with tqdm(total=n, desc=f"sampling {model.config.name}", unit="sketch",
              disable=not progress) as bar:
        while len(sketches) < n:
            count = min(batch_size, n - len(sketches))
            rollout = sample_rollout(model, count, temperature=temperature, max_len=max_len,
                                     generator=generator, sigma_scale=sigma_scale,
                                     progress=progress)
            sketches.extend(rollout.to_stroke3())
            bar.update(count)
    logger.info("sampled %d sketches from %s", n, model.config.name)
    return sketches
