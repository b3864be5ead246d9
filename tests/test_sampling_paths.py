"""The fast paths compute what the reference paths compute: the fused LSTM step and sequence,
the differentiated sampling pass, Gumbel sampling from raw outputs, temperatures, prefixes."""

from __future__ import annotations

import math

import pytest
import torch

from sketchrl.models import SketchRNN, SketchRNNConfig, load_model
from sketchrl.models.cells import _LSTMBase
from sketchrl.models.fused_lstm import (
    LSTMSequence,
    LSTMWeights,
    RecordedInputProjection,
    lstm_sequence,
)
from sketchrl.models.mixture import (
    StepNoise,
    Temperature,
    apply_temperature,
    row_log_prob,
    sample_rows,
    split_output,
)
from sketchrl.models.sampling import sample_from_output


def tiny(conditional: bool, dec_model: str = "lstm", seed: int = 0) -> SketchRNN:
    torch.manual_seed(seed)
    config = SketchRNNConfig(conditional=conditional, dec_model=dec_model, enc_rnn_size=8,
                             dec_rnn_size=16, z_size=4, num_mixture=3, max_seq_len=30)
    model = SketchRNN(config).eval()
    with torch.no_grad():
        model.decoder.output.bias[2] = -1.0  # sketches of mixed lengths
    return model


def reference_step_log_probs(model: SketchRNN, rollout, temperature) -> torch.Tensor:
    """Per-step log-probabilities by today's reference: the cell's forward, step by step."""
    batch = len(rollout)
    inputs = torch.cat([model.start_token.expand(batch, 1, 5), rollout.strokes[:, :-1]], dim=1)
    z = rollout.z
    if z is not None:
        inputs = torch.cat([inputs, z.unsqueeze(1).expand(-1, inputs.shape[1], -1)], dim=2)
    h, _ = _LSTMBase.sequence(model.decoder.cell, inputs, model.decoder.start_state(batch, z))
    params = apply_temperature(split_output(model.decoder.output(h), model.config.num_mixture),
                               temperature)
    return torch.where(rollout.mask, row_log_prob(params, rollout.strokes), 0.0)


def test_lstm_sequence_gradients_are_exact():
    torch.manual_seed(0)
    args = [torch.randn(*shape, dtype=torch.float64, requires_grad=True)
            for shape in ((3, 5, 16), (3, 4), (3, 4), (4, 16))]
    assert torch.autograd.gradcheck(lambda a, b, c, d: LSTMSequence.apply(a, b, c, d, None),
                                    args)


@pytest.mark.parametrize("per_sketch_bias", [False, True])
def test_recorded_input_projection_has_the_expressions_gradients_bit_for_bit(per_sketch_bias):
    """The placeholder projection the sampling pass differentiates through gives exactly the
    gradients autograd gives ``inputs @ w + bias`` for the upstream gradient LSTMSequence
    passes (a step-major buffer seen batch-major), and its value is never computed."""
    torch.manual_seed(0)
    batch, steps, hidden = 16, 250, 512
    inputs = torch.randn(batch, steps, 5)
    upstream = torch.randn(steps, batch, 4 * hidden).transpose(0, 1)
    grads = []
    for placeholder in (True, False):
        w = torch.randn(8, 4 * hidden, generator=torch.Generator().manual_seed(1))
        w.requires_grad_(True)
        z = torch.randn(batch, 3, generator=torch.Generator().manual_seed(2),
                        requires_grad=True)
        base = torch.randn(4 * hidden, generator=torch.Generator().manual_seed(3),
                           requires_grad=True)
        bias = torch.addmm(base, z, w[5:]) if per_sketch_bias else base
        if placeholder:
            gates_in = RecordedInputProjection.apply(inputs, w[:5], bias)
            assert gates_in.stride() == (0, 0, 0) and not gates_in.any()
        else:
            gates_in = (inputs @ w[:5]) + bias.unsqueeze(-2)
        grads.append(torch.autograd.grad(gates_in, (w, z, base), upstream, allow_unused=True))
    for fast, reference in zip(*grads, strict=True):
        assert (fast is None) == (reference is None)
        if fast is not None:
            assert torch.equal(fast, reference)


@pytest.mark.parametrize("conditional", [False, True])
def test_every_log_prob_path_agrees_in_float64(conditional):
    """Sampling pass (fused, differentiated by replay) = reference step-by-step sampling =
    fused teacher forcing (torch.lstm) = the reference cell loop, to float64 rounding."""
    model = tiny(conditional).double()
    z = model.sample_prior_z(1, torch.Generator().manual_seed(0))[0] if conditional else None

    def sample(fused: bool):
        return model.sample(6, temperature=0.5, max_len=25, z=z, grad=True, fused=fused,
                            generator=torch.Generator().manual_seed(1))

    fast, slow = sample(True), sample(False)
    assert len(set(fast.lengths.tolist())) > 1
    torch.testing.assert_close(fast.strokes, slow.strokes, rtol=0, atol=1e-9)
    torch.testing.assert_close(fast.log_probs, slow.log_probs, rtol=0, atol=1e-9)
    reference = reference_step_log_probs(model, fast, 0.5)
    torch.testing.assert_close(fast.log_probs, reference, rtol=0, atol=1e-9)
    teacher = model.step_log_probs(fast.strokes, fast.lengths, fast.z, 0.5)
    torch.testing.assert_close(teacher, reference[:, :teacher.shape[1]], rtol=0, atol=1e-9)
    # gradients of the differentiated sampling pass = autograd through the reference loop
    fast.total_log_prob().sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    slow.total_log_prob().sum().backward()
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            torch.testing.assert_close(grads[name], parameter.grad, rtol=1e-7, atol=1e-9)
    assert grads, "no gradient reached the decoder"


