"""SketchRNN model: config, cells, mixture head, teacher forcing, sampling, losses, save/load."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchrl.errors import ConfigError
from sketchrl.models import (
    CELLS,
    Rollout,
    SketchRNN,
    SketchRNNConfig,
    apply_temperature,
    build_cell,
    kl_loss,
    load_model,
    reconstruction_loss,
    sample_sketches,
    save_model,
    split_output,
)
from sketchrl.models.mixture import StepNoise, offset_log_prob, row_log_prob, sample_rows

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def tiny_config(**overrides) -> SketchRNNConfig:
    values = dict(name="tiny", enc_rnn_size=6, dec_rnn_size=8, z_size=4, num_mixture=3,
                  max_seq_len=12, use_recurrent_dropout=False, hyper_num_units=5,
                  hyper_embedding_size=3)
    values.update(overrides)
    return SketchRNNConfig(**values)


def tiny_model(seed: int = 0, **overrides) -> SketchRNN:
    torch.manual_seed(seed)
    model = SketchRNN(tiny_config(**overrides))
    with torch.no_grad():  # larger output weights so the mixture is far from uniform
        model.decoder.output.weight.mul_(3.0)
    return model.eval()


def random_strokes(batch: int, steps: int, lengths: list[int], seed: int = 0) -> torch.Tensor:
    """Stroke-5 rows: random offsets and pen states up to lengths[b], then end rows."""
    gen = torch.Generator().manual_seed(seed)
    strokes = torch.zeros(batch, steps, 5)
    strokes[..., 4] = 1.0
    for b, length in enumerate(lengths):
        strokes[b, :length, :2] = torch.randn(length, 2, generator=gen)
        pen = (torch.rand(length, generator=gen) < 0.3).long()
        strokes[b, :length, 2:] = torch.nn.functional.one_hot(pen, 3).float()
    return strokes


# -- config -------------------------------------------------------------------------------------
def test_config_json_round_trip(tmp_path):
    config = tiny_config(dec_model="layer_norm", conditional=False, scale_factor=71.3754,
                         kl_weight=1.0, name="bird")
    config.save_json(tmp_path / "c.json")
    loaded = SketchRNNConfig.load_json(tmp_path / "c.json")
    assert loaded == config
    assert loaded != tiny_config()


def test_config_rejects_bad_values_and_lists_cells():
    with pytest.raises(ConfigError, match="lstm, layer_norm, hyper"):
        SketchRNNConfig(dec_model="gru")
    with pytest.raises(ConfigError, match="num_mixture"):
        SketchRNNConfig(num_mixture=0)
    with pytest.raises(ConfigError, match="unknown SketchRNNConfig key"):
        SketchRNNConfig.from_dict({"dec_rnn_sise": 3})


def test_config_from_magenta_owl_hparams():
    hparams = json.loads((REFERENCE / "magenta-owl-lstm-model_config.json").read_text())
    config = SketchRNNConfig.from_magenta(hparams, name="owl")
    assert config.conditional is True and config.use_recurrent_dropout is False
    assert (config.enc_rnn_size, config.dec_rnn_size, config.z_size) == (256, 512, 128)
    assert config.max_seq_len == 174 and config.kl_weight == 1.0 and config.name == "owl"


# -- cells --------------------------------------------------------------------------------------
def test_lstm_cell_matches_magenta_formula():
    torch.manual_seed(1)
    cell = build_cell("lstm", 3, 4)
    with torch.no_grad():
        cell.bias.normal_()
    x, state = torch.randn(2, 3), torch.randn(2, 8)
    h, new_state = cell(x, state)
    c0, h0 = state[:, :4].numpy(), state[:, 4:].numpy()
    gates = x.numpy() @ cell.W_xh.detach().numpy() + h0 @ cell.W_hh.detach().numpy()
    gates = gates + cell.bias.detach().numpy()
    i, g, f, o = np.split(gates, 4, axis=1)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c1 = c0 * sig(f + 1.0) + sig(i) * np.tanh(g)
    h1 = sig(o) * np.tanh(c1)
    np.testing.assert_allclose(h.detach().numpy(), h1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_state.detach().numpy(), np.concatenate([c1, h1], 1),
                               rtol=1e-5, atol=1e-6)
    assert torch.equal(cell.output(new_state), h)


def test_layer_norm_cell_normalises_each_gate():
    torch.manual_seed(2)
    cell = build_cell("layer_norm", 3, 4)
    x, state = torch.randn(2, 3), torch.randn(2, 8)
    h, new_state = cell(x, state)
    h0, c0 = state[:, :4], state[:, 4:]
    gates = (x @ cell.W_xh + h0 @ cell.W_hh).reshape(2, 4, 4)
    normed = (gates - gates.mean(-1, keepdim=True)) / torch.sqrt(gates.var(-1, unbiased=False,
                                                                           keepdim=True) + 1e-3)
    i, g, f, o = normed.unbind(1)
    c1 = c0 * torch.sigmoid(f + 1) + torch.sigmoid(i) * torch.tanh(g)
    c1n = (c1 - c1.mean(-1, keepdim=True)) / torch.sqrt(c1.var(-1, unbiased=False,
                                                               keepdim=True) + 1e-3)
    torch.testing.assert_close(h, torch.tanh(c1n) * torch.sigmoid(o))
    torch.testing.assert_close(new_state, torch.cat([h, c1], 1))  # Magenta's [h, c] layout


@pytest.mark.parametrize("name", sorted(CELLS))
def test_every_cell_steps_with_its_state_size(name):
    cell = build_cell(name, 5, 7, hyper_num_units=4, hyper_embedding_size=2)
    state = torch.zeros(3, cell.state_size)
    h, new_state = cell(torch.randn(3, 5), state)
    assert h.shape == (3, 7) and new_state.shape == state.shape
    assert torch.equal(cell.output(new_state), h)
    assert not torch.equal(new_state, state)


def test_unknown_cell_lists_valid_names():
    with pytest.raises(ConfigError, match="lstm, layer_norm, hyper"):
        build_cell("gru", 5, 7)


# -- mixture head ---------------------------------------------------------------------------
def test_temperature_scales_logits_and_sigma():
    torch.manual_seed(3)
    y = torch.randn(4, 3 + 6 * 5)
    params = split_output(y, 5)
    tau = 0.5
    hot = apply_temperature(params, tau)
    torch.testing.assert_close(hot.log_pi, torch.log_softmax(y[:, 3:8] / tau, -1))
    torch.testing.assert_close(hot.pen_log_probs, torch.log_softmax(y[:, :3] / tau, -1))
    torch.testing.assert_close(hot.log_sigma_x.exp(), params.log_sigma_x.exp() * math.sqrt(tau))
    linear = apply_temperature(params, tau, sigma_scale="linear")
    torch.testing.assert_close(linear.log_sigma_y.exp(), params.log_sigma_y.exp() * tau)
    torch.testing.assert_close(linear.mu_x, params.mu_x)
    with pytest.raises(ConfigError, match="sqrt, linear"):
        apply_temperature(params, tau, sigma_scale="cube")
    with pytest.raises(ConfigError, match="temperature"):
        apply_temperature(params, 0.0)


def test_offset_log_prob_matches_torch_distributions():
    torch.manual_seed(4)
    params = split_output(torch.randn(6, 3 + 6 * 4), 4)
    dx, dy = torch.randn(6), torch.randn(6)
    sx, sy, rho = params.log_sigma_x.exp(), params.log_sigma_y.exp(), params.rho
    cov = torch.stack([torch.stack([sx * sx, rho * sx * sy], -1),
                       torch.stack([rho * sx * sy, sy * sy], -1)], -2)
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=params.log_pi),
        torch.distributions.MultivariateNormal(torch.stack([params.mu_x, params.mu_y], -1), cov),
    )
    expected = mixture.log_prob(torch.stack([dx, dy], -1))
    torch.testing.assert_close(offset_log_prob(params, dx, dy), expected, rtol=1e-4, atol=1e-4)


def test_sampled_rows_follow_the_distribution():
    """One Gaussian component: sample mean / covariance and pen frequencies match."""
    n = 20000
    y = torch.zeros(n, 3 + 6 * 2)
    y[:, :3] = torch.tensor([1.0, 0.0, -1.0])
    y[:, 3:5] = torch.tensor([50.0, 0.0])  # component 0 almost surely
    y[:, 5], y[:, 7] = 0.7, -0.4  # mu_x, mu_y of component 0
    y[:, 9], y[:, 11] = math.log(0.5), math.log(0.2)  # sigmas
    y[:, 13] = math.atanh(0.6)
    params = split_output(y, 2)
    gen = torch.Generator().manual_seed(5)
    noise = StepNoise(torch.rand(n, 3, generator=gen), torch.rand(n, 2, generator=gen),
                      torch.randn(n, 2, generator=gen))
    rows = sample_rows(params, noise)
    pen_freq = rows[:, 2:].mean(0)
    torch.testing.assert_close(pen_freq, torch.softmax(y[0, :3], 0), atol=0.015, rtol=0)
    drawn = rows[rows[:, 4] == 0][:, :2].double()
    assert torch.all(rows[rows[:, 4] == 1][:, :2] == 0)
    mean, cov = drawn.mean(0), torch.cov(drawn.T)
    torch.testing.assert_close(mean, torch.tensor([0.7, -0.4], dtype=torch.double), atol=0.02,
                               rtol=0)
    expected_cov = torch.tensor([[0.25, 0.6 * 0.1], [0.6 * 0.1, 0.04]], dtype=torch.double)
    torch.testing.assert_close(cov, expected_cov, atol=0.01, rtol=0)


# -- teacher forcing, log_prob and sampling agree -------------------------------------------
@pytest.mark.parametrize("dec_model", ["lstm", "layer_norm", "hyper"])
@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_log_prob_equals_rollout_total_log_prob_vae(dec_model, tau):
    model = tiny_model(dec_model=dec_model)
    z = model.sample_prior_z(1, torch.Generator().manual_seed(0))[0]  # shared z
    rollout = model.sample(6, temperature=tau, max_len=10, z=z,
                           generator=torch.Generator().manual_seed(1))
    assert len(set(rollout.lengths.tolist())) > 1, "want mixed lengths"
    assert torch.equal(rollout.z, z.expand(6, -1))
    expected = rollout.total_log_prob()
    actual = model.log_prob(rollout.strokes, rollout.lengths, rollout.z, temperature=tau)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-4)
    shared = model.log_prob(rollout.strokes, rollout.lengths, z, temperature=tau)
    torch.testing.assert_close(shared, expected, rtol=1e-5, atol=1e-4)
    other_tau = model.log_prob(rollout.strokes, rollout.lengths, z, temperature=tau + 0.3)
    assert not torch.allclose(other_tau, expected, atol=1e-2)


def test_log_prob_equals_rollout_decoder_only_and_per_sketch_z():
    model = tiny_model(conditional=False)
    rollout = model.sample(8, temperature=0.5, generator=torch.Generator().manual_seed(2))
    assert rollout.z is None
    torch.testing.assert_close(model.log_prob(rollout.strokes, rollout.lengths, None, 0.5),
                               rollout.total_log_prob(), rtol=1e-5, atol=1e-4)
    linear = model.sample(8, temperature=0.5, sigma_scale="linear",
                          generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(
        model.log_prob(linear.strokes, linear.lengths, None, 0.5, sigma_scale="linear"),
        linear.total_log_prob(), rtol=1e-5, atol=1e-4)
    vae = tiny_model()
    z = torch.randn(5, 4)
    r = vae.sample(5, temperature=0.7, z=z, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(vae.log_prob(r.strokes, r.lengths, z, 0.7), r.total_log_prob(),
                               rtol=1e-5, atol=1e-4)


def test_rollout_layout_lengths_mask_and_early_stop():
    model = tiny_model()
    with torch.no_grad():
        model.decoder.output.bias[2] = 2.0  # end-of-sketch likely: every sketch ends early
    rollout = model.sample(10, temperature=0.5, max_len=40,
                           generator=torch.Generator().manual_seed(4))
    steps = rollout.strokes.shape[1]
    assert steps < 40 and int(rollout.lengths.max()) == steps - 1  # stopped when all ended
    for b, length in enumerate(rollout.lengths.tolist()):
        assert rollout.mask[b, : length + 1].all() and not rollout.mask[b, length + 1:].any()
        assert torch.equal(rollout.strokes[b, length:],
                           torch.tensor([0.0, 0, 0, 0, 1]).expand(steps - length, 5))
        assert rollout.strokes[b, :length, 4].sum() == 0
        assert rollout.strokes[b, :length, 2:].sum(-1).eq(1).all()
    assert (rollout.log_probs[~rollout.mask] == 0).all()
    sketches = rollout.to_stroke3()
    assert [len(s) for s in sketches] == rollout.lengths.tolist()
    assert sketches[0].dtype == np.float32
    np.testing.assert_array_equal(sketches[1][:, 2], rollout.strokes[1, : len(sketches[1]), 3])


def test_max_len_cuts_sketches_without_end_row():
    model = tiny_model()
    rollout = model.sample(6, temperature=1.0, max_len=2,
                           generator=torch.Generator().manual_seed(5))
    assert rollout.strokes.shape[1] <= 2
    cut = rollout.lengths == rollout.strokes.shape[1]
    assert cut.any() and rollout.mask[cut].all()
    torch.testing.assert_close(model.log_prob(rollout.strokes, rollout.lengths, rollout.z, 1.0),
                               rollout.total_log_prob(), rtol=1e-5, atol=1e-4)


def test_sampling_is_seeded_and_keeps_mode_and_grad_settings():
    model = tiny_model()
    a = model.sample(4, generator=torch.Generator().manual_seed(7))
    b = model.sample(4, generator=torch.Generator().manual_seed(7))
    c = model.sample(4, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.strokes, b.strokes) and not torch.equal(a.strokes, c.strokes)
    assert not a.log_probs.requires_grad
    model.train()
    with_grad = model.sample(4, generator=torch.Generator().manual_seed(7), grad=True)
    assert model.training and with_grad.log_probs.requires_grad
    with_grad.total_log_prob().sum().backward()
    grads = [p.grad for p in model.decoder_parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in model.encoder_parameters())
    torch.testing.assert_close(with_grad.total_log_prob().detach(), a.total_log_prob())
    assert not with_grad.detach().log_probs.requires_grad


def test_z_shapes_are_checked():
    model = tiny_model()
    with pytest.raises(ConfigError, match=r"\(4,\) or \(3, 4\)"):
        model.sample(3, z=torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="decoder-only"):
        tiny_model(conditional=False).sample(3, z=torch.zeros(4))
    with pytest.raises(ConfigError, match="decoder-only"):
        tiny_model(conditional=False).sample_prior_z(2)
    with pytest.raises(ConfigError, match="VAE"):
        model.log_prob(torch.zeros(1, 3, 5), torch.tensor([2]))


def test_sample_sketches_batches_to_n():
    model = tiny_model()
    sketches = sample_sketches(model, 7, batch_size=3, max_len=6,
                               generator=torch.Generator().manual_seed(0))
    assert len(sketches) == 7 and all(s.shape[1] == 3 and len(s) <= 6 for s in sketches)


# -- encoder and losses ---------------------------------------------------------------------
def test_encoder_ignores_padding_and_runs_backward_from_the_last_row():
    model = tiny_model()
    strokes = random_strokes(2, 7, [4, 7], seed=1)
    mu, presig = model.encode(strokes, torch.tensor([4, 7]))
    noisy = strokes.clone()
    noisy[0, 4:] = torch.randn(3, 5)
    torch.testing.assert_close(model.encode(noisy, torch.tensor([4, 7]))[0], mu)
    enc = model.encoder
    state_fw = torch.zeros(1, enc.cell_fw.state_size)
    state_bw = torch.zeros(1, enc.cell_bw.state_size)
    for t in range(4):
        _, state_fw = enc.cell_fw(strokes[0:1, t], state_fw)
        _, state_bw = enc.cell_bw(strokes[0:1, 3 - t], state_bw)
    last = torch.cat([enc.cell_fw.output(state_fw), enc.cell_bw.output(state_bw)], 1)
    torch.testing.assert_close(mu[0:1], enc.mu(last))
    torch.testing.assert_close(presig[0:1], enc.presig(last))


def test_reconstruction_loss_is_magentas_mean_over_all_steps():
    model = tiny_model()
    lengths = torch.tensor([3, 5])
    strokes = random_strokes(2, 6, lengths.tolist(), seed=2)
    z = torch.randn(2, 4)
    params = model.teacher_forcing(strokes, lengths, z)
    assert params.mu_x.shape == (2, 6, 3)
    loss = reconstruction_loss(params, strokes, lengths)
    # rows 0..lengths are exactly log_prob's rows; the extra padding row of sketch 0 adds its
    # pen cross-entropy only.
    extra_pen = -params.pen_log_probs[0, 4:, 2].sum()
    expected = (-model.log_prob(strokes, lengths, z).sum() + extra_pen) / 12
    torch.testing.assert_close(loss, expected)
    masked = reconstruction_loss(params, strokes, lengths, mask_pen=True)
    assert masked < loss


def test_training_pass_reduces_the_loss():
    model = tiny_model().train()
    lengths = torch.tensor([4, 6, 5])
    strokes = random_strokes(3, 7, lengths.tolist(), seed=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(12):
        out = model(strokes, lengths, generator=gen)
        loss = reconstruction_loss(out.params, strokes, lengths) + 0.1 * kl_loss(out.mu,
                                                                                 out.presig)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.5


def test_kl_loss_values():
    zeros = torch.zeros(3, 4)
    assert float(kl_loss(zeros, zeros)) == 0.0
    assert float(kl_loss(zeros, zeros, kl_tolerance=0.2)) == pytest.approx(0.2)
    mu = torch.ones(3, 4)
    assert float(kl_loss(mu, zeros)) == pytest.approx(0.5)


# -- save / load ----------------------------------------------------------------------------
@pytest.mark.parametrize("dec_model", ["lstm", "hyper"])
def test_save_load_round_trip(tmp_path, dec_model):
    model = tiny_model(dec_model=dec_model)
    save_model(model, tmp_path / "m")
    assert SketchRNNConfig.load_json(tmp_path / "m" / "model_config.json") == model.config
    loaded = load_model(tmp_path / "m")
    assert not loaded.training and loaded.config == model.config
    strokes, lengths, z = random_strokes(2, 5, [3, 5]), torch.tensor([3, 5]), torch.randn(2, 4)
    torch.testing.assert_close(loaded.log_prob(strokes, lengths, z),
                               model.log_prob(strokes, lengths, z))
    again = load_model(str(tmp_path / "m" / "model_config.json"))
    assert again.config == model.config


def test_load_model_errors(tmp_path):
    with pytest.raises(ConfigError, match="sketchrnn:<category>"):
        load_model(tmp_path / "nothing_here")
    with pytest.raises(ConfigError, match="did you mean sketchrnn:owl"):
        load_model("owl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="model_config.json"):
        load_model(tmp_path / "empty")


def test_load_model_by_asset_name(shared_assets):
    model = load_model("sketchrnn:bird")
    assert model.config.name == "bird" and not model.config.conditional
    assert isinstance(model.sample(2, max_len=5), Rollout)


def test_row_log_prob_ignores_offsets_of_end_rows():
    params = split_output(torch.randn(2, 3 + 6 * 2), 2)
    rows = torch.tensor([[5.0, 5.0, 0, 0, 1], [0.0, 0.0, 0, 0, 1]])
    lp = row_log_prob(params, rows)
    torch.testing.assert_close(lp, params.pen_log_probs[:, 2])


def test_head_gradient_flushes_subnormal_values_only(monkeypatch):
    """The decoder's head passes its gradient on with values below float32's smallest normal
    set to zero (on a CPU, unless SKETCHRL_FTZ=0); zeros and normal values are untouched."""
    from sketchrl.models.cells import flush_subnormal_gradient

    upstream = torch.tensor([1e-40, -3e-39, 0.0, 1.2e-38, -2.5, 1e-30])
    x = torch.zeros(6, requires_grad=True)
    flush_subnormal_gradient(x).backward(upstream)
    expected = upstream.clone()
    expected[:2] = 0.0
    assert torch.equal(x.grad, expected)
    monkeypatch.setenv("SKETCHRL_FTZ", "0")
    x.grad = None
    flush_subnormal_gradient(x).backward(upstream)
    assert torch.equal(x.grad, upstream)
    frozen = torch.zeros(3)
    assert flush_subnormal_gradient(frozen) is frozen


def test_decoder_head_is_the_output_layer_with_the_flush():
    model = SketchRNN(SketchRNNConfig(dec_rnn_size=8, num_mixture=2, conditional=False))
    h = torch.randn(2, 3, 8, requires_grad=True)
    y = model.decoder.head(h)
    assert torch.equal(y, model.decoder.output(h))
    assert y.grad_fn is not None and "FlushSubnormal" in type(y.grad_fn).__name__
