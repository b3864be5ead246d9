"""Soups in a study: a method that mixes each seed's runs of two trained methods, no training."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from sketchrl.errors import ConfigError
from sketchrl.models import SketchRNN, SketchRNNConfig, load_model, save_model
from sketchrl.models.interpolate import interpolate_weights
from sketchrl.reproduce import Study, get_preset
from sketchrl.reproduce.presets import Method, Soup, Sweep
from sketchrl.reproduce.steps import soup_step


def test_the_offline_soup_mixes_each_seeds_grpo_and_ppo_once_both_are_trained(tmp_path):
    study = Study(get_preset("offline-full"), tmp_path)
    soup = study.preset.method("soup")
    assert soup.soup == Soup("grpo", "ppo", 0.25, per_task=(("steer", 0.5),))
    assert soup not in study.preset.trained_methods
    assert soup.label_for("recognize") == "GRPO + PPO soup (0.25 PPO)"
    assert soup.label_for("steer") == "GRPO + PPO soup (0.5 PPO)"
    assert soup.label_for() == "GRPO + PPO soup (W PPO)"
    assert soup.soup.describe() == "0.25 (steer 0.5)"
    assert all(method.name != "soup" for _, method, _ in study.runs())
    steps = {step.key: step for step in study.steps()}
    for task in ("recognize", "steer"):
        for seed in (0, 1, 2):
            step = steps[f"train-{task}-soup-s{seed}"]
            assert step.fn is soup_step
            assert step.kwargs["weight"] == {"recognize": 0.25, "steer": 0.5}[task]
            assert sorted(step.deps) == [f"train-{task}-grpo-s{seed}", f"train-{task}-ppo-s{seed}"]
            assert step.kwargs["base"] == str(study.paths.run(task, "grpo", seed))
            assert step.kwargs["other"] == str(study.paths.run(task, "ppo", seed))
            evaluation = steps[f"eval-{task}-soup-s{seed}"]
            assert f"train-{task}-soup-s{seed}" in evaluation.deps
            assert evaluation.kwargs["model"] == str(study.paths.run(task, "soup", seed))
            assert evaluation.kwargs["n"] == study.preset.n_eval


@pytest.mark.parametrize("change, message", [
    ({"methods_soup": Soup("grpo", "a2c", 0.2)}, "both must be trained"),
    ({"methods_soup": Soup("grpo", "ppo", 1.5)}, "not in"),
    ({"methods_soup": Soup("grpo", "soup", 0.2)}, "both must be trained"),
    ({"methods_soup": Soup("grpo", "ppo", 0.2, per_task=(("steer", -0.1),))}, "not in"),
    ({"methods_soup": Soup("grpo", "ppo", 0.2, per_task=(("stear", 0.5),))}, "no task 'stear'"),
    ({"sweeps": (Sweep("s", "soup's weight", "soup", "lr", (1e-4,)),)}, "not a trained"),
])
def test_a_soup_of_unknown_or_untrained_methods_is_a_config_error(change, message):
    preset = get_preset("offline-full")
    if "methods_soup" in change:
        bad = Method("soup", "soup", soup=change.pop("methods_soup"))
        change["methods"] = (*preset.trained_methods, bad)
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(preset, **change)


def tiny_model(seed: int) -> SketchRNN:
    torch.manual_seed(seed)
    return SketchRNN(SketchRNNConfig(name="tiny", conditional=False, dec_rnn_size=16,
                                     num_mixture=3, max_seq_len=40,
                                     use_recurrent_dropout=False)).eval()


def test_the_soup_step_writes_the_interpolated_model_once(tmp_path):
    base, other = tiny_model(0), tiny_model(1)
    save_model(base, tmp_path / "base")
    save_model(other, tmp_path / "other")
    out = tmp_path / "soup"
    soup_step(str(out), str(tmp_path / "base"), str(tmp_path / "other"), 0.2, threads=1)
    expected = interpolate_weights(base, other, 0.2).state_dict()
    mixed = load_model(out).state_dict()
    assert mixed.keys() == expected.keys()
    assert all(torch.equal(mixed[name], expected[name]) for name in expected)
    assert not torch.equal(mixed["decoder.output.weight"], base.state_dict()[
        "decoder.output.weight"])
    record = json.loads((out / "interpolation.json").read_text())
    assert record == {"model": str(tmp_path / "other"), "base": str(tmp_path / "base"),
                      "weight": 0.2}
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    soup_step(str(out), str(tmp_path / "base"), str(tmp_path / "other"), 0.2, threads=1)
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp  # done: not mixed again
