"""Baselines of ``bench_rl.py``: sketchrl's REINFORCE step as it was before the speed work
(``legacy_step``, from commit 4943127) and a naive one (``naive_step``: one episode at a time,
as a direct port of Magenta's sampler would do, with per-episode teacher forcing).

Both are written here from the library's building blocks (cell, output layer, mixture head),
so that they compute the same distribution as the library and differ only in how the work is
arranged.
"""

from __future__ import annotations

import torch

from sketchrl.models import SketchRNN
from sketchrl.models.mixture import (
    PEN_END,
    apply_temperature,
    draw_step_noise,
    row_log_prob,
    sample_rows,
    split_output,
)


def legacy_sample(model: SketchRNN, n: int, temperature: float, max_len: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The sampler before the speed work: every step splits the output, applies the
    temperature, draws its noise, samples, scores the row, and asks the host whether all ended.
    Returns ``(strokes (n, T, 5), lengths (n,), mask (n, T))``."""
    m = model.config.num_mixture
    with torch.no_grad():
        state = model.decoder.start_state(n, None)
        rows = model.start_token.expand(n, 5)
        end_row = torch.zeros(5, device=model.device)
        end_row[2 + PEN_END] = 1.0
        active = torch.ones(n, dtype=torch.bool, device=model.device)
        all_rows, all_log_probs, masks = [], [], []
        for _ in range(max_len):
            y, state = model.decoder.step(rows, None, state)
            params = apply_temperature(split_output(y, m), temperature)
            noise = draw_step_noise(n, m, device=model.device, generator=generator)
            rows = torch.where(active.unsqueeze(1), sample_rows(params, noise), end_row)
            all_log_probs.append(torch.where(active, row_log_prob(params, rows), 0.0))
            all_rows.append(rows)
            masks.append(active)
            active = active & (rows[:, 2 + PEN_END] < 0.5)
            if not bool(active.any()):
                break
    mask = torch.stack(masks, dim=1)
    strokes = torch.stack(all_rows, dim=1)
    lengths = (mask & (strokes[..., 2 + PEN_END] < 0.5)).sum(dim=1)
    return strokes, lengths, mask


def legacy_log_prob(model: SketchRNN, strokes: torch.Tensor, lengths: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """Teacher forcing before the speed work: one ``decoder.step`` per row (no fused kernel)."""
    batch, steps, _ = strokes.shape
    inputs = torch.cat([model.start_token.expand(batch, 1, 5), strokes[:, :-1]], dim=1)
    state = model.decoder.start_state(batch, None)
    outputs = []
    for t in range(steps):
        y, state = model.decoder.step(inputs[:, t], None, state)
        outputs.append(y)
    params = apply_temperature(split_output(torch.stack(outputs, dim=1),
                                            model.config.num_mixture), temperature)
    sampled = torch.arange(steps, device=strokes.device).unsqueeze(0) <= lengths.unsqueeze(1)
    return torch.where(sampled, row_log_prob(params, strokes), 0.0).sum(dim=1)
