"""sketch-rnn-js JSON import/export, checked against a NumPy model written from the format spec.

The reference below follows only the format description in shared/assets/README.md: blobs are
base64 little-endian int16 (value = q / 32767 * 10), LSTM gates i, g, f, o with forget bias +1,
state c = first H / h = last H, output 3 pen logits then 6 blocks of M.
"""

from __future__ import annotations

import base64
import json
import logging

import numpy as np
import pytest
import torch

from sketchrl.errors import ConfigError, DataError
from sketchrl.models import SketchRNN, SketchRNNConfig, export_sketch_rnn_js, load_sketch_rnn_js

BIRD = "quickdraw-models/sketchRNN/large_models/bird.gen.json"
STEP = 10.0 / 32767  # one quantisation step


# -- the independent NumPy reference ------------------------------------------------------------
def reference_weights(path) -> tuple[dict, list[np.ndarray]]:
    info, shapes, blobs = json.loads(path.read_text())
    weights = []
    for shape, blob in zip(shapes, blobs, strict=True):
        q = np.frombuffer(base64.b64decode(blob), dtype="<i2").astype(np.float64)
        weights.append((q / 32767.0 * 10.0).reshape(shape))
    return info, weights


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def lstm_step(x, h, c, w_xh, w_hh, bias):
    hidden = np.concatenate([x, h]) @ np.concatenate([w_xh, w_hh]) + bias
    i, g, f, o = np.split(hidden, 4)
    c = c * sigmoid(f + 1.0) + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def mixture_head(h, out_w, out_b, m):
    y = h @ out_w + out_b
    pen, rest = y[:3], y[3:]
    pi, mu_x, mu_y, log_sx, log_sy, rho = np.split(rest, 6)

    def log_softmax(v):
        v = v - v.max()
        return v - np.log(np.exp(v).sum())

    return {"pen_log_probs": log_softmax(pen), "log_pi": log_softmax(pi), "mu_x": mu_x,
            "mu_y": mu_y, "log_sigma_x": log_sx, "log_sigma_y": log_sy, "rho": np.tanh(rho)}


def reference_decoder(weights, rows, z=None, init=None):
    """Run the decoder over ``rows`` (start token prepended); mixture parameters per step."""
    out_w, out_b, w_xh, w_hh, bias = weights
    hidden = w_hh.shape[0]
    m = (out_b.shape[0] - 3) // 6
    if init is None:
        h, c = np.zeros(hidden), np.zeros(hidden)
    else:
        state = np.tanh(z @ init[0] + init[1])
        c, h = state[:hidden], state[hidden:]
    inputs = np.concatenate([[[0, 0, 1, 0, 0]], rows[:-1]])
    steps = []
    for x in inputs:
        x_in = x if z is None else np.concatenate([x, z])
        h, c = lstm_step(x_in, h, c, w_xh, w_hh, bias)
        steps.append(mixture_head(h, out_w, out_b, m))
    return steps


def reference_encode(weights, rows):
    """Bidirectional LSTM over ``rows`` -> (mu, presig)."""
    fw, bw = weights[0:3], weights[3:6]
    mu_w, mu_b, sig_w, sig_b = weights[6:10]
    size = fw[1].shape[0]
    outputs = []
    for cell, sequence in ((fw, rows), (bw, rows[::-1])):
        h, c = np.zeros(size), np.zeros(size)
        for x in sequence:
            h, c = lstm_step(x, h, c, *cell)
        outputs.append(h)
    last = np.concatenate(outputs)
    return last @ mu_w + mu_b, last @ sig_w + sig_b


