"""The plain LSTM decoder as a few large tensor operations, for sampling and policy gradients.

Magenta's LSTM (gates i, g, f, o; ``c' = c sig(f + 1) + sig(i) tanh(g)``; ``h' = tanh(c')
sig(o)``) is run here with its weights re-arranged once per call: gate columns in torch's order
(i, f, g, o), activated in place, the forget bias folded into the bias, and
the input projection of everything known in advance (z, and for teacher forcing every input row)
done as one matrix product outside the recurrence.

:class:`LSTMSequence` is an autograd function over a whole sequence. Its backward pass runs the
recurrence backwards with one small matrix product per step and computes the weight gradient
of all steps as one large matrix product at the end (as cuDNN and oneDNN do), instead of one
``(H, 4H)`` gradient per step. Its forward pass either runs the recurrence or, for a sequence
that was just sampled with the same weights, takes the activations the sampler recorded: the
sampling pass itself is then differentiated, with no second forward pass (and its input
projection, whose values that pass never reads, is a :class:`RecordedInputProjection`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from sketchrl.models.cells import FORGET_BIAS, LSTMCell
from sketchrl.models.native import native_loops_for

#: Magenta's gate blocks (i, g, f, o) -> this module's order (i, f, g, o).
GATE_ORDER = (0, 2, 1, 3)


def reorder_gates(weight: Tensor) -> Tensor:
    """Columns of ``weight (..., 4H)`` from Magenta's gate order to (i, f, g, o)."""
    blocks = weight.chunk(4, dim=-1)
    return torch.cat([blocks[k] for k in GATE_ORDER], dim=-1)


@dataclass
class LSTMWeights:
    """A plain LSTM's weights in gate order (i, f, g, o), differentiable functions of the cell's
    parameters: ``w_x (in, 4H)``, ``w_hh (H, 4H)``, ``bias (4H,)`` (forget bias folded in)."""

    w_x: Tensor
    w_hh: Tensor
    bias: Tensor

    @classmethod
    def of(cls, cell: LSTMCell) -> LSTMWeights:
        offset = torch.zeros_like(cell.bias)
        offset[2 * cell.num_units:3 * cell.num_units] = FORGET_BIAS
        return cls(reorder_gates(cell.W_xh), reorder_gates(cell.W_hh),
                   reorder_gates(cell.bias + offset))


