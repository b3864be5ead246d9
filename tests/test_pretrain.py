"""Pretraining: Magenta's schedules, the training step, data splits, overfitting real drawings,
resume, decoder-only, the output-folder rules and the ``sketchrl pretrain`` command."""

from __future__ import annotations

import csv
import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchrl.cli.main import main
from sketchrl.errors import ConfigError
from sketchrl.models import SketchRNN, SketchRNNConfig, load_model
from sketchrl.models.pretrain import (
    STATE_FILE,
    PretrainConfig,
    kl_weight_at,
    learning_rate_at,
    load_pretrain_config,
    load_splits,
    pretrain,
    train_step,
    with_settings,
)

# A tiny model; max_seq_len=36 keeps exactly the 8 shortest of the 25 simplified birds.
TINY = SketchRNNConfig(
    dec_rnn_size=64, enc_rnn_size=32, z_size=8, num_mixture=5, max_seq_len=36, batch_size=8,
    use_recurrent_dropout=False, random_scale_factor=0.0, augment_stroke_prob=0.0,
)


@pytest.fixture
def birds(shared_assets: Path) -> str:
    return str(shared_assets / "quickdraw_dataset/full/simplified/bird.ndjson")


def test_learning_rate_matches_magenta_formula():
    hparams = SketchRNNConfig(learning_rate=0.001, min_learning_rate=0.00001, decay_rate=0.9999)
    assert learning_rate_at(0, hparams) == pytest.approx(0.001)
    # (0.001 - 0.00001) * 0.9999^10000 + 0.00001, worked out by hand: 0.99e-3 * 0.367861 + 1e-5
    assert learning_rate_at(10000, hparams) == pytest.approx(0.000374182, rel=1e-5)
    assert learning_rate_at(10**7, hparams) == pytest.approx(0.00001)


def test_kl_weight_matches_magenta_annealing():
    hparams = SketchRNNConfig(kl_weight=0.5, kl_weight_start=0.01, kl_decay_rate=0.99995)
    assert kl_weight_at(0, hparams) == pytest.approx(0.01)
    # 0.5 - 0.49 * 0.99995^20000 = 0.5 - 0.49 * 0.367870
    assert kl_weight_at(20000, hparams) == pytest.approx(0.319744, rel=1e-5)
    owl = SketchRNNConfig(kl_weight=1.0, kl_weight_start=0.01, kl_decay_rate=0.9999)
    assert kl_weight_at(5000, owl) == pytest.approx(0.399550, rel=1e-5)
    assert kl_weight_at(10**7, owl) == pytest.approx(1.0)


def test_train_step_sets_learning_rate_and_clips_gradients():
    torch.manual_seed(0)
    model = SketchRNN(dataclasses.replace(TINY, max_seq_len=6, grad_clip=1e-4))
    optimizer = torch.optim.Adam(model.parameters())
    strokes5 = torch.zeros(2, 6, 5)
    strokes5[:, :4, :2] = torch.randn(2, 4, 2)
    strokes5[:, :4, 2] = 1.0
    strokes5[:, 4:, 4] = 1.0
    metrics = train_step(model, optimizer, strokes5, torch.tensor([4, 4]), step=1234)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(learning_rate_at(1234, model.config))
    assert metrics["kl_weight"] == pytest.approx(kl_weight_at(1234, model.config))
    assert metrics["kl"] >= model.config.kl_tolerance  # clamped below at the tolerance
    assert metrics["loss"] == pytest.approx(
        metrics["reconstruction"] + metrics["kl_weight"] * metrics["kl"], rel=1e-6)
    largest = max(float(p.grad.abs().max()) for p in model.parameters() if p.grad is not None)
    assert largest == pytest.approx(1e-4)  # clipping was active and bounded every entry


def test_ndjson_holds_out_a_validation_share(birds):
    splits = load_splits([birds], valid_fraction=0.2, seed=3)
    assert (len(splits.train), len(splits.valid)) == (20, 5)
    train_keys = {s.tobytes() for s in splits.train}
    assert not any(s.tobytes() in train_keys for s in splits.valid)


