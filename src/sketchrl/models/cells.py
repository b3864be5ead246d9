"""Magenta's recurrent cells for SketchRNN, registered by name in :data:`CELLS`.

A cell is ``forward(x (B, input_size), state (B, state_size)) -> (h (B, num_units), state)``.
The state is one flat tensor laid out exactly as Magenta's (so ``tanh(W z + b)`` maps onto it
and TensorFlow / sketch-rnn-js weights load unchanged); ``output(state)`` reads ``h`` from it.
Weights are stored the Magenta way round: ``W_xh (input, 4H)``, ``W_hh (H, 4H)``, gates in the
order i, g, f, o, and the forget gate gets ``+forget_bias`` (1.0).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sketchrl.errors import ConfigError

FORGET_BIAS = 1.0
LAYER_NORM_EPSILON = 1e-3
#: Environment variable that, set to "0", keeps subnormal floats in the backward pass.
FTZ_SWITCH = "SKETCHRL_FTZ"


def lstm_orthogonal_(weight: Tensor, gates: int = 4) -> Tensor:
    """Magenta's LSTM init: each gate's ``(rows, H)`` block of ``weight`` is orthogonal."""
    with torch.no_grad():
        for block in weight.chunk(gates, dim=1):
            nn.init.orthogonal_(block)
    return weight


def layer_norm_blocks(x: Tensor, blocks: int, gamma: Tensor, beta: Tensor | None) -> Tensor:
    """Normalise each of ``blocks`` equal slices of the last axis separately (Magenta eps 1e-3)."""
    shaped = x.reshape(*x.shape[:-1], blocks, x.shape[-1] // blocks)
    mean = shaped.mean(dim=-1, keepdim=True)
    var = (shaped - mean).square().mean(dim=-1, keepdim=True)
    normed = ((shaped - mean) * torch.rsqrt(var + LAYER_NORM_EPSILON)).reshape(x.shape)
    return normed * gamma + beta if beta is not None else normed * gamma


class Dense(nn.Module):
    """``x @ weight + bias`` with ``weight (in, out)`` as Magenta / sketch-rnn-js store it."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 init_std: float | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        if init_std is None:  # TensorFlow's default (Glorot uniform)
            nn.init.xavier_uniform_(self.weight)
        else:
            nn.init.normal_(self.weight, std=init_std)

    def forward(self, x: Tensor) -> Tensor:
        out = x @ self.weight
        return out + self.bias if self.bias is not None else out


