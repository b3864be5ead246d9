"""The output head: pen-state softmax + mixture of bivariate Gaussians, in log space.

The decoder's output layer gives ``y (..., 6M + 3)``: 3 pen logits (p1 pen down, p2 pen up,
p3 end), then six blocks of M: pi logits, mu_x, mu_y, log sigma_x, log sigma_y and the
pre-tanh correlation (the sketch-rnn-js / Magenta layout).

Temperature (:class:`Temperature`): the ``paper`` semantics (the SketchRNN paper, sketchrl's
default) divide the pi and pen logits by tau and multiply sigma by sqrt(tau); ``magenta-js``
(``@magenta/sketch``'s default) divides the logits by ``0.5 + 0.5 tau`` instead, sigma still times
sqrt(tau). A separate ``pen`` temperature overrides the logits' divisor under either semantics.
Magenta's TF sampler multiplies sigma by tau (``sigma_scale="linear"``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from sketchrl.errors import ConfigError

PEN_DOWN, PEN_UP, PEN_END = 0, 1, 2
#: |rho| is kept below 1 - RHO_MARGIN where densities are evaluated and samples drawn.
RHO_MARGIN = 1e-5
LOG_2PI = math.log(2.0 * math.pi)

#: sigma_scale name -> log of the factor sigma is multiplied by at temperature tau.
SIGMA_SCALES: dict[str, Callable[[float], float]] = {
    "sqrt": lambda tau: 0.5 * math.log(tau),
    "linear": lambda tau: math.log(tau),
}


class MixtureParams(NamedTuple):
    """Distribution of one stroke-5 row (any leading shape ``...``); all log-probs normalised."""

    pen_log_probs: Tensor  # (..., 3) log-softmax over (pen down, pen up, end)
    log_pi: Tensor  # (..., M) log-softmax mixture weights
    mu_x: Tensor  # (..., M)
    mu_y: Tensor  # (..., M)
    log_sigma_x: Tensor  # (..., M)
    log_sigma_y: Tensor  # (..., M)
    rho: Tensor  # (..., M) correlation tanh(raw) in (-1, 1)


def split_output(y: Tensor, num_mixture: int) -> MixtureParams:
    """Mixture parameters from the raw output layer ``y (..., 6M + 3)``."""
    if y.shape[-1] != 3 + 6 * num_mixture:
        raise ValueError(f"output has {y.shape[-1]} values, expected {3 + 6 * num_mixture}")
    pen_logits, rest = y[..., :3], y[..., 3:]
    pi, mu_x, mu_y, log_sx, log_sy, rho_raw = rest.split(num_mixture, dim=-1)
    return MixtureParams(
        F.log_softmax(pen_logits, dim=-1), F.log_softmax(pi, dim=-1), mu_x, mu_y, log_sx, log_sy,
        torch.tanh(rho_raw),
    )


#: semantics name -> the logits' divisor at temperature tau (when no pen temperature is given).
TEMPERATURE_SEMANTICS: dict[str, Callable[[float], float]] = {
    "paper": lambda tau: tau,
    "magenta-js": lambda tau: 0.5 + 0.5 * tau,
}


def check_temperature(temperature: float, sigma_scale: str = "sqrt") -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
            or not temperature > 0 or not math.isfinite(temperature):
        raise ConfigError(f"temperature={temperature!r}: use a value > 0 (e.g. 0.5)")
    if sigma_scale not in SIGMA_SCALES:
        raise ConfigError(
            f"sigma_scale={sigma_scale!r}: use one of {', '.join(SIGMA_SCALES)}"
        )


@dataclasses.dataclass(frozen=True)
class Temperature:
    """How sampling sharpens the output distribution.

    Attributes:
        value: tau > 0; sigma is multiplied by sqrt(tau) (``sigma_scale="sqrt"``) or by tau
            (``"linear"``, Magenta's TF sampler).
        pen: divisor of the pen and mixture-weight logits; None: tau under the ``paper``
            semantics, ``0.5 + 0.5 tau`` under ``magenta-js`` (``@magenta/sketch``'s default).
        semantics: ``paper`` or ``magenta-js``.
        sigma_scale: ``sqrt`` or ``linear``.
    """

    value: float = 0.5
    pen: float | None = None
    semantics: str = "paper"
    sigma_scale: str = "sqrt"

    def __post_init__(self) -> None:
        check_temperature(self.value, self.sigma_scale)
        if self.pen is not None:
            try:
                check_temperature(self.pen)
            except ConfigError:
                raise ConfigError(
                    f"pen temperature={self.pen!r}: use a value > 0 (or leave it unset)"
                ) from None
        if self.semantics not in TEMPERATURE_SEMANTICS:
            raise ConfigError(
                f"temperature semantics {self.semantics!r}: use one of "
                f"{', '.join(TEMPERATURE_SEMANTICS)}"
            )

    @property
    def logit_divisor(self) -> float:
        """What the pen and mixture-weight logits are divided by."""
        if self.pen is not None:
            return float(self.pen)
        return float(TEMPERATURE_SEMANTICS[self.semantics](self.value))

    @property
    def log_sigma_offset(self) -> float:
        """``log`` of the factor every sigma is multiplied by."""
        return SIGMA_SCALES[self.sigma_scale](self.value)

    def describe(self) -> str:
        """E.g. ``0.5 (paper)`` or ``0.5 (magenta-js: logits / 0.75)``."""
        if self.pen is None and self.semantics == "paper":
            return f"{self.value:g} (paper)"
        return f"{self.value:g} ({self.semantics}: logits / {self.logit_divisor:g})"


def as_temperature(temperature: float | Temperature, sigma_scale: str = "sqrt") -> Temperature:
    """A :class:`Temperature` from a plain tau (paper semantics) or an existing one."""
    if isinstance(temperature, Temperature):
        return temperature
    return Temperature(temperature, sigma_scale=sigma_scale)


def apply_temperature(params: MixtureParams, temperature: float | Temperature,
                      sigma_scale: str = "sqrt") -> MixtureParams:
    """Logits divided by the temperature's divisor (re-normalised), sigma scaled by sqrt(tau)
    or tau. A plain float ``temperature`` is tau under the paper's semantics."""
    temperature = as_temperature(temperature, sigma_scale)
    divisor, log_scale = temperature.logit_divisor, temperature.log_sigma_offset
    if divisor != 1.0:
        params = params._replace(
            pen_log_probs=F.log_softmax(params.pen_log_probs / divisor, dim=-1),
            log_pi=F.log_softmax(params.log_pi / divisor, dim=-1),
        )
    if log_scale != 0.0:
        params = params._replace(
            log_sigma_x=params.log_sigma_x + log_scale,
            log_sigma_y=params.log_sigma_y + log_scale,
        )
    return params


def _safe_rho(rho: Tensor) -> Tensor:
    return rho.clamp(-1.0 + RHO_MARGIN, 1.0 - RHO_MARGIN)


def offset_log_prob(params: MixtureParams, dx: Tensor, dy: Tensor) -> Tensor:
    """``log sum_k pi_k N2((dx, dy) | k)`` by logsumexp; ``dx``, ``dy`` have the leading shape."""
    rho = _safe_rho(params.rho)
    one_minus_rho2 = 1.0 - rho.square()
    norm_x = (dx.unsqueeze(-1) - params.mu_x) * torch.exp(-params.log_sigma_x)
    norm_y = (dy.unsqueeze(-1) - params.mu_y) * torch.exp(-params.log_sigma_y)
    quad = (norm_x.square() + norm_y.square() - 2.0 * rho * norm_x * norm_y) / one_minus_rho2
    log_normal = (-LOG_2PI - params.log_sigma_x - params.log_sigma_y
                  - 0.5 * torch.log(one_minus_rho2) - 0.5 * quad)
    return torch.logsumexp(params.log_pi + log_normal, dim=-1)


def pen_log_prob(params: MixtureParams, pen: Tensor) -> Tensor:
    """Log-probability of pen state index ``pen`` (0 down, 1 up, 2 end)."""
    return params.pen_log_probs.gather(-1, pen.long().unsqueeze(-1)).squeeze(-1)


def row_log_prob(params: MixtureParams, rows: Tensor) -> Tensor:
    """Log-probability of stroke-5 ``rows (..., 5)``: pen state, plus the offset unless p3."""
    pen = rows[..., 2:5].argmax(dim=-1)
    offset = offset_log_prob(params, rows[..., 0], rows[..., 1])
    return pen_log_prob(params, pen) + torch.where(pen == PEN_END, 0.0, offset)


class StepNoise(NamedTuple):
    """The random numbers one sampling step uses (drawn by the caller's generator)."""

    pen_uniform: Tensor  # (B, 3) in (0, 1), Gumbel-max for the pen state
    pi_uniform: Tensor  # (B, M) in (0, 1), Gumbel-max for the mixture component
    normal: Tensor  # (B, 2) standard normal


def draw_step_noise(batch: int, num_mixture: int, *, device: torch.device,
                    generator: torch.Generator | None = None) -> StepNoise:
    """Noise for one step, drawn on the generator's device and moved to ``device``."""
    source = generator.device if generator is not None else device
    uniform = torch.rand(batch, 3 + num_mixture, generator=generator, device=source)
    uniform = uniform.clamp(1e-12, 1.0 - 1e-7)
    normal = torch.randn(batch, 2, generator=generator, device=source)
    uniform, normal = uniform.to(device), normal.to(device)
    return StepNoise(uniform[:, :3], uniform[:, 3:], normal)


def _gumbel_argmax(log_probs: Tensor, uniform: Tensor) -> Tensor:
    return (log_probs - torch.log(-torch.log(uniform))).argmax(dim=-1)


def sample_rows(params: MixtureParams, noise: StepNoise) -> Tensor:
    """Sample stroke-5 rows ``(B, 5)`` (no gradient flows into them); end rows are [0,0,0,0,1]."""
    with torch.no_grad():
        pen = _gumbel_argmax(params.pen_log_probs, noise.pen_uniform)
        k = _gumbel_argmax(params.log_pi, noise.pi_uniform).unsqueeze(-1)

        def pick(values: Tensor) -> Tensor:
            return values.gather(-1, k).squeeze(-1)

        sigma_x, sigma_y = pick(params.log_sigma_x).exp(), pick(params.log_sigma_y).exp()
        rho = _safe_rho(pick(params.rho))
        e1, e2 = noise.normal.unbind(-1)
        dx = pick(params.mu_x) + sigma_x * e1
        dy = pick(params.mu_y) + sigma_y * (rho * e1 + torch.sqrt(1.0 - rho.square()) * e2)
        drawing = pen != PEN_END
        rows = torch.cat([
            torch.stack([dx * drawing, dy * drawing], dim=-1),
            F.one_hot(pen, 3).to(dx.dtype),
        ], dim=-1)
    return rows