def _write_sketchrnn_npz(path: Path, splits: dict[str, list[np.ndarray]]) -> None:
    """A sketch-rnn .npz as numpy writes it (object arrays of int16 stroke-3)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, sketches in splits.items():
            array = np.empty(len(sketches), dtype=object)
            array[:] = [s.astype(np.int16) for s in sketches]
            with archive.open(f"{name}.npy", "w") as handle:
                np.lib.format.write_array(handle, array, allow_pickle=True)


def test_npz_valid_split_is_used_and_files_are_concatenated(tmp_path, birds):
    rng = np.random.default_rng(0)
    sketch = lambda n: np.column_stack([rng.integers(-9, 9, (n, 2)), np.arange(n) % 4 == 3])  # noqa: E731
    npz = tmp_path / "tiny.npz"
    _write_sketchrnn_npz(npz, {"train": [sketch(5), sketch(7)], "valid": [sketch(4)],
                               "test": [sketch(6)]})
    splits = load_splits([str(npz), birds], valid_fraction=0.2)
    assert len(splits.train) == 2 + 20 and len(splits.valid) == 1 + 5
    assert len(splits.train[0]) == 5 and len(splits.valid[0]) == 4


def test_settings_route_to_run_or_model_and_reject_unknown_keys():
    config = with_settings(PretrainConfig(), {"num_steps": "7", "z_size": "16",
                                              "conditional": "false"})
    assert config.num_steps == 7 and config.model.z_size == 16 and not config.model.conditional
    with pytest.raises(ConfigError, match="unknown setting.*zsize"):
        with_settings(PretrainConfig(), {"zsize": "16"})


def test_pretrain_config_json_round_trip(tmp_path):
    config = with_settings(PretrainConfig(data=["a.ndjson"]), {"dec_rnn_size": "64"})
    config.save_json(tmp_path / "c.json")
    assert PretrainConfig.load_json(tmp_path / "c.json") == config


def _run(data: str, out: Path, steps: int, **model_changes) -> PretrainConfig:
    return PretrainConfig(data=[data], model=dataclasses.replace(TINY, **model_changes),
                          num_steps=steps, valid_fraction=0.0, eval_every=1000, save_every=1000,
                          log_every=10)


@pytest.mark.slow
def test_vae_overfits_eight_real_birds(birds, tmp_path):
    """The bar: the mean loss of the last 10 steps is more than 2 nats (per row step, Magenta's
    mean over B * T) below the first step's loss and below a third of it."""
    config = _run(birds, tmp_path / "vae", 120, learning_rate=0.005, decay_rate=1.0)
    result = pretrain(config, tmp_path / "vae", progress=False)
    assert result.model.config.max_seq_len == 36
    losses = [row["loss"] for row in result.train]
    first, last = losses[0], float(np.mean(losses[-10:]))
    assert len(losses) == 120 and np.isfinite(losses).all()
    assert last < first - 2.0 and last < first / 3, (first, last, losses[::10])
    assert result.train[-1]["kl"] > TINY.kl_tolerance  # the encoder learned something
    reloaded = load_model(tmp_path / "vae")
    assert reloaded.config.scale_factor == pytest.approx(result.model.config.scale_factor)
    assert reloaded.config.name == "bird" and reloaded.config.conditional


@pytest.mark.slow
def test_decoder_only_overfits(birds, tmp_path):
    config = _run(birds, tmp_path / "gen", 60, learning_rate=0.005, decay_rate=1.0,
                  conditional=False)
    result = pretrain(config, tmp_path / "gen", progress=False)
    losses = [row["loss"] for row in result.train]
    assert all(row["kl"] == 0.0 for row in result.train)
    assert float(np.mean(losses[-10:])) < losses[0] - 1.0, losses[::10]
    assert load_model(tmp_path / "gen").encoder is None


