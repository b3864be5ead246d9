"""SketchRNN (Ha & Eck 2018) in PyTorch, laid out like Magenta's ``sketch_rnn``.

Encoder: bidirectional RNN over the stroke-5 rows -> ``mu``, ``presig`` (sigma =
exp(presig / 2)) -> z. Decoder: an RNN whose initial state is ``tanh(W z + b)`` and whose
input at each step is ``[previous stroke-5 row, z]`` (the first "previous row" is the start
token ``[0, 0, 1, 0, 0]``); it outputs the mixture of :mod:`sketchrl.models.mixture`.
A decoder-only (``conditional=False``) model has no encoder and no z and starts from a zero
state.

Teacher forcing convention: ``strokes5 (B, T, 5)`` are the rows to predict (no start token);
``lengths (B,)`` counts the drawing rows, so row ``lengths[b]`` (when < T) is the end row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from sketchrl.errors import ConfigError
from sketchrl.models.cells import Dense, LSTMCell, build_cell, flush_subnormal_gradient
from sketchrl.models.config import SketchRNNConfig
from sketchrl.models.mixture import (
    MixtureParams,
    Temperature,
    apply_temperature,
    offset_log_prob,
    pen_log_prob,
    row_log_prob,
    split_output,
)
from sketchrl.models.rollout import Rollout

START_TOKEN = (0.0, 0.0, 1.0, 0.0, 0.0)
END_ROW = (0.0, 0.0, 0.0, 0.0, 1.0)


def _cell_options(config: SketchRNNConfig) -> dict[str, float | int]:
    keep = config.recurrent_dropout_prob if config.use_recurrent_dropout else 1.0
    return {
        "dropout_keep_prob": keep,
        "hyper_num_units": config.hyper_num_units,
        "hyper_embedding_size": config.hyper_embedding_size,
    }


def _dropout(use: bool, keep_prob: float) -> nn.Module:
    return nn.Dropout(1.0 - keep_prob) if use else nn.Identity()


def check_sequences(strokes5: Tensor, lengths: Tensor) -> None:
    """``strokes5 (B, T, 5)`` and ``lengths (B,)`` with ``0 <= lengths <= T``, or ValueError."""
    if strokes5.dim() != 3 or strokes5.shape[-1] != 5:
        raise ValueError(f"strokes5 must be (B, T, 5), got {tuple(strokes5.shape)}")
    if lengths.shape != strokes5.shape[:1]:
        raise ValueError(f"lengths must be ({strokes5.shape[0]},), got {tuple(lengths.shape)}")
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > strokes5.shape[1]):
        raise ValueError(f"lengths must lie in [0, {strokes5.shape[1]}]")


class Encoder(nn.Module):
    """Bidirectional RNN over the drawing rows; the last ``h`` of both directions -> mu, presig."""

    def __init__(self, config: SketchRNNConfig) -> None:
        super().__init__()
        options = _cell_options(config)
        self.cell_fw = build_cell(config.enc_model, 5, config.enc_rnn_size, **options)
        self.cell_bw = build_cell(config.enc_model, 5, config.enc_rnn_size, **options)
        self.mu = Dense(2 * config.enc_rnn_size, config.z_size, init_std=0.001)
        self.presig = Dense(2 * config.enc_rnn_size, config.z_size, init_std=0.001)

    @staticmethod
    def _last_output(cell: nn.Module, x: Tensor, lengths: Tensor) -> Tensor:
        state = x.new_zeros(x.shape[0], cell.state_size)
        steps = int(lengths.max()) if lengths.numel() else 0
        for t in range(steps):
            _, new_state = cell(x[:, t], state)
            state = torch.where((t < lengths).unsqueeze(1), new_state, state)
        return cell.output(state)

    def forward(self, strokes5: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        steps = torch.arange(strokes5.shape[1], device=strokes5.device)
        reverse_index = (lengths.unsqueeze(1) - 1 - steps).clamp(min=0)
        reversed_rows = strokes5.gather(1, reverse_index.unsqueeze(-1).expand(-1, -1, 5))
        last_h = torch.cat([
            self._last_output(self.cell_fw, strokes5, lengths),
            self._last_output(self.cell_bw, reversed_rows, lengths),
        ], dim=1)
        return self.mu(last_h), self.presig(last_h)


class Decoder(nn.Module):
    """The autoregressive RNN, its z -> initial state layer (VAE only) and the output layer."""

    def __init__(self, config: SketchRNNConfig) -> None:
        super().__init__()
        z_size = config.z_size if config.conditional else 0
        self.cell = build_cell(config.dec_model, 5 + z_size, config.dec_rnn_size,
                               **_cell_options(config))
        self.initial_state = (
            Dense(config.z_size, self.cell.state_size, init_std=0.001)
            if config.conditional else None
        )
        self.output = Dense(config.dec_rnn_size, config.output_size)
        self.input_dropout = _dropout(config.use_input_dropout, config.input_dropout_prob)
        self.output_dropout = _dropout(config.use_output_dropout, config.output_dropout_prob)

    def start_state(self, batch: int, z: Tensor | None) -> Tensor:
        """``tanh(W z + b)`` for a VAE, zeros for a decoder-only model."""
        if self.initial_state is None or z is None:
            return self.output.weight.new_zeros(batch, self.cell.state_size)
        return torch.tanh(self.initial_state(z))

    def step(self, rows: Tensor, z: Tensor | None, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step from the previous rows ``(B, 5)``: raw outputs ``(B, 6M + 3)`` and state."""
        y, _, state = self.step_with_hidden(rows, z, state)
        return y, state

    def step_with_hidden(self, rows: Tensor, z: Tensor | None,
                         state: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`step` that also returns the cell's output ``h (B, H)``."""
        x = rows if z is None else torch.cat([rows, z], dim=1)
        h, state = self.cell(self.input_dropout(x), state)
        return self.head(h), h, state

    def sequence(self, rows: Tensor, z: Tensor | None, state: Tensor) -> tuple[Tensor, Tensor]:
        """All steps of known input rows ``(B, T, 5)``: raw outputs ``(B, T, 6M + 3)`` and the
        cell outputs ``h (B, T, H)``. The plain LSTM runs as one fused kernel."""
        x = rows if z is None else torch.cat([rows, z.unsqueeze(1).expand(-1, rows.shape[1], -1)],
                                             dim=2)
        h, _ = self.cell.sequence(self.input_dropout(x), state)
        return self.head(h), h

    def head(self, h: Tensor) -> Tensor:
        """The output layer: raw outputs ``(..., 6M + 3)`` of cell outputs ``h (..., H)``, their
        gradient's subnormal values flushed (:func:`.cells.flush_subnormal_gradient`)."""
        return flush_subnormal_gradient(self.output(self.output_dropout(h)))

    @property
    def fusable(self) -> bool:
        """Whether a fused plain-LSTM step may replace :meth:`step` (no dropout active)."""
        dropout = self.training and not (
            isinstance(self.input_dropout, nn.Identity)
            and isinstance(self.output_dropout, nn.Identity)
        )
        return isinstance(self.cell, LSTMCell) and not self.cell.dropout_active and not dropout


class SketchRNNOutput(NamedTuple):
    """A training pass: mixture parameters per step and the latent (None when decoder-only)."""

    params: MixtureParams  # (B, T, ...)
    z: Tensor | None
    mu: Tensor | None
    presig: Tensor | None


class SketchRNN(nn.Module):
    """Magenta's SketchRNN: VAE (``config.conditional``) or decoder-only."""

    def __init__(self, config: SketchRNNConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config) if config.conditional else None
        self.decoder = Decoder(config)
        self.register_buffer("start_token", torch.tensor(START_TOKEN), persistent=False)

    # -- parameters and devices ------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.decoder.output.weight.device

    def decoder_parameters(self) -> Iterator[nn.Parameter]:
        """What RL trains: the decoder cell, its output layer and the z -> state layer."""
        return self.decoder.parameters()

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """The encoder's parameters (none for a decoder-only model)."""
        return iter(()) if self.encoder is None else self.encoder.parameters()

    # -- latent ----------------------------------------------------------------------------------
    def encode(self, strokes5: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, presig)`` of q(z | sketch), each ``(B, z_size)``; sigma = exp(presig / 2)."""
        if self.encoder is None:
            raise ConfigError(f"model {self.config.name!r} is decoder-only: it has no encoder")
        check_sequences(strokes5, lengths)
        return self.encoder(strokes5.to(self.device, self.start_token.dtype),
                            lengths.to(self.device))

    def sample_prior_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``(n, z_size)`` draws from N(0, I) on the model's device."""
        if not self.config.conditional:
            raise ConfigError(f"model {self.config.name!r} is decoder-only: it has no latent z")
        return _randn((n, self.config.z_size), self.device, generator).to(self.start_token.dtype)

    def sample_posterior_z(self, mu: Tensor, presig: Tensor,
                           generator: torch.Generator | None = None) -> Tensor:
        """The reparameterised ``z = mu + exp(presig / 2) * eps``."""
        return mu + torch.exp(presig / 2.0) * _randn(tuple(mu.shape), mu.device, generator)

    def batch_z(self, z: Tensor | None, batch: int) -> Tensor | None:
        """``z`` as ``(batch, z_size)`` (a shared ``(z_size,)`` is expanded); checks the model."""
        if not self.config.conditional:
            if z is not None:
                raise ConfigError(f"model {self.config.name!r} is decoder-only: pass z=None")
            return None
        if z is None:
            raise ConfigError(
                f"model {self.config.name!r} is a VAE: pass z (e.g. model.sample_prior_z(n))"
            )
        z = z.to(self.device, self.start_token.dtype)
        if z.shape == (self.config.z_size,):
            return z.unsqueeze(0).expand(batch, -1)
        if z.shape != (batch, self.config.z_size):
            raise ConfigError(
                f"z has shape {tuple(z.shape)}; use ({self.config.z_size},) or "
                f"({batch}, {self.config.z_size})"
            )
        return z

    # -- teacher forcing ----------------------------------------------------------------------
    def teacher_forcing(self, strokes5: Tensor, lengths: Tensor,
                        z: Tensor | None = None) -> MixtureParams:
        """Mixture parameters ``(B, T, ...)`` predicting each row of ``strokes5`` from the rows
        before it (start token first). Every one of the T steps is computed, since Magenta's pen
        loss covers the padding; ``lengths`` is only checked. ``z`` is required for a VAE.
        """
        return split_output(self.teacher_forcing_outputs(strokes5, lengths, z)[0],
                            self.config.num_mixture)

    def teacher_forcing_outputs(self, strokes5: Tensor, lengths: Tensor,
                                z: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Raw outputs ``(B, T, 6M + 3)`` and cell outputs ``h (B, T, H)`` of teacher forcing
        (see :meth:`teacher_forcing`); one fused kernel for the plain LSTM."""
        check_sequences(strokes5, lengths)
        batch, steps, _ = strokes5.shape
        z = self.batch_z(z, batch)
        strokes5 = strokes5.to(self.device, self.start_token.dtype)
        inputs = torch.cat([self.start_token.expand(batch, 1, 5), strokes5[:, :-1]], dim=1)
        return self.decoder.sequence(inputs, z, self.decoder.start_state(batch, z))

    def forward(self, strokes5: Tensor, lengths: Tensor, z: Tensor | None = None,
                generator: torch.Generator | None = None) -> SketchRNNOutput:
        """The training pass: a VAE without ``z`` encodes the sketches and draws z from
        q(z | sketch); then :meth:`teacher_forcing`."""
        mu = presig = None
        if self.config.conditional and z is None:
            mu, presig = self.encode(strokes5.to(self.device), lengths.to(self.device))
            z = self.sample_posterior_z(mu, presig, generator)
        params = self.teacher_forcing(strokes5, lengths, z)
        return SketchRNNOutput(params, self.batch_z(z, strokes5.shape[0]), mu, presig)

    def log_prob(self, strokes5: Tensor, lengths: Tensor, z: Tensor | None = None,
                 temperature: float | Temperature = 1.0, sigma_scale: str = "sqrt") -> Tensor:
        """``(B,)`` log-probability of rows ``0..lengths[b]`` (drawing rows + the end row when
        ``lengths[b] < T``) under the tempered distribution. Differentiable."""
        return self.step_log_probs(strokes5, lengths, z, temperature, sigma_scale).sum(dim=1)

    def step_log_probs(self, strokes5: Tensor, lengths: Tensor, z: Tensor | None = None,
                       temperature: float | Temperature = 1.0,
                       sigma_scale: str = "sqrt") -> Tensor:
        """``(B, T')`` per-row log-probabilities (0 past the end row), T' = min(T, max len + 1)."""
        check_sequences(strokes5, lengths)
        lengths = lengths.to(self.device)
        needed = min(strokes5.shape[1], int(lengths.max()) + 1 if lengths.numel() else 0)
        strokes5 = strokes5[:, :needed].to(self.device, self.start_token.dtype)
        params = apply_temperature(self.teacher_forcing(strokes5, lengths, z), temperature,
                                   sigma_scale)
        steps = torch.arange(needed, device=self.device)
        sampled = steps.unsqueeze(0) <= lengths.unsqueeze(1)
        return torch.where(sampled, row_log_prob(params, strokes5), 0.0)

    # -- sampling ---------------------------------------------------------------------------------
    def sample(self, n: int, *, temperature: float | Temperature = 0.5,
               max_len: int | None = None, z: Tensor | None = None,
               generator: torch.Generator | None = None, grad: bool = False,
               sigma_scale: str = "sqrt", progress: bool = False, **options) -> Rollout:
        """Sample ``n`` sketches together; see :func:`sketchrl.models.sampling.sample_rollout`
        (``options``: ``prefix``, ``prefix_lengths``, ``keep_outputs``, ``fused``)."""
        from sketchrl.models.sampling import sample_rollout

        return sample_rollout(self, n, temperature=temperature, max_len=max_len, z=z,
                              generator=generator, grad=grad, sigma_scale=sigma_scale,
                              progress=progress, **options)


def _randn(shape: tuple[int, ...], device: torch.device,
           generator: torch.Generator | None) -> Tensor:
    """Standard normal draws made on the generator's device, returned on ``device``."""
    source = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=source).to(device)


def reconstruction_loss(params: MixtureParams, strokes5: Tensor, lengths: Tensor, *,
                        mask_pen: bool = False) -> Tensor:
    """Magenta's reconstruction loss L_R (scalar).

    Mean over all ``B * T`` steps of: the offset mixture's negative log-likelihood on drawing
    rows (``t < lengths``) plus the pen cross-entropy on every step (Magenta's training mode)
    or only on drawing rows (``mask_pen=True``, Magenta's eval mode). Magenta adds 1e-6 inside
    the log; here the mixture is evaluated with logsumexp instead.
    """
    check_sequences(strokes5, lengths)
    strokes5 = strokes5.to(params.mu_x.device, params.mu_x.dtype)
    lengths = lengths.to(params.mu_x.device)
    steps = torch.arange(strokes5.shape[1], device=strokes5.device)
    drawing = steps.unsqueeze(0) < lengths.unsqueeze(1)
    offset_nll = torch.where(
        drawing, -offset_log_prob(params, strokes5[..., 0], strokes5[..., 1]), 0.0
    )
    pen_nll = -pen_log_prob(params, strokes5[..., 2:5].argmax(dim=-1))
    if mask_pen:
        pen_nll = torch.where(drawing, pen_nll, 0.0)
    return (offset_nll + pen_nll).mean()


def kl_loss(mu: Tensor, presig: Tensor, kl_tolerance: float = 0.0) -> Tensor:
    """Magenta's KL cost ``max(-0.5 mean(1 + presig - mu^2 - exp(presig)), kl_tolerance)``."""
    kl = -0.5 * torch.mean(1.0 + presig - mu.square() - torch.exp(presig))
    return torch.clamp(kl, min=kl_tolerance)


def tensor_mismatch(expected: Mapping[str, Any], given: Mapping[str, Any]
                    ) -> tuple[list[str], list[str], list[str]]:
    """Names (sorted) of the tensors or arrays ``given`` lacks, has beyond ``expected``, and
    has with another shape; three empty lists when the two have the same architecture."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong = sorted(k for k in set(expected) & set(given) if expected[k].shape != given[k].shape)
    return missing, unexpected, wrong
