"""Importing Magenta sketch_rnn TensorFlow checkpoints (model zoo layout).

The round-trip test writes a real TensorFlow checkpoint (in a subprocess, with TensorFlow
itself) under the variable names of Magenta's ``model.py`` / ``rnn.py``, spelled out here by
hand, imports it and compares the model's outputs with a NumPy version of Magenta's LSTM VAE.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchrl.errors import ConfigError, DataError
from sketchrl.models import SketchRNN, SketchRNNConfig
from sketchrl.models.magenta_tf import (
    find_checkpoint,
    load_magenta_checkpoint,
    magenta_variable_name,
)

# The owl/lstm zoo model's model_config.json (shared/reference/magenta-owl-lstm-model_config.json).
OWL_HPARAMS = {
    "data_set": ["extended_owl.npz"], "dec_model": "lstm", "dec_rnn_size": 512,
    "enc_model": "lstm", "enc_rnn_size": 256, "min_learning_rate": 0.00001,
    "output_dropout_prob": 0.9, "kl_weight_start": 0.01, "num_mixture": 20, "is_training": 1,
    "learning_rate": 0.001, "decay_rate": 0.9999, "use_recurrent_dropout": 0,
    "recurrent_dropout_prob": 0.9, "batch_size": 100, "input_dropout_prob": 0.9,
    "augment_stroke_prob": 0.15, "use_input_dropout": 0, "z_size": 128, "save_every": 500,
    "use_output_dropout": 0, "kl_weight": 1.0, "kl_tolerance": 0.2,
    "random_scale_factor": 0.15, "conditional": 1, "kl_decay_rate": 0.99990, "grad_clip": 1.0,
    "num_steps": 10000000, "max_seq_len": 174,
}
NO_TF = "TensorFlow is not installed (pip install sketchrl[tf])"
ENC, DEC, Z, M = 3, 4, 2, 2  # tiny sizes: encoder / decoder units, z, mixtures

WRITER = """
import sys
import numpy as np
import tensorflow as tf

for arrays_file, folder in zip(sys.argv[1::2], sys.argv[2::2]):
    arrays = np.load(arrays_file)
    with tf.Graph().as_default():
        variables = {name: tf.compat.v1.Variable(arrays[name]) for name in arrays.files}
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, folder + "/vector", global_step=4100)
"""


def zoo_lstm_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """An owl/lstm-style checkpoint's trainable variables (Magenta names) plus training junk."""
    shapes = {
        "vector_rnn/ENC_RNN/fw/LSTMCell/W_xh": (5, 4 * ENC),
        "vector_rnn/ENC_RNN/fw/LSTMCell/W_hh": (ENC, 4 * ENC),
        "vector_rnn/ENC_RNN/fw/LSTMCell/bias": (4 * ENC,),
        "vector_rnn/ENC_RNN/bw/LSTMCell/W_xh": (5, 4 * ENC),
        "vector_rnn/ENC_RNN/bw/LSTMCell/W_hh": (ENC, 4 * ENC),
        "vector_rnn/ENC_RNN/bw/LSTMCell/bias": (4 * ENC,),
        "vector_rnn/ENC_RNN_mu/super_linear_w": (2 * ENC, Z),
        "vector_rnn/ENC_RNN_mu/super_linear_b": (Z,),
        "vector_rnn/ENC_RNN_sigma/super_linear_w": (2 * ENC, Z),
        "vector_rnn/ENC_RNN_sigma/super_linear_b": (Z,),
        "vector_rnn/linear/super_linear_w": (Z, 2 * DEC),
        "vector_rnn/linear/super_linear_b": (2 * DEC,),
        "vector_rnn/RNN/LSTMCell/W_xh": (5 + Z, 4 * DEC),
        "vector_rnn/RNN/LSTMCell/W_hh": (DEC, 4 * DEC),
        "vector_rnn/RNN/LSTMCell/bias": (4 * DEC,),
        "vector_rnn/RNN/output_w": (DEC, 3 + 6 * M),
        "vector_rnn/RNN/output_b": (3 + 6 * M,),
    }
    arrays = {k: rng.normal(0.0, 0.7, shape).astype(np.float32) for k, shape in shapes.items()}
    arrays["vector_rnn/RNN/output_w/Adam"] = np.zeros(shapes["vector_rnn/RNN/output_w"], np.float32)
    arrays["global_step"] = np.array(4100, dtype=np.int64)
    arrays["Variable"] = np.array(0.001, dtype=np.float32)  # Magenta's learning-rate variable
    return arrays


# -- NumPy reference of Magenta's model.py / rnn.py (LSTM cells) ---------------------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def np_lstm(x, state, w_xh, w_hh, bias):
    """Magenta's LSTMCell: state [c, h], gates i, j, f, o, forget bias 1."""
    units = w_hh.shape[0]
    c, h = state[:, :units], state[:, units:]
    i, j, f, o = np.split(np.concatenate([x, h], 1) @ np.concatenate([w_xh, w_hh], 0) + bias, 4, 1)
    new_c = c * _sigmoid(f + 1.0) + _sigmoid(i) * np.tanh(j)
    new_h = np.tanh(new_c) * _sigmoid(o)
    return new_h, np.concatenate([new_c, new_h], 1)