def test_fast_paths_agree_with_todays_on_the_real_bird_to_1e5(shared_assets):
    """float32, the real Magenta bird: per-episode log-probabilities of the sampling pass and of
    teacher forcing (fused) agree with the reference loop to a relative 1e-5."""
    model = load_model("sketchrnn:bird").eval()
    rollout = model.sample(8, temperature=0.5, max_len=120, grad=True,
                           generator=torch.Generator().manual_seed(3))
    reference = reference_step_log_probs(model, rollout, 0.5).sum(dim=1)
    teacher = model.log_prob(rollout.strokes, rollout.lengths, None, 0.5)
    sampled = rollout.total_log_prob().detach()
    torch.testing.assert_close(sampled, reference.detach(), rtol=1e-5, atol=0)
    torch.testing.assert_close(teacher.detach(), reference.detach(), rtol=1e-5, atol=0)
    # and in float64 the per-step values agree exactly
    model64 = model.double()
    again = model64.sample(8, temperature=0.5, max_len=120, grad=True,
                           generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(again.log_probs.detach(),
                               reference_step_log_probs(model64, again, 0.5).detach(),
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize("dec_model", ["layer_norm", "hyper"])
def test_other_cells_sample_and_teacher_force_alike(dec_model):
    model = tiny(True, dec_model)
    rollout = model.sample(5, max_len=15, grad=True, generator=torch.Generator().manual_seed(2))
    teacher = model.log_prob(rollout.strokes, rollout.lengths, rollout.z, 0.5)
    torch.testing.assert_close(teacher, rollout.total_log_prob(), rtol=1e-5, atol=1e-4)


def test_torch_lstm_weights_reproduce_the_magenta_cell():
    model = tiny(False).double()
    cell = model.decoder.cell
    x = torch.randn(4, 7, 5, dtype=torch.float64)
    state = torch.randn(4, 32, dtype=torch.float64)
    reference, last = _LSTMBase.sequence(cell, x, state)
    fused, fused_last = cell.sequence(x, state)
    torch.testing.assert_close(fused, reference)
    torch.testing.assert_close(fused_last, last)
    weights = LSTMWeights.of(cell)
    c0, h0 = state.split(16, dim=1)
    replayed = lstm_sequence(x @ weights.w_x + weights.bias, h0, c0, weights.w_hh)
    torch.testing.assert_close(replayed, reference)


def test_sampling_from_raw_outputs_equals_sampling_from_parameters():
    torch.manual_seed(4)
    m = 5
    y = torch.randn(64, 3 + 6 * m)
    uniform = torch.rand(64, 3 + m).clamp(1e-12, 1 - 1e-7)
    normal = torch.randn(64, 2)
    for temperature in (Temperature(0.5), Temperature(0.7, semantics="magenta-js"),
                        Temperature(0.3, pen=0.9), Temperature(0.6, sigma_scale="linear")):
        params = apply_temperature(split_output(y, m), temperature)
        expected = sample_rows(params, StepNoise(uniform[:, :3], uniform[:, 3:], normal))
        gumbel = -torch.log(-torch.log(uniform)) * temperature.logit_divisor
        actual = sample_from_output(y, gumbel, normal, temperature, m)
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_magenta_js_temperature():
    y = torch.randn(3, 3 + 6 * 2)
    params = split_output(y, 2)
    js = apply_temperature(params, Temperature(0.5, semantics="magenta-js"))
    torch.testing.assert_close(js.pen_log_probs, torch.log_softmax(y[:, :3] / 0.75, -1))
    torch.testing.assert_close(js.log_pi, torch.log_softmax(y[:, 3:5] / 0.75, -1))
    torch.testing.assert_close(js.log_sigma_x.exp(), params.log_sigma_x.exp() * math.sqrt(0.5))
    pen = apply_temperature(params, Temperature(0.5, pen=0.2))
    torch.testing.assert_close(pen.pen_log_probs, torch.log_softmax(y[:, :3] / 0.2, -1))
    assert Temperature(0.5, semantics="magenta-js").describe() == \
        "0.5 (magenta-js: logits / 0.75)"


def test_prefix_rows_are_fed_not_sampled():
    model = tiny(False)
    prefix = torch.zeros(4, 3, 5)
    prefix[:, :, 0] = torch.arange(1.0, 4.0)  # dx = 1, 2, 3, pen down
    prefix[:, :, 2] = 1.0
    lengths = torch.tensor([3, 2, 0, 3])
    rollout = model.sample(4, max_len=20, prefix=prefix, prefix_lengths=lengths, grad=True,
                           generator=torch.Generator().manual_seed(0))
    for row, given in enumerate(lengths.tolist()):
        torch.testing.assert_close(rollout.strokes[row, :given], prefix[row, :given])
        assert not rollout.mask[row, :given].any()
        assert rollout.mask[row, given]
        assert rollout.lengths[row] >= given
    # the log-probability of the continuation is teacher forcing's, restricted to the mask
    reference = reference_step_log_probs(model, rollout, 0.5)
    torch.testing.assert_close(rollout.log_probs, reference.detach(), rtol=1e-5, atol=1e-5)
    assert rollout.to_stroke3()[0][:3, 0].tolist() == [1.0, 2.0, 3.0]


def test_sampling_is_seeded_and_trims_finished_steps():
    model = tiny(False)
    a = model.sample(8, max_len=30, generator=torch.Generator().manual_seed(9))
    b = model.sample(8, max_len=30, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a.strokes, b.strokes) and torch.equal(a.log_probs, b.log_probs)
    assert a.strokes.shape[1] == int(a.lengths.clamp(max=29).max()) + 1
    assert a.mask.sum() == (a.lengths + (a.lengths < a.strokes.shape[1])).sum()
