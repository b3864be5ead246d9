"""The C++ decoder loops (sketchrl.models.native) compute what the Python loops compute, bit for
bit in float32, and everything falls back to Python when they are off or cannot be built."""

from __future__ import annotations

import logging

import pytest
import torch

from sketchrl.models import SketchRNN, SketchRNNConfig, load_model
from sketchrl.models import native as native_module
from sketchrl.models.fused_lstm import LSTMSequence, recurrence_backward
from sketchrl.models.native import SWITCH, native_loops


@pytest.fixture(scope="module")
def loops():
    """The compiled loops: this machine (and CI's) has a C++ compiler, so they must build."""
    compiled = native_loops()
    assert compiled is not None, "the C++ decoder loops did not build (see the log warning)"
    return compiled


def tiny(conditional: bool, dtype: torch.dtype) -> SketchRNN:
    torch.manual_seed(0)
    config = SketchRNNConfig(conditional=conditional, enc_rnn_size=8, dec_rnn_size=16,
                             z_size=4, num_mixture=3, max_seq_len=80)
    model = SketchRNN(config).eval().to(dtype)
    with torch.no_grad():
        model.decoder.output.bias[2] = -1.5  # sketches of mixed lengths
    return model


def sample_both(monkeypatch, model: SketchRNN, n: int, max_len: int, grad: bool):
    """The same sampling call with the C++ loops and with the Python ones: (rollout, generator
    state, parameter gradients of the total log-probability) for each."""
    results = []
    for switch in ("1", "0"):
        monkeypatch.setenv(SWITCH, switch)
        generator = torch.Generator().manual_seed(5)
        rollout = model.sample(n, temperature=0.5, max_len=max_len, grad=grad,
                               generator=generator, keep_outputs=True)
        grads = None
        if grad:
            parameters = [p for p in model.parameters() if p.requires_grad]
            grads = torch.autograd.grad(rollout.total_log_prob().sum(), parameters,
                                        allow_unused=True)
        results.append((rollout, generator.get_state(), grads))
    return results


def assert_same(native, python, exact: bool) -> None:
    (fast, fast_state, fast_grads), (slow, slow_state, slow_grads) = native, python
    check = torch.equal if exact else (
        lambda a, b: torch.allclose(a, b, rtol=1e-10, atol=1e-10))
    assert fast.strokes.shape == slow.strokes.shape
    for name in ("strokes", "log_probs", "outputs", "hidden"):
        assert check(getattr(fast, name).detach(), getattr(slow, name).detach()), name
    assert torch.equal(fast.lengths, slow.lengths) and torch.equal(fast.mask, slow.mask)
    assert torch.equal(fast_state, slow_state), "the generators drew different amounts"
    if fast_grads is not None:
        for a, b in zip(fast_grads, slow_grads, strict=True):
            assert (a is None) == (b is None)
            if a is not None:
                assert check(a, b)


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("max_len", [31, 32, 33, 250])
def test_real_bird_float32_is_bit_identical(loops, monkeypatch, shared_assets, grad, max_len):
    """Sampling (and, with grad, the differentiated sampling pass) of the real Magenta bird:
    strokes, log-probabilities, outputs, gradients and the generator's state equal the Python
    loops' exactly, at and around the noise chunk's boundary (32 steps)."""
    model = load_model("sketchrnn:bird").eval()
    native, python = sample_both(monkeypatch, model, 16, max_len, grad)
    assert_same(native, python, exact=True)
    if max_len == 250:
        assert len(set(native[0].lengths.tolist())) > 1, "every sketch ended at the same step"


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_models_agree(loops, monkeypatch, conditional, dtype):
    model = tiny(conditional, dtype)
    native, python = sample_both(monkeypatch, model, 12, 60, grad=True)
    assert_same(native, python, exact=dtype == torch.float32)
    assert native[0].strokes.dtype == dtype


def test_backward_recurrence_is_bit_identical_and_exact(loops):
    torch.manual_seed(1)
    steps, batch, hidden = 7, 3, 8
    activations = torch.rand(steps, batch, 4 * hidden)
    cells, grad_hidden = torch.randn(steps, batch, hidden), torch.randn(steps, batch, hidden)
    c0, w_hh = torch.randn(batch, hidden), torch.randn(hidden, 4 * hidden)
    native = loops.lstm_backward(grad_hidden, activations, cells, c0, w_hh.t().contiguous())
    python = recurrence_backward(grad_hidden, activations, cells, c0, w_hh)
    for a, b in zip(native, python, strict=True):
        assert torch.equal(a, b)
    args = [torch.randn(*shape, dtype=torch.float64, requires_grad=True)
            for shape in ((3, 5, 4 * hidden), (3, hidden), (3, hidden), (hidden, 4 * hidden))]
    assert torch.autograd.gradcheck(lambda a, b, c, d: LSTMSequence.apply(a, b, c, d, None),
                                    args)


def test_bad_buffers_are_refused_not_written(loops):
    h = torch.zeros(2, 4)
    with pytest.raises(RuntimeError, match="contiguous CPU"):
        loops.lstm_backward(torch.zeros(3, 4, 2).transpose(1, 2), torch.zeros(3, 2, 16), h,
                            h[:, :4], torch.zeros(16, 4))


def test_switched_off_or_unbuildable_falls_back_to_python(monkeypatch, caplog):
    model = tiny(False, torch.float32)
    monkeypatch.setenv(SWITCH, "0")
    assert native_loops() is None
    off = model.sample(4, max_len=20, generator=torch.Generator().manual_seed(0))

    def broken(*args, **kwargs):
        raise RuntimeError("Error building extension 'sketchrl_decoder_loops'\nmore")

    monkeypatch.setenv(SWITCH, "1")
    monkeypatch.setattr("torch.utils.cpp_extension.load", broken)
    native_module._compiled.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="sketchrl.models.native"):
            assert native_loops() is None
            fallback = model.sample(4, max_len=20, generator=torch.Generator().manual_seed(0))
    finally:
        native_module._compiled.cache_clear()
    assert "unavailable (RuntimeError: Error building extension" in caplog.text
    assert torch.equal(off.strokes, fallback.strokes)


def test_a_first_build_is_announced(monkeypatch, caplog):
    """The first use pauses for about a minute: the user is told why (at the CLI's default
    level, WARNING), and only then."""
    built = {"value": False}
    monkeypatch.setenv(SWITCH, "1")
    monkeypatch.setattr(native_module, "_built", lambda extension: built["value"])
    monkeypatch.setattr("torch.utils.cpp_extension.load", lambda *args, **kwargs: "loops")
    try:
        for value in (False, True):
            built["value"] = value
            native_module._compiled.cache_clear()
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="sketchrl.models.native"):
                assert native_loops() == "loops"
            assert ("compiling sketchrl's C++ decoder loops" in caplog.text) == (not value)
    finally:
        native_module._compiled.cache_clear()
