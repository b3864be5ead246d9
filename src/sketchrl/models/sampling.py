"""Batched sampling: all sketches of a batch advance together, one tensor per step.

The loop does only what the next step needs (the recurrent step, a draw from the output); the
random numbers of many steps are drawn at once, the host is asked whether every sketch has
ended only every few steps, and the log-probabilities of all sampled rows are computed after
the loop in one vectorised pass over the stacked outputs (differentiable when ``grad=True``).
A plain LSTM decoder steps with its weights pre-arranged once per call (two matrix products
and five element-wise ops a step); any other cell uses :meth:`Decoder.step`.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from sketchrl.errors import ConfigError
from sketchrl.models.fused_lstm import (
    LSTMWeights,
    RecordedInputProjection,
    Recording,
    lstm_sequence,
    lstm_step,
)
from sketchrl.models.mixture import (
    PEN_END,
    RHO_MARGIN,
    Temperature,
    apply_temperature,
    as_temperature,
    row_log_prob,
    split_output,
)
from sketchrl.models.native import native_loops_for, run_native_steps
from sketchrl.models.rollout import Rollout

if TYPE_CHECKING:
    from sketchrl.models.sketch_rnn import SketchRNN

logger = logging.getLogger(__name__)

#: Steps whose random numbers are drawn in one call.
NOISE_CHUNK = 32
#: Steps between two checks (host syncs) of whether every sketch has ended.
END_CHECK_EVERY = 4


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name}={value!r}: use a positive integer")


class StepNoiseSource:
    """Gumbel and normal draws for sampling, ``NOISE_CHUNK`` steps per generator call.

    Per step: ``gumbel (B, 3 + M)`` (pen states, then mixture components), already multiplied
    by the temperature's logit divisor, and ``normal (B, 2)``. Drawn on the generator's device
    (the model's when there is no generator) and moved to ``device`` once per chunk.
    """

    def __init__(self, batch: int, num_mixture: int, device: torch.device,
                 generator: torch.Generator | None = None, gumbel_scale: float = 1.0) -> None:
        self.batch, self.width, self.device = batch, 3 + num_mixture, device
        self.generator, self.gumbel_scale = generator, gumbel_scale
        self.source = generator.device if generator is not None else device
        self.start = 0
        self.gumbel = self.normal = torch.empty(0)

    def __call__(self, step: int) -> tuple[Tensor, Tensor]:
        if not self.start <= step < self.start + len(self.gumbel):
            self.start = step
            uniform = torch.rand(NOISE_CHUNK, self.batch, self.width, generator=self.generator,
                                 device=self.source).clamp_(1e-12, 1.0 - 1e-7)
            normal = torch.randn(NOISE_CHUNK, self.batch, 2, generator=self.generator,
                                 device=self.source)
            gumbel = -torch.log(-torch.log(uniform))
            self.gumbel = (gumbel * self.gumbel_scale).to(self.device)
            self.normal = normal.to(self.device)
        return self.gumbel[step - self.start], self.normal[step - self.start]


_PEN_ONEHOT: dict[tuple[torch.dtype, torch.device], Tensor] = {}


def sample_from_output(y: Tensor, scaled_gumbel: Tensor, normal: Tensor,
                       temperature: Temperature, num_mixture: int) -> Tensor:
    """Stroke-5 rows ``(B, 5)`` drawn from raw outputs ``y (B, 6M + 3)`` (no gradient).

    Gumbel-max on the tempered pen and mixture logits: ``argmax(logits / d + g)`` =
    ``argmax(logits + d g)``, with ``scaled_gumbel = d g`` (d the temperature's logit divisor);
    then the chosen component's correlated Gaussian with sigma scaled by the temperature. End
    rows are ``[0, 0, 0, 0, 1]``. Equals :func:`sketchrl.models.mixture.sample_rows` on the
    same noise.
    """
    with torch.no_grad():
        batch, m = y.shape[0], num_mixture
        pen = (y[:, :3] + scaled_gumbel[:, :3]).argmax(dim=1)
        component = (y[:, 3:3 + m] + scaled_gumbel[:, 3:]).argmax(dim=1)
        chosen = y[:, 3 + m:].view(batch, 5, m).gather(
            2, component.view(batch, 1, 1).expand(batch, 5, 1)).squeeze(2)
        sigma = torch.exp(chosen[:, 2:4] + temperature.log_sigma_offset)
        rho = torch.tanh(chosen[:, 4]).clamp_(-1.0 + RHO_MARGIN, 1.0 - RHO_MARGIN)
        e1, e2 = normal[:, 0], normal[:, 1]
        correlated = torch.stack([e1, rho * e1 + torch.sqrt(1.0 - rho * rho) * e2], dim=1)
        offsets = (chosen[:, :2] + sigma * correlated) * (pen != PEN_END).unsqueeze(1)
        key = (y.dtype, y.device)
        if key not in _PEN_ONEHOT:
            _PEN_ONEHOT[key] = torch.eye(3, dtype=y.dtype, device=y.device)
        return torch.cat([offsets, _PEN_ONEHOT[key][pen]], dim=1)


class ReferenceStepper:
    """Any cell: :meth:`Decoder.step_with_hidden`, differentiated step by step by autograd."""

    def __init__(self, model: SketchRNN, z: Tensor | None, batch: int) -> None:
        self.decoder, self.z = model.decoder, z
        self.state = model.decoder.start_state(batch, z)
        self.outputs: list[Tensor] = []
        self.hidden: list[Tensor] = []

    def step(self, rows: Tensor) -> Tensor:
        y, h, self.state = self.decoder.step_with_hidden(rows, self.z, self.state)
        self.outputs.append(y)
        self.hidden.append(h)
        return y

    def finish(self, strokes: Tensor) -> tuple[Tensor, Tensor]:
        """Raw outputs ``(B, T, 6M + 3)`` and cell outputs ``(B, T, H)`` of the T steps."""
        steps = strokes.shape[1]
        return (torch.stack(self.outputs[:steps], dim=1),
                torch.stack(self.hidden[:steps], dim=1))


class FusedLSTMStepper:
    """A plain-LSTM decoder, stepped without autograd (weights arranged once, see
    :mod:`sketchrl.models.fused_lstm`); with ``record``, :meth:`finish` makes the sampled
    outputs differentiable by an :class:`~sketchrl.models.fused_lstm.LSTMSequence` over the
    recorded activations: the sampling pass is the forward pass of the gradient."""

    def __init__(self, model: SketchRNN, z: Tensor | None, batch: int, record: bool) -> None:
        self.model, self.z, self.record = model, z, record
        cell, output = model.decoder.cell, model.decoder.output
        with torch.no_grad():
            weights = LSTMWeights.of(cell)
            self.w_rows, self.w_hh = weights.w_x[:5], weights.w_hh
            self.bias = weights.bias if z is None else torch.addmm(weights.bias, z,
                                                                   weights.w_x[5:])
            self.w_out, self.b_out = output.weight, output.bias
            self.c, self.h = model.decoder.start_state(batch, z).split(cell.num_units, dim=1)
        self.recording = Recording()
        self.outputs: list[Tensor] = []
        self.native: list[Tensor] | None = None

    def allocate_native(self, steps: int) -> list[Tensor]:
        """Step-major buffers for ``steps`` steps of the C++ loop (:mod:`sketchrl.models.native`):
        rows, sampled mask, outputs, cell outputs, and (when recording) activations and cell
        states; :meth:`keep_native` takes the parts filled, in order."""
        batch, hidden = self.h.shape
        empty = functools.partial(torch.empty, dtype=self.h.dtype, device=self.h.device)
        recorded = steps if self.record else 0
        return [empty(steps, batch, 5),
                torch.empty(steps, batch, dtype=torch.bool, device=self.h.device),
                empty(steps, batch, self.w_out.shape[1]), empty(steps, batch, hidden),
                empty(recorded, batch, 4 * hidden), empty(recorded, batch, hidden)]

    def keep_native(self, parts: list[list[Tensor]]) -> list[Tensor]:
        """Join the filled buffers of each chunk (as :meth:`allocate_native` lists them)."""
        self.native = [values[0] if len(values) == 1 else torch.cat(values)
                       for values in zip(*parts, strict=True)]
        return self.native

    def _recorded(self, steps: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Outputs, activations, cell states and cell outputs ``(B, T, ...)`` of the T steps."""
        if self.native is not None:
            # batch-major copies of what later products reduce over (B, T) rows, so that they
            # sum in the same order as after the Python loop; the rest stays step-major views
            _, _, outputs, hidden, activations, cells = (
                buffer[:steps].transpose(0, 1) for buffer in self.native)
            return outputs.contiguous(), activations, cells, hidden.contiguous()
        outputs = torch.stack(self.outputs[:steps], dim=1)
        if not self.record:
            return outputs, None, None, torch.stack(self.recording.hidden[:steps], dim=1)
        return (outputs, *self.recording.stacked(steps))

    def step(self, rows: Tensor) -> Tensor:
        with torch.no_grad():
            activations, self.c, self.h = lstm_step(
                torch.addmm(self.bias, rows, self.w_rows), self.h, self.c, self.w_hh)
            y = torch.addmm(self.b_out, self.h, self.w_out)
        if self.record:
            self.recording.add(activations, self.c, self.h)
        else:
            self.recording.hidden.append(self.h)
        self.outputs.append(y)
        return y

    def finish(self, strokes: Tensor) -> tuple[Tensor, Tensor]:
        """Raw outputs and cell outputs of the T steps; differentiable when recording."""
        steps = strokes.shape[1]
        outputs, activations, cells, hidden = self._recorded(steps)
        if not self.record:
            return outputs, hidden
        model = self.model
        decoder = model.decoder
        weights = LSTMWeights.of(decoder.cell)
        inputs = torch.cat([model.start_token.expand(strokes.shape[0], 1, 5),
                            strokes[:, :-1]], dim=1)
        bias = weights.bias if self.z is None else torch.addmm(weights.bias, self.z,
                                                               weights.w_x[5:])
        gates_in = RecordedInputProjection.apply(inputs, weights.w_x[:5], bias)
        c0, h0 = decoder.start_state(strokes.shape[0], self.z).split(decoder.cell.num_units,
                                                                     dim=1)
        hidden = lstm_sequence(gates_in, h0, c0, weights.w_hh, (activations, cells, hidden))
        return decoder.head(hidden), hidden


def _check_prefix(prefix: Tensor | None, prefix_lengths: Tensor | None, n: int,
                  device: torch.device, dtype: torch.dtype) -> tuple[Tensor | None, Tensor | None]:
    if prefix is None:
        return None, None
    if prefix.dim() != 3 or prefix.shape[0] != n or prefix.shape[2] != 5:
        raise ConfigError(f"prefix must be ({n}, P, 5) stroke-5 rows, got {tuple(prefix.shape)}")
    if prefix_lengths is None:
        prefix_lengths = torch.full((n,), prefix.shape[1], dtype=torch.long)
    if prefix_lengths.shape != (n,) or int(prefix_lengths.min()) < 0 \
            or int(prefix_lengths.max()) > prefix.shape[1]:
        raise ConfigError(f"prefix_lengths must be ({n},) values in [0, {prefix.shape[1]}]")
    return prefix.to(device, dtype), prefix_lengths.to(device)


def sample_rollout(
    model: SketchRNN,
    n: int,
    *,
    temperature: float | Temperature = 0.5,
    max_len: int | None = None,
    z: Tensor | None = None,
    generator: torch.Generator | None = None,
    grad: bool = False,
    sigma_scale: str = "sqrt",
    progress: bool = False,
    prefix: Tensor | None = None,
    prefix_lengths: Tensor | None = None,
    keep_outputs: bool = False,
    fused: bool | None = None,
) -> Rollout:
    """Sample ``n`` sketches from ``model`` as one batch.

    Args:
        temperature: tau > 0 (the paper's semantics: pi and pen logits / tau, sigma *
            sqrt(tau), or sigma * tau with ``sigma_scale="linear"``) or a
            :class:`~sketchrl.models.mixture.Temperature` (e.g. ``magenta-js`` semantics).
        max_len: most steps per sketch, prefix included (default ``model.config.max_seq_len``);
            sampling stops earlier once every sketch has drawn its end row.
        z: ``(z_size,)`` shared by the batch, ``(n, z_size)``, or None (drawn from the prior
            for a VAE; must be None for a decoder-only model).
        generator: source of all randomness.
        grad: keep the autograd graph of ``log_probs`` (and ``outputs``) for policy gradients.
        prefix, prefix_lengths: ``(n, P, 5)`` stroke-5 rows each sketch starts with (the first
            ``prefix_lengths[b]`` of them; all P when None), fed through the decoder instead of
            sampled: completion. Their steps are not in ``mask`` (no log-probability).
        keep_outputs: keep the raw outputs ``(n, T, 6M + 3)`` and cell outputs ``(n, T, H)``.
        fused: use the fused plain-LSTM step (default: whenever the decoder allows it).
    The model's train/eval mode is left as it is.
    """
    _check_count("n", n)
    temperature = as_temperature(temperature, sigma_scale)
    max_len = model.config.max_seq_len if max_len is None else max_len
    _check_count("max_len", max_len)
    device, num_mixture = model.device, model.config.num_mixture
    prefix, prefix_lengths = _check_prefix(prefix, prefix_lengths, n, device,
                                           model.start_token.dtype)
    use_fused = model.decoder.fusable if fused is None else fused
    with torch.set_grad_enabled(grad):
        if z is None and model.config.conditional:
            z = model.sample_prior_z(n, generator)
        z = model.batch_z(z, n)
        stepper = FusedLSTMStepper(model, z, n, record=grad) if use_fused \
            else ReferenceStepper(model, z, n)
    noise = StepNoiseSource(n, num_mixture, device, generator, temperature.logit_divisor)
    start_rows = model.start_token.expand(n, 5)
    native = native_loops_for(device, start_rows.dtype) if use_fused and prefix is None \
        else None
    if native is not None:
        strokes, mask = run_native_steps(native, stepper, noise, start_rows, max_len,
                                         temperature, num_mixture, progress)
    else:
        with torch.set_grad_enabled(grad and not use_fused):
            all_rows, masks = _run_steps(stepper, noise, start_rows, max_len, temperature,
                                         num_mixture, prefix, prefix_lengths, progress)
        strokes, mask = torch.stack(all_rows, dim=1), torch.stack(masks, dim=1)
    with torch.set_grad_enabled(grad):
        return _finish(stepper, strokes, mask, z, prefix_lengths, temperature, num_mixture,
                       keep_outputs)


def _run_steps(stepper: FusedLSTMStepper | ReferenceStepper, noise: StepNoiseSource,
               rows: Tensor, max_len: int, temperature: Temperature, num_mixture: int,
               prefix: Tensor | None, prefix_lengths: Tensor | None,
               progress: bool) -> tuple[list[Tensor], list[Tensor]]:
    """The sampling loop: rows and sampled-step masks of every step run."""
    end_row = torch.zeros(5, device=rows.device, dtype=rows.dtype)
    end_row[2 + PEN_END] = 1.0
    active = torch.ones(rows.shape[0], dtype=torch.bool, device=rows.device)
    all_rows, masks = [], []
    for t in tqdm(range(max_len), desc="sampling", unit="step", disable=not progress,
                  leave=False):
        y = stepper.step(rows)
        sampled = sample_from_output(y.detach(), *noise(t), temperature, num_mixture)
        if prefix is not None and t < prefix.shape[1]:
            forced = t < prefix_lengths
            sampled = torch.where(forced.unsqueeze(1), prefix[:, t], sampled)
            masks.append(active & ~forced)
        else:
            masks.append(active)
        rows = torch.where(active.unsqueeze(1), sampled, end_row)
        all_rows.append(rows)
        active = active & (rows[:, 2 + PEN_END] < 0.5)
        if (t + 1) % END_CHECK_EVERY == 0 and not bool(active.any()):
            break
    return all_rows, masks


def _finish(stepper: FusedLSTMStepper | ReferenceStepper, strokes: Tensor, mask: Tensor,
            z: Tensor | None, prefix_lengths: Tensor | None, temperature: Temperature,
            num_mixture: int, keep_outputs: bool) -> Rollout:
    """Drop the steps run after every sketch had ended and score the rows (``strokes (B, T,
    5)``, ``mask (B, T)``: the rows and sampled-step mask of every step run)."""
    ended_before = torch.cumsum(strokes[..., 2 + PEN_END], dim=1) - strokes[..., 2 + PEN_END]
    running = ended_before < 0.5  # (B, T): no end row before this step
    steps = int(running.any(dim=0).sum())
    strokes, running = strokes[:, :steps], running[:, :steps]
    mask = mask[:, :steps]
    y, hidden = stepper.finish(strokes)
    params = apply_temperature(split_output(y, num_mixture), temperature)
    log_probs = torch.where(mask, row_log_prob(params, strokes), 0.0)
    lengths = (running & (strokes[..., 2 + PEN_END] < 0.5)).sum(dim=1)
    return Rollout(
        strokes=strokes, lengths=lengths, log_probs=log_probs, mask=mask, z=z,
        prefix_lengths=prefix_lengths,
        outputs=y if keep_outputs else None,
        hidden=hidden.detach() if keep_outputs else None,
    )


def sample_sketches(
    model: SketchRNN,
    n: int,
    *,
    temperature: float | Temperature = 0.5,
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