def lstm_step(gates_in: Tensor, h: Tensor, c: Tensor,
              w_hh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One step (no autograd) from the input projection ``gates_in (B, 4H)``: activations
    ``(B, 4H)`` (sigmoid of i, f, o; tanh of g), new ``c`` and new ``h``."""
    hidden = c.shape[1]
    gates = torch.addmm(gates_in, h, w_hh)
    gates[:, :2 * hidden].sigmoid_()
    gates[:, 2 * hidden:3 * hidden].tanh_()
    gates[:, 3 * hidden:].sigmoid_()
    i, f, g, o = gates.split(hidden, dim=1)
    c = torch.addcmul(f * c, i, g)
    h = o * torch.tanh(c)
    return gates, c, h


@dataclass
class Recording:
    """Per-step activations, cell states and outputs of a sampled sequence."""

    activations: list[Tensor] = field(default_factory=list)
    cells: list[Tensor] = field(default_factory=list)
    hidden: list[Tensor] = field(default_factory=list)

    def add(self, activations: Tensor, c: Tensor, h: Tensor) -> None:
        self.activations.append(activations)
        self.cells.append(c)
        self.hidden.append(h)

    def stacked(self, steps: int) -> tuple[Tensor, Tensor, Tensor]:
        return tuple(torch.stack(values[:steps], dim=1)
                     for values in (self.activations, self.cells, self.hidden))


class LSTMSequence(torch.autograd.Function):
    """``h (B, T, H)`` of an LSTM over a sequence, from the input projections
    ``gates_in (B, T, 4H)`` (bias included), ``h0``, ``c0`` and ``w_hh``; see the module doc."""

    @staticmethod
    def forward(ctx, gates_in: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor,
                recorded: tuple[Tensor, Tensor, Tensor] | None = None) -> Tensor:
        if recorded is None:
            recording, h, c = Recording(), h0, c0
            for t in range(gates_in.shape[1]):
                activations, c, h = lstm_step(gates_in[:, t], h, c, w_hh)
                recording.add(activations, c, h)
            recorded = recording.stacked(gates_in.shape[1])
        activations, cells, hidden = recorded
        ctx.save_for_backward(h0, c0, w_hh, activations, cells, hidden)
        return hidden

    @staticmethod
    def backward(ctx, grad_hidden: Tensor):
        h0, c0, w_hh, activations, cells, hidden = ctx.saved_tensors
        size = hidden.shape[2]
        # Step-major layout, so that each step of the loop reads and writes contiguous memory.
        step_major = [x.transpose(0, 1).contiguous() for x in (grad_hidden, activations, cells)]
        native = native_loops_for(hidden.device, hidden.dtype)
        if native is not None:
            grad_gates, dh0, dc0 = native.lstm_backward(*step_major, c0.contiguous(),
                                                        w_hh.t().contiguous())
        else:
            grad_gates, dh0, dc0 = recurrence_backward(*step_major, c0, w_hh)
        h_prev = torch.cat([h0.unsqueeze(0), hidden.transpose(0, 1)[:-1]], dim=0)
        grad_w_hh = h_prev.reshape(-1, size).t() @ grad_gates.reshape(-1, 4 * size)
        return grad_gates.transpose(0, 1), dh0, dc0, grad_w_hh, None


def recurrence_backward(grad_hidden: Tensor, activations: Tensor, cells: Tensor, c0: Tensor,
                        w_hh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The backward recurrence in Python (step-major ``(T, B, ...)`` inputs): gradients of the
    pre-activations ``(T, B, 4H)``, of ``h0`` and of ``c0``. ``csrc/decoder_loops.cpp`` does
    the same products in the same order in one pass per step."""
    steps, batch, size = cells.shape
    i, f, g, o = activations.split(size, dim=2)
    tanh_c = torch.tanh(cells)
    c_prev = torch.cat([c0.unsqueeze(0), cells[:-1]], dim=0)
    # d(pre-activation) = dc * coefficient for i, f, g and dh * coefficient for o.
    coefficients = torch.stack(
        [g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), tanh_c * o * (1 - o)],
        dim=2,
    )  # (T, B, 4, H)
    dc_from_h = (o * (1 - tanh_c * tanh_c)).contiguous()
    forget = f.contiguous()
    grad_gates = torch.empty_like(coefficients)
    w_hh_t = w_hh.t().contiguous()
    dh_next = torch.zeros_like(c0)
    dc_next = torch.zeros_like(c0)
    for t in range(steps - 1, -1, -1):
        dh = grad_hidden[t] + dh_next
        dc = torch.addcmul(dc_next, dh, dc_from_h[t])
        torch.mul(coefficients[t, :, :3], dc.unsqueeze(1), out=grad_gates[t, :, :3])
        torch.mul(coefficients[t, :, 3], dh, out=grad_gates[t, :, 3])
        dc_next = dc * forget[t]
        dh_next = grad_gates[t].view(batch, 4 * size) @ w_hh_t
    return grad_gates.view(steps, batch, 4 * size), dh_next, dc_next


class RecordedInputProjection(torch.autograd.Function):
    """``inputs @ w + bias`` (``inputs (B, T, in)``, ``w (in, 4H)``, ``bias (4H,)`` or ``(B,
    4H)``) for an :class:`LSTMSequence` over recorded activations, which never reads its input
    projection's values: the forward pass returns a zero-stride placeholder of the right shape
    instead of computing and writing ``(B, T, 4H)`` values, and the backward pass runs the
    products autograd runs for the expression, on the same layouts (the same gradients, bit for
    bit; ``tests/test_sampling_paths.py``)."""

    @staticmethod
    def forward(ctx, inputs: Tensor, w: Tensor, bias: Tensor) -> Tensor:
        ctx.save_for_backward(inputs, w)
        ctx.bias_shape = bias.unsqueeze(-2).shape
        return w.new_zeros(()).expand(*inputs.shape[:2], w.shape[1])

    @staticmethod
    def backward(ctx, grad: Tensor):
        inputs, w = ctx.saved_tensors
        flat_grad = grad.reshape(-1, grad.shape[-1])  # the folded matmul's view, as a copy
        flat_inputs = inputs.reshape(-1, inputs.shape[-1])
        grad_inputs = grad_w = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_inputs = flat_grad.mm(w.t()).view(inputs.shape)
        if ctx.needs_input_grad[1]:
            grad_w = flat_inputs.t().mm(flat_grad)
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum_to_size(ctx.bias_shape).squeeze(-2)
        return grad_inputs, grad_w, grad_bias


def lstm_sequence(gates_in: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor,
                  recorded: tuple[Tensor, Tensor, Tensor] | None = None) -> Tensor:
    """:class:`LSTMSequence` (autograd) or, without gradients, the plain recurrence."""
    if recorded is not None and not torch.is_grad_enabled():
        return recorded[2]
    return LSTMSequence.apply(gates_in, h0, c0, w_hh, recorded)