class _FlushSubnormalGradient(torch.autograd.Function):
    """Identity forward; the backward pass sets the gradient's subnormal values to zero."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        subnormal = (grad.abs() < torch.finfo(grad.dtype).tiny) & (grad != 0)
        return grad.masked_fill(subnormal, 0.0)


def subnormal_flushing_enabled() -> bool:
    """False when ``SKETCHRL_FTZ=0``: the head's gradient flush and the trainer's FTZ/DAZ."""
    return os.environ.get(FTZ_SWITCH, "1") != "0"


def flush_subnormal_gradient(x: Tensor) -> Tensor:
    """``x``, whose gradient arrives with its subnormal values (below 1.2e-38 in float32) set
    to zero, on a CPU unless ``SKETCHRL_FTZ=0``.

    The mixture head's gradients hold a few thousand (components of negligible weight), and
    x86 multiplies subnormals up to 100x slower: left in, they slowed the output layer's
    weight-gradient product several times over. Flushing the values
    in the tensor, rather than the CPU's FTZ/DAZ flags, also reaches the matrix library's
    worker threads (``torch.set_flush_denormal`` sets only the calling thread's flags). Terms
    below 1.2e-38 cannot change a float32 weight update.
    """
    if (not x.requires_grad or x.device.type != "cpu" or not x.is_floating_point()
            or not subnormal_flushing_enabled()):
        return x
    return _FlushSubnormalGradient.apply(x)


class _LSTMBase(nn.Module):
    """Shared by Magenta's LSTM cells: input and recurrent weights, recurrent dropout."""

    def __init__(self, input_size: int, num_units: int, *, dropout_keep_prob: float = 1.0) -> None:
        super().__init__()
        self.input_size = input_size
        self.num_units = num_units
        self.dropout_keep_prob = dropout_keep_prob
        self.W_xh = nn.Parameter(nn.init.xavier_uniform_(torch.empty(input_size, 4 * num_units)))
        self.W_hh = nn.Parameter(lstm_orthogonal_(torch.empty(num_units, 4 * num_units)))

    @property
    def state_size(self) -> int:
        return 2 * self.num_units

    def candidate(self, j: Tensor) -> Tensor:
        """``tanh(j)`` with recurrent dropout (without memory loss) in train mode."""
        return F.dropout(torch.tanh(j), 1.0 - self.dropout_keep_prob, self.training)

    @property
    def dropout_active(self) -> bool:
        return self.training and self.dropout_keep_prob < 1.0

    def sequence(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Run over ``x (B, T, input)`` from ``state``: outputs ``h (B, T, H)`` and the final
        state. The reference loop over :meth:`forward`; cells may override with a fused kernel."""
        outputs = []
        for t in range(x.shape[1]):
            h, state = self(x[:, t], state)
            outputs.append(h)
        if not outputs:
            return x.new_zeros(x.shape[0], 0, self.num_units), state
        return torch.stack(outputs, dim=1), state


class LSTMCell(_LSTMBase):
    """Magenta's ``LSTMCell``: state ``[c, h]``; ``c' = c sig(f+1) + sig(i) tanh(g)``."""

    def __init__(self, input_size: int, num_units: int, *, dropout_keep_prob: float = 1.0) -> None:
        super().__init__(input_size, num_units, dropout_keep_prob=dropout_keep_prob)
        self.bias = nn.Parameter(torch.zeros(4 * num_units))

    def output(self, state: Tensor) -> Tensor:
        return state[:, self.num_units:]

    def forward(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        c, h = state.split(self.num_units, dim=1)
        gates = x @ self.W_xh + h @ self.W_hh + self.bias
        i, j, f, o = gates.chunk(4, dim=1)
        new_c = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * self.candidate(j)
        new_h = torch.tanh(new_c) * torch.sigmoid(o)
        return new_h, torch.cat([new_c, new_h], dim=1)

    def folded_bias(self) -> Tensor:
        """``bias`` with the forget bias added to the f block (so a gate is one sigmoid)."""
        offset = torch.zeros_like(self.bias)
        offset[2 * self.num_units: 3 * self.num_units] = FORGET_BIAS
        return self.bias + offset

    def torch_lstm_weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(w_ih (4H, in), w_hh (4H, H), b_ih, b_hh)`` in ``torch.nn.LSTM``'s layout and gate
        order (i, f, g, o), forget bias folded in; differentiable functions of the parameters."""
        order = [0, 2, 1, 3]  # Magenta's (i, g, f, o) blocks -> torch's (i, f, g, o)

        def reorder(weight: Tensor) -> Tensor:
            blocks = weight.chunk(4, dim=-1)
            return torch.cat([blocks[k] for k in order], dim=-1)

        bias = reorder(self.folded_bias())
        return (reorder(self.W_xh).t(), reorder(self.W_hh).t(), bias, torch.zeros_like(bias))

    def sequence(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One fused ``torch.lstm`` call (oneDNN on CPU, cuDNN on GPU) unless recurrent dropout
        is active; equal to the reference loop to float rounding."""
        if self.dropout_active or x.shape[1] == 0:
            return super().sequence(x, state)
        c, h = state.split(self.num_units, dim=1)
        outputs, last_h, last_c = torch.lstm(
            x, (h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()),
            list(self.torch_lstm_weights()), True, 1, 0.0, False, False, True,
        )
        return outputs, torch.cat([last_c[0], last_h[0]], dim=1)


class LayerNormLSTMCell(_LSTMBase):
    """Magenta's ``LayerNormLSTMCell``: state ``[h, c]``; no bias, layer norm per gate and on c."""

    def __init__(self, input_size: int, num_units: int, *, dropout_keep_prob: float = 1.0) -> None:
        super().__init__(input_size, num_units, dropout_keep_prob=dropout_keep_prob)
        self.ln_all_gamma = nn.Parameter(torch.ones(4 * num_units))
        self.ln_all_beta = nn.Parameter(torch.zeros(4 * num_units))
        self.ln_c_gamma = nn.Parameter(torch.ones(num_units))
        self.ln_c_beta = nn.Parameter(torch.zeros(num_units))

    def output(self, state: Tensor) -> Tensor:
        return state[:, : self.num_units]

    def forward(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h, c = state.split(self.num_units, dim=1)
        gates = layer_norm_blocks(x @ self.W_xh + h @ self.W_hh, 4, self.ln_all_gamma,
                                  self.ln_all_beta)
        i, j, f, o = gates.chunk(4, dim=1)
        new_c = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * self.candidate(j)
        new_h = torch.tanh(layer_norm_blocks(new_c, 1, self.ln_c_gamma, self.ln_c_beta))
        new_h = new_h * torch.sigmoid(o)
        return new_h, torch.cat([new_h, new_c], dim=1)


class HyperNorm(nn.Module):
    """Magenta's ``hyper_norm``: scale (and shift) one gate block by the hyper-network output."""

    def __init__(self, hyper_units: int, embedding: int, num_units: int, *, shift: bool) -> None:
        super().__init__()
        self.zw = Dense(hyper_units, embedding)
        self.alpha = Dense(embedding, num_units, bias=False)
        nn.init.zeros_(self.zw.weight)
        nn.init.ones_(self.zw.bias)
        nn.init.constant_(self.alpha.weight, 0.10 / embedding)  # recurrent batch-norm init
        self.zb = Dense(hyper_units, embedding, bias=False, init_std=0.01) if shift else None
        self.beta = Dense(embedding, num_units, bias=False, init_std=0.0) if shift else None

    def forward(self, hyper_output: Tensor, layer: Tensor) -> Tensor:
        result = self.alpha(self.zw(hyper_output)) * layer
        if self.zb is not None and self.beta is not None:
            result = result + self.beta(self.zb(hyper_output))
        return result


class HyperLSTMCell(_LSTMBase):
    """Magenta's ``HyperLSTMCell`` (layer norm on): state ``[h, hyper_h, c, hyper_c]``."""

    GATES = ("i", "j", "f", "o")

    def __init__(self, input_size: int, num_units: int, *, dropout_keep_prob: float = 1.0,
                 hyper_num_units: int = 256, hyper_embedding_size: int = 32) -> None:
        super().__init__(input_size, num_units, dropout_keep_prob=dropout_keep_prob)
        self.hyper_num_units = hyper_num_units
        self.hyper_cell = LayerNormLSTMCell(input_size + num_units, hyper_num_units)
        self.bias = nn.Parameter(torch.zeros(4 * num_units))
        self.hyper_x = nn.ModuleDict({
            g: HyperNorm(hyper_num_units, hyper_embedding_size, num_units, shift=False)
            for g in self.GATES
        })
        self.hyper_h = nn.ModuleDict({
            g: HyperNorm(hyper_num_units, hyper_embedding_size, num_units, shift=True)
            for g in self.GATES
        })
        self.ln_all_gamma = nn.Parameter(torch.ones(4 * num_units))
        self.ln_all_beta = nn.Parameter(torch.zeros(4 * num_units))
        self.ln_c_gamma = nn.Parameter(torch.ones(num_units))
        self.ln_c_beta = nn.Parameter(torch.zeros(num_units))

    @property
    def state_size(self) -> int:
        return 2 * (self.num_units + self.hyper_num_units)

    def output(self, state: Tensor) -> Tensor:
        return state[:, : self.num_units]

    def forward(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        n, k = self.num_units, self.hyper_num_units
        h, hyper_h, c, hyper_c = state.split([n, k, n, k], dim=1)
        hyper_out, hyper_state = self.hyper_cell(
            torch.cat([x, h], dim=1), torch.cat([hyper_h, hyper_c], dim=1)
        )
        xh = (x @ self.W_xh).chunk(4, dim=1)
        hh = (h @ self.W_hh).chunk(4, dim=1)
        bias = self.bias.chunk(4)
        gates = [
            self.hyper_x[g](hyper_out, xh[k_]) + self.hyper_h[g](hyper_out, hh[k_]) + bias[k_]
            for k_, g in enumerate(self.GATES)
        ]
        gates_normed = layer_norm_blocks(torch.cat(gates, dim=1), 4, self.ln_all_gamma,
                                         self.ln_all_beta)
        i, j, f, o = gates_normed.chunk(4, dim=1)
        new_c = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * self.candidate(j)
        new_h = torch.tanh(layer_norm_blocks(new_c, 1, self.ln_c_gamma, self.ln_c_beta))
        new_h = new_h * torch.sigmoid(o)
        new_hyper_h, new_hyper_c = hyper_state.split(k, dim=1)
        return new_h, torch.cat([new_h, new_hyper_h, new_c, new_hyper_c], dim=1)


CellFactory = Callable[..., nn.Module]


def _hyper(input_size: int, num_units: int, *, dropout_keep_prob: float = 1.0,
           hyper_num_units: int = 256, hyper_embedding_size: int = 32) -> HyperLSTMCell:
    return HyperLSTMCell(input_size, num_units, dropout_keep_prob=dropout_keep_prob,
                         hyper_num_units=hyper_num_units,
                         hyper_embedding_size=hyper_embedding_size)


def _plain(cls: type[_LSTMBase]) -> CellFactory:
    def factory(input_size: int, num_units: int, *, dropout_keep_prob: float = 1.0,
                **_: int) -> _LSTMBase:
        return cls(input_size, num_units, dropout_keep_prob=dropout_keep_prob)

    return factory


#: name -> factory(input_size, num_units, *, dropout_keep_prob, hyper_num_units,
#: hyper_embedding_size); the names are Magenta's ``enc_model`` / ``dec_model`` values.
CELLS: dict[str, CellFactory] = {
    "lstm": _plain(LSTMCell),
    "layer_norm": _plain(LayerNormLSTMCell),
    "hyper": _hyper,
}


def build_cell(name: str, input_size: int, num_units: int, **options: float | int) -> nn.Module:
    """A cell from :data:`CELLS`; an unknown name is a ConfigError listing the valid ones."""
    if name not in CELLS:
        raise ConfigError(f"unknown cell {name!r}; valid cells: {', '.join(CELLS)}")
    return CELLS[name](input_size, num_units, **options)