def test_resume_continues_from_the_saved_step(birds, tmp_path):
    out = tmp_path / "run"
    config = dataclasses.replace(_run(birds, out, 4, max_seq_len=30), save_every=2)
    pretrain(config, out, progress=False)
    assert torch.load(out / STATE_FILE, weights_only=True)["step"] == 4
    saved = load_model(out).state_dict()
    resumed = dataclasses.replace(load_pretrain_config(out), num_steps=6)
    result = pretrain(resumed, out, resume=True, progress=False)
    assert result.first_step == 4 and [row["step"] for row in result.train] == [5, 6]
    assert result.train[0]["learning_rate"] == pytest.approx(learning_rate_at(4, TINY))
    state = torch.load(out / STATE_FILE, weights_only=True)
    assert state["step"] == 6
    adam_steps = {float(s["step"]) for s in state["optimizer"]["state"].values()}
    assert adam_steps == {6.0}  # the optimizer's moments were restored, not restarted
    assert result.model.config.scale_factor == pytest.approx(
        load_model(out).config.scale_factor)
    changed = [k for k, v in load_model(out).state_dict().items() if not torch.equal(v, saved[k])]
    assert changed  # the resumed steps moved the weights


def test_a_kill_between_checkpoint_files_resumes_from_the_state(birds, tmp_path, monkeypatch,
                                                                kill_on_call):
    """The state file is written before model.safetensors: a kill between the two resumes
    with the state's weights (step 4), not the older model file's (step 2)."""
    import sketchrl.models.pretrain as pretrain_module

    straight = dataclasses.replace(_run(birds, tmp_path / "straight", 4, max_seq_len=30),
                                   save_every=2)
    pretrain(straight, tmp_path / "straight", progress=False)
    killed = tmp_path / "killed"
    kill_on_call(pretrain_module, "save_model", 2)  # the checkpoint of step 4
    with pytest.raises(KeyboardInterrupt):
        pretrain(dataclasses.replace(straight), killed, progress=False)
    monkeypatch.undo()
    result = pretrain(load_pretrain_config(killed), killed, resume=True, progress=False)
    assert result.first_step == 4
    expected = load_model(tmp_path / "straight").state_dict()
    for key, value in result.model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)


def test_refuses_a_non_empty_output_folder(birds, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty; pass --resume"):
        pretrain(_run(birds, out, 1), out, progress=False)
    with pytest.raises(ConfigError, match="no training_state.pt to resume"):
        pretrain(_run(birds, out, 1), out, resume=True, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"


def test_cli_pretrain_writes_a_loadable_run_and_resumes(tmp_path, capsys):
    """Through an asset name (the mirror, as conftest sets it), augmentations on."""
    out = tmp_path / "cli"
    tiny = ["--set", "dec_rnn_size=16", "--set", "enc_rnn_size=8", "--set", "z_size=4",
            "--set", "num_mixture=2", "--set", "max_seq_len=30", "--set", "batch_size=4"]
    args = ["pretrain", "--data", "quickdraw:bird/simplified", "--out", str(out),
            "--decoder-only", "--steps", "3",
            "--set", "valid_fraction=0.4", "--quiet", *tiny]
    assert main(args) == 0
    for name in ("model.safetensors", "model_config.json", STATE_FILE, "pretrain_config.json",
                 "metrics.csv"):
        assert (out / name).is_file(), name
    assert list((out / "tb").glob("events.out.tfevents.*"))
    model = load_model(out)
    assert not model.config.conditional and model.config.dec_rnn_size == 16
    assert model.config.name == "bird" and model.config.random_scale_factor == 0.15
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert {row["split"] for row in rows} == {"train", "valid"}
    assert json.loads((out / "pretrain_config.json").read_text())["num_steps"] == 3

    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert "not empty" in error and "--resume" in error and len(error.splitlines()) == 1

    assert main(["pretrain", "--out", str(out), "--resume", "--steps", "5", "--quiet"]) == 0
    assert torch.load(out / STATE_FILE, weights_only=True)["step"] == 5
    assert "trained steps 3..5" in capsys.readouterr().out
