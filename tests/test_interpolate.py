"""`sketchrl interpolate` and interpolate_weights: the mix of a fine-tune and its start."""

from __future__ import annotations

import json

import pytest
import torch

from sketchrl.cli.main import main
from sketchrl.errors import ConfigError
from sketchrl.models import SketchRNN, SketchRNNConfig, load_model, save_model
from sketchrl.models.interpolate import changed_tensors, interpolate_weights


def small_decoder(seed: int = 0, **changes) -> SketchRNN:
    torch.manual_seed(seed)
    values = {"name": "tiny", "conditional": False, "dec_rnn_size": 16, "num_mixture": 3,
              "max_seq_len": 40, "use_recurrent_dropout": False, **changes}
    return SketchRNN(SketchRNNConfig(**values)).eval()


def fine_tuned(start: SketchRNN) -> SketchRNN:
    """A copy of ``start`` whose decoder moved, as a fine-tune's does."""
    tuned = SketchRNN(start.config).eval()
    tuned.load_state_dict(start.state_dict())
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for parameter in tuned.decoder_parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return tuned


def test_the_ends_are_the_two_models_and_the_middle_their_mean():
    start = small_decoder()
    tuned = fine_tuned(start)
    for weight, expected in ((0.0, start), (1.0, tuned)):
        mixed = interpolate_weights(start, tuned, weight).state_dict()
        for name, tensor in expected.state_dict().items():
            assert torch.equal(mixed[name], tensor), (weight, name)
    half = interpolate_weights(start, tuned, 0.5).state_dict()
    moved = 0
    for name, tensor in tuned.state_dict().items():
        mean = (start.state_dict()[name].double() + tensor.double()) / 2
        torch.testing.assert_close(half[name].double(), mean, rtol=0, atol=1e-7)
        moved += not torch.equal(tensor, start.state_dict()[name])
    assert moved == changed_tensors(start, tuned) > 0


def test_a_weight_past_one_extrapolates():
    start = small_decoder()
    tuned = fine_tuned(start)
    name = next(n for n, p in tuned.named_parameters() if n.startswith("decoder"))
    far = interpolate_weights(start, tuned, 2.0).state_dict()[name]
    step = tuned.state_dict()[name] - start.state_dict()[name]
    torch.testing.assert_close(far, start.state_dict()[name] + 2 * step)


def test_different_architectures_and_bad_weights_are_refused():
    start = small_decoder()
    with pytest.raises(ConfigError, match="different architectures"):
        interpolate_weights(start, small_decoder(dec_rnn_size=8), 0.5)
    with pytest.raises(ConfigError, match="finite"):
        interpolate_weights(start, fine_tuned(start), float("nan"))


def test_cli_writes_a_loadable_mix_with_the_start_from_rl_config(tmp_path, capsys):
    from sketchrl.rl import RLConfig

    start, run = small_decoder(), tmp_path / "run"
    save_model(start, tmp_path / "start")
    tuned = fine_tuned(start)
    save_model(tuned, run)
    RLConfig(model=str(tmp_path / "start")).save_json(run / "rl_config.json")
    assert main(["interpolate", str(run), "--weight", "0.25", "--out",
                 str(tmp_path / "mix")]) == 0
    assert "start + 0.25 x (fine-tune - start)" in capsys.readouterr().out
    mixed = load_model(tmp_path / "mix")
    expected = interpolate_weights(start, tuned, 0.25)
    for name, tensor in expected.state_dict().items():
        assert torch.equal(mixed.state_dict()[name], tensor)
    record = json.loads((tmp_path / "mix" / "interpolation.json").read_text())
    assert record == {"model": str(run), "base": str(tmp_path / "start"), "weight": 0.25}


def test_cli_mistakes_are_one_line_errors_that_keep_work(tmp_path, capsys):
    start = small_decoder()
    save_model(start, tmp_path / "plain")  # a model folder without rl_config.json
    assert main(["interpolate", str(tmp_path / "plain"), "--weight", "0.5", "--out",
                 str(tmp_path / "a")]) == 2
    assert "give --base MODEL" in capsys.readouterr().err
    save_model(start, tmp_path / "taken")
    before = (tmp_path / "taken" / "model.safetensors").read_bytes()
    assert main(["interpolate", str(tmp_path / "plain"), "--base", str(tmp_path / "plain"),
                 "--weight", "0.5", "--out", str(tmp_path / "taken")]) == 2
    error = capsys.readouterr().err
    assert "already holds a model" in error and len(error.strip().splitlines()) == 1
    assert (tmp_path / "taken" / "model.safetensors").read_bytes() == before
    assert main(["interpolate", str(tmp_path / "plain"), "--base", str(tmp_path / "plain"),
                 "--weight", "nan", "--out", str(tmp_path / "b")]) == 2
    assert "finite" in capsys.readouterr().err
    save_model(small_decoder(dec_rnn_size=8), tmp_path / "other")
    assert main(["interpolate", str(tmp_path / "plain"), "--base", str(tmp_path / "other"),
                 "--weight", "0.5", "--out", str(tmp_path / "b")]) == 2
    assert "different architectures" in capsys.readouterr().err
    assert not (tmp_path / "b" / "model.safetensors").exists()