def np_encode(a: dict[str, np.ndarray], strokes5: np.ndarray, lengths: np.ndarray):
    """bidirectional_dynamic_rnn over each sketch's drawing rows -> (mu, presig)."""
    last = []
    for rows, n in zip(strokes5, lengths, strict=True):
        outputs = []
        for direction, order in (("fw", rows[:n]), ("bw", rows[:n][::-1])):
            cell = f"vector_rnn/ENC_RNN/{direction}/LSTMCell/"
            h, state = np.zeros((1, ENC)), np.zeros((1, 2 * ENC))
            for row in order:
                h, state = np_lstm(row[None], state, a[cell + "W_xh"], a[cell + "W_hh"],
                                   a[cell + "bias"])
            outputs.append(h[0])
        last.append(np.concatenate(outputs))
    last_h = np.stack(last)
    mu = (last_h @ a["vector_rnn/ENC_RNN_mu/super_linear_w"]
          + a["vector_rnn/ENC_RNN_mu/super_linear_b"])
    presig = (last_h @ a["vector_rnn/ENC_RNN_sigma/super_linear_w"]
              + a["vector_rnn/ENC_RNN_sigma/super_linear_b"])
    return mu, presig


def np_decoder_outputs(a: dict[str, np.ndarray], strokes5: np.ndarray,
                       z: np.ndarray) -> np.ndarray:
    """Teacher-forced raw outputs ``(B, T, 3 + 6M)``: start token [0, 0, 1, 0, 0] first."""
    state = np.tanh(z @ a["vector_rnn/linear/super_linear_w"]
                    + a["vector_rnn/linear/super_linear_b"])
    start = np.tile([[[0.0, 0.0, 1.0, 0.0, 0.0]]], (len(strokes5), 1, 1))
    inputs = np.concatenate([start, strokes5[:, :-1]], 1)
    outputs = []
    for t in range(strokes5.shape[1]):
        x = np.concatenate([inputs[:, t], z], 1)
        h, state = np_lstm(x, state, a["vector_rnn/RNN/LSTMCell/W_xh"],
                           a["vector_rnn/RNN/LSTMCell/W_hh"], a["vector_rnn/RNN/LSTMCell/bias"])
        outputs.append(h @ a["vector_rnn/RNN/output_w"] + a["vector_rnn/RNN/output_b"])
    return np.stack(outputs, 1)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def write_zoo_folders(root: Path, checkpoints: dict[str, dict[str, np.ndarray]]) -> None:
    """``root/<name>/`` zoo folders (model_config.json + a TensorFlow checkpoint), written by
    TensorFlow in one subprocess."""
    hparams = {**OWL_HPARAMS, "enc_rnn_size": ENC, "dec_rnn_size": DEC, "z_size": Z,
               "num_mixture": M}
    args = []
    for name, arrays in checkpoints.items():
        (root / name).mkdir(parents=True)
        (root / name / "model_config.json").write_text(json.dumps(hparams))
        np.savez(root / f"{name}.npz", **arrays)
        args += [str(root / f"{name}.npz"), str(root / name)]
    subprocess.run([sys.executable, "-c", WRITER, *args], check=True, capture_output=True,
                   timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """A complete owl/lstm-like folder and one lacking ``RNN/output_b``; the arrays written."""
    pytest.importorskip("tensorflow", reason=NO_TF)
    root = tmp_path_factory.mktemp("zoo")
    arrays = zoo_lstm_arrays(np.random.default_rng(0))
    incomplete = {k: v for k, v in arrays.items() if k != "vector_rnn/RNN/output_b"}
    write_zoo_folders(root, {"lstm": arrays, "incomplete": incomplete})
    return root, arrays


@pytest.mark.slow
def test_zoo_lstm_checkpoint_matches_numpy_magenta(zoo):
    root, arrays = zoo
    rng = np.random.default_rng(1)
    folder = root / "lstm"
    # Zoo state files name the authors' machines; the loader must not need that path.
    (folder / "checkpoint").write_text('model_checkpoint_path: "/home/author/owl/vector-4100"\n')

    model = load_magenta_checkpoint(folder, scale_factor=45.0)
    config = model.config
    assert (config.enc_rnn_size, config.dec_rnn_size, config.z_size, config.num_mixture) == (
        ENC, DEC, Z, M)
    assert config.conditional and config.max_seq_len == 174 and config.kl_weight == 1.0
    assert config.name == "extended_owl" and config.scale_factor == 45.0 and not model.training

    lengths = np.array([5, 2, 7])
    strokes5 = np.zeros((3, 8, 5), dtype=np.float32)
    for b, n in enumerate(lengths):
        strokes5[b, :n, :2] = rng.normal(0, 1, (n, 2))
        lifted = rng.random(n) < 0.3
        strokes5[b, :n, 2], strokes5[b, :n, 3] = ~lifted, lifted
        strokes5[b, n:, 4] = 1.0
    with torch.no_grad():
        mu, presig = model.encode(torch.from_numpy(strokes5), torch.from_numpy(lengths))
    expected_mu, expected_presig = np_encode(arrays, strokes5, lengths)
    np.testing.assert_allclose(mu.numpy(), expected_mu, atol=1e-5)
    np.testing.assert_allclose(presig.numpy(), expected_presig, atol=1e-5)

    z = rng.normal(0, 1, (3, Z)).astype(np.float32)
    with torch.no_grad():
        params = model.teacher_forcing(torch.from_numpy(strokes5), torch.from_numpy(lengths),
                                       torch.from_numpy(z))
    y = np_decoder_outputs(arrays, strokes5, z)
    pi, mu_x, mu_y, log_sx, log_sy, corr = np.split(y[..., 3:], 6, axis=-1)
    np.testing.assert_allclose(params.pen_log_probs.numpy(), _log_softmax(y[..., :3]), atol=1e-5)
    np.testing.assert_allclose(params.log_pi.numpy(), _log_softmax(pi), atol=1e-5)
    for got, want in [(params.mu_x, mu_x), (params.mu_y, mu_y), (params.log_sigma_x, log_sx),
                      (params.log_sigma_y, log_sy), (params.rho, np.tanh(corr))]:
        np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


@pytest.mark.slow
def test_missing_variables_are_a_data_error(zoo):
    root, _ = zoo
    with pytest.raises(DataError, match="vector_rnn/RNN/output_b"):
        load_magenta_checkpoint(root / "incomplete")


def test_without_tensorflow_the_error_names_the_pip_line(tmp_path, monkeypatch):
    folder = tmp_path / "owl"
    folder.mkdir()
    (folder / "model_config.json").write_text(json.dumps(OWL_HPARAMS))
    (folder / "vector-10.index").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail
    with pytest.raises(ConfigError, match=r"pip install sketchrl\[tf\]"):
        load_magenta_checkpoint(folder)
    # load_model (used by every command that takes a model) routes zoo folders here.
    from sketchrl.models import load_model

    with pytest.raises(ConfigError, match=r"pip install sketchrl\[tf\]"):
        load_model(folder)


def test_find_checkpoint_prefers_the_state_file_then_the_highest_step(tmp_path):
    for step in (500, 4100, 900):
        (tmp_path / f"vector-{step}.index").write_bytes(b"")
    assert find_checkpoint(tmp_path).name == "vector-4100"
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "C:\\\\runs\\\\vector-900"\n')
    assert find_checkpoint(tmp_path).name == "vector-900"
    assert find_checkpoint(tmp_path / "vector-500").name == "vector-500"
    with pytest.raises(DataError, match="does not exist"):
        find_checkpoint(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no TensorFlow checkpoint"):
        find_checkpoint(tmp_path / "empty")


def _magenta_names(cell_scope: str, hyper: bool) -> set[str]:
    """Every variable of one Magenta cell, from rnn.py's scopes (written out independently)."""
    norm = {"ln_all/ln_gamma", "ln_all/ln_beta", "ln_c/ln_gamma", "ln_c/ln_beta"}
    if not hyper:
        return {f"{cell_scope}/{n}" for n in {"W_xh", "W_hh"} | norm}
    names = {"W_xh", "W_hh", "bias"} | norm
    names |= {f"LayerNormLSTMCell/{n}" for n in {"W_xh", "W_hh"} | norm}
    for gate in "ijfo":
        names |= {f"hyper_{gate}x/zw/super_linear_w", f"hyper_{gate}x/zw/super_linear_b",
                  f"hyper_{gate}x/alpha/super_linear_w"}
        names |= {f"hyper_{gate}h/zw/super_linear_w", f"hyper_{gate}h/zw/super_linear_b",
                  f"hyper_{gate}h/alpha/super_linear_w", f"hyper_{gate}h/zb/super_linear_w",
                  f"hyper_{gate}h/beta/super_linear_w"}
    return {f"{cell_scope}/{n}" for n in names}


def test_layer_norm_and_hyper_cells_map_to_magenta_scopes():
    config = SketchRNNConfig(enc_model="layer_norm", dec_model="hyper", enc_rnn_size=3,
                             dec_rnn_size=4, z_size=2, num_mixture=2, hyper_num_units=5,
                             hyper_embedding_size=2)
    names = {magenta_variable_name(key, config) for key in SketchRNN(config).state_dict()}
    expected = (_magenta_names("vector_rnn/ENC_RNN/fw/LayerNormLSTMCell", False)
                | _magenta_names("vector_rnn/ENC_RNN/bw/LayerNormLSTMCell", False)
                | _magenta_names("vector_rnn/RNN/HyperLSTMCell", True)
                | {f"vector_rnn/{s}/super_linear_{p}" for s in ("ENC_RNN_mu", "ENC_RNN_sigma",
                                                                 "linear") for p in "wb"}
                | {"vector_rnn/RNN/output_w", "vector_rnn/RNN/output_b"})
    assert names == expected