def fixed_rows(steps: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = np.zeros((steps, 5))
    rows[:, :2] = rng.normal(size=(steps, 2)) * 0.5
    rows[np.arange(steps), 2 + (rng.random(steps) < 0.3)] = 1.0
    return rows


def compare(params, steps, batch_index: int = 0, tol: float = 1e-5) -> None:
    for t, expected in enumerate(steps):
        for name, value in expected.items():
            actual = getattr(params, name)[batch_index, t].detach().double().numpy()
            np.testing.assert_allclose(actual, value, rtol=tol, atol=tol, err_msg=f"{name} t={t}")


# -- tests ---------------------------------------------------------------------------------------
def test_bird_import_matches_numpy_reference(shared_assets):
    path = shared_assets / BIRD
    info, weights = reference_weights(path)
    model = load_sketch_rnn_js(path)
    config = model.config
    assert (config.name, config.conditional, config.dec_rnn_size, config.num_mixture) == (
        "bird", False, 512, 20)
    assert config.max_seq_len == info["max_seq_len"] == 129
    assert config.scale_factor == pytest.approx(71.3754)
    rows = fixed_rows(6)
    expected = reference_decoder(weights, rows)
    strokes = torch.tensor(rows, dtype=torch.float32).unsqueeze(0)
    params = model.teacher_forcing(strokes, torch.tensor([6]))
    compare(params, expected)
    # a different input changes the outputs (the comparison is not vacuous)
    other = reference_decoder(weights, fixed_rows(6, seed=1))
    assert not np.allclose(other[3]["mu_x"], expected[3]["mu_x"], atol=1e-3)


def test_bird_export_round_trip_is_exact(shared_assets, tmp_path):
    model = load_sketch_rnn_js(shared_assets / BIRD)
    export_sketch_rnn_js(model, tmp_path / "bird.gen.json")
    original = json.loads((shared_assets / BIRD).read_text())
    exported = json.loads((tmp_path / "bird.gen.json").read_text())
    assert exported[1] == original[1]
    assert exported[2] == original[2]  # already-quantised weights survive byte for byte
    assert exported[0]["mode"] == 2 and exported[0]["name"] == "bird"


def small_vae(seed: int = 0) -> SketchRNN:
    torch.manual_seed(seed)
    config = SketchRNNConfig(name="tiny_vae", enc_rnn_size=6, dec_rnn_size=8, z_size=4,
                             num_mixture=3, max_seq_len=20, scale_factor=12.5,
                             use_recurrent_dropout=False)
    model = SketchRNN(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return model


def test_vae_layout_round_trip_and_reference(tmp_path):
    model = small_vae()
    path = export_sketch_rnn_js(model, tmp_path / "vae.json")
    info, weights = reference_weights(path)
    assert info["mode"] not in (2, "gen") and len(weights) == 17
    imported = load_sketch_rnn_js(path)
    assert imported.config == model.config
    before, after = model.state_dict(), imported.state_dict()
    assert before.keys() == after.keys()
    for name in before:
        assert (before[name] - after[name]).abs().max() <= STEP / 2 + 1e-7, name
    # the file's blob order, read by the reference, gives the imported model's computations
    rows = fixed_rows(5, seed=2)
    mu_ref, presig_ref = reference_encode(weights, rows)
    strokes = torch.tensor(rows, dtype=torch.float32).unsqueeze(0)
    mu, presig = imported.encode(strokes, torch.tensor([5]))
    np.testing.assert_allclose(mu[0].double().detach().numpy(), mu_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(presig[0].double().detach().numpy(), presig_ref, rtol=1e-5,
                               atol=1e-5)
    z = np.array([0.3, -1.0, 0.5, 2.0])
    expected = reference_decoder(weights[12:17], rows, z=z, init=weights[10:12])
    params = imported.teacher_forcing(strokes, torch.tensor([5]), torch.tensor(z).float())
    compare(params, expected)


def test_export_clips_large_weights_with_a_warning(tmp_path, caplog):
    model = small_vae()
    with torch.no_grad():
        model.decoder.output.bias[0] = 25.0
    with caplog.at_level(logging.WARNING):
        export_sketch_rnn_js(model, tmp_path / "clip.json")
    assert "decoder.output.bias" in caplog.text
    imported = load_sketch_rnn_js(tmp_path / "clip.json")
    assert float(imported.decoder.output.bias[0].detach()) == pytest.approx(10.0)


def test_export_refuses_non_lstm_cells(tmp_path):
    model = SketchRNN(SketchRNNConfig(dec_model="layer_norm", dec_rnn_size=4, enc_rnn_size=4,
                                      z_size=2, num_mixture=2))
    with pytest.raises(ConfigError, match="LSTM"):
        export_sketch_rnn_js(model, tmp_path / "x.json")


def test_malformed_files_are_data_errors(tmp_path, shared_assets):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not a JSON"):
        load_sketch_rnn_js(bad)
    bad.write_text(json.dumps({"a": 1}))
    with pytest.raises(DataError, match=r"\[info, shapes, blobs\]"):
        load_sketch_rnn_js(bad)
    info, shapes, blobs = json.loads((shared_assets / BIRD).read_text())
    bad.write_text(json.dumps([info, shapes[:4], blobs[:4]]))
    with pytest.raises(DataError, match="5 blobs"):
        load_sketch_rnn_js(bad)
    bad.write_text(json.dumps([info, shapes, [blobs[0][:-8]] + blobs[1:]]))
    with pytest.raises(DataError, match="blob 0"):
        load_sketch_rnn_js(bad)
    with pytest.raises(DataError, match="not found"):
        load_sketch_rnn_js(tmp_path / "missing.json")
