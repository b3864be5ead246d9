"""``sketchrl reproduce --update``: a study whose preset changed redoes only what changed. A
finished run or soup made with other settings stops it (never overwritten); an evaluation of a
model made again, or with other settings, is redone."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sketchrl.errors import ConfigError
from sketchrl.evaluate import evaluate_model
from sketchrl.models import save_model
from sketchrl.models.io import weights_digest
from sketchrl.reproduce import Study, get_preset
from sketchrl.reproduce.presets import Soup
from sketchrl.reproduce.steps import (
    evaluation_is_current,
    run_differences,
    soup_differences,
    soup_step,
)
from sketchrl.rl import DONE_FILE, RLConfig
from tests.test_evaluate import PixelFeatures
from tests.test_reproduce_soup import tiny_model


def test_a_finished_run_differs_in_its_settings_not_its_bookkeeping(tmp_path):
    config = RLConfig(model="sketchrnn:bird", reward="ssim", lr=3e-5, episodes=64)
    out = tmp_path / "run"
    out.mkdir()
    config.save_json(out / "rl_config.json")
    assert run_differences(str(out), {**config.to_dict(), "lr": 1e-4}) == []  # not finished
    (out / DONE_FILE).write_text("done\n")
    assert run_differences(str(out), config.to_dict()) == []
    assert run_differences(str(out), {**config.to_dict(), "kl_log_every": 5}) == []
    changed = {**config.to_dict(), "lr": 1e-4, "kl_beta": 0.1, "episodes": 128}
    assert sorted(run_differences(str(out), changed)) == ["episodes", "kl_beta", "lr"]


def test_a_finished_soup_differs_in_its_weight_or_runs(tmp_path):
    save_model(tiny_model(0), tmp_path / "base")
    save_model(tiny_model(1), tmp_path / "other")
    base, other, out = str(tmp_path / "base"), str(tmp_path / "other"), str(tmp_path / "soup")
    assert soup_differences(out, base, other, 0.5, threads=1) == []  # not made yet
    soup_step(out, base, other, 0.2, threads=1)
    assert soup_differences(out, base, other, 0.2, threads=1) == []
    assert soup_differences(out, base, other, 0.5, threads=1) == ["weight"]
    assert soup_differences(out, other, base, 0.2, threads=1) == ["model", "base"]
    (tmp_path / "soup" / "interpolation.json").unlink()
    assert soup_differences(out, base, other, 0.2, threads=1) == ["no interpolation.json"]


def test_an_evaluation_is_current_only_for_the_same_model_and_settings(tmp_path):
    save_model(tiny_model(0), tmp_path / "model")
    model, out = str(tmp_path / "model"), str(tmp_path / "eval")
    metrics = evaluate_model(model, 8, reference="quickdraw:bird", max_len=20, seed=3,
                             extractor=PixelFeatures(), out_dir=out)
    assert metrics["model_digest"] == weights_digest(model) is not None
    asked = {"n": 8, "reference": "quickdraw:bird", "seed": 3, "max_len": 20}
    assert evaluation_is_current(out, model, **asked)
    for key, value in (("n", 9), ("reference", "quickdraw:owl"), ("seed", 4), ("max_len", 25)):
        assert not evaluation_is_current(out, model, **{**asked, key: value})
    assert not evaluation_is_current(str(tmp_path / "none"), model, **asked)
    save_model(tiny_model(1), tmp_path / "model")  # the run made again
    assert not evaluation_is_current(out, model, **asked)
    recorded = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    recorded.pop("model_digest")  # an evaluation from before digests: taken as current
    (tmp_path / "eval" / "metrics.json").write_text(json.dumps(recorded))
    assert evaluation_is_current(out, model, **asked)
    assert weights_digest("sketchrnn:bird") is None


def test_a_weights_digest_is_read_once_per_version_of_the_file(tmp_path, monkeypatch):
    import sketchrl.assets

    reads = []
    digest = sketchrl.assets.file_digest
    monkeypatch.setattr(sketchrl.assets, "file_digest", lambda path: reads.append(path)
                        or digest(path))
    save_model(tiny_model(0), tmp_path / "model")
    first = weights_digest(tmp_path / "model")
    assert weights_digest(tmp_path / "model") == first and len(reads) == 1
    save_model(tiny_model(1), tmp_path / "model")  # the same size, written again
    assert weights_digest(tmp_path / "model") not in (first, None) and len(reads) == 2


def quick_study(tmp_path, steer_weight: float, **options) -> Study:
    preset = get_preset("offline", quick=True, seeds=1)
    soup = Soup("grpo", "ppo", 0.2, per_task=(("steer", steer_weight),))
    methods = tuple(dataclasses.replace(m, soup=soup) if m.soup else m for m in preset.methods)
    return Study(dataclasses.replace(preset, methods=methods), tmp_path, **options)


def test_update_resumes_a_changed_study_and_stops_at_a_stale_soup(tmp_path):
    before = quick_study(tmp_path, 0.2)
    before.paths.root.mkdir(parents=True, exist_ok=True)
    before.save_preset()
    soup = before.paths.run("steer", "soup", 0)
    soup.mkdir(parents=True)
    (soup / "interpolation.json").write_text(json.dumps({
        "model": str(before.paths.run("steer", "ppo", 0)),
        "base": str(before.paths.run("steer", "grpo", 0)), "weight": 0.2}))
    (soup / DONE_FILE).write_text("mixed\n")
    with pytest.raises(ConfigError, match="other settings .*--update"):
        quick_study(tmp_path, 0.5).check_out_dir()
    after = quick_study(tmp_path, 0.5, update=True)
    after.check_out_dir()  # the preset may differ now
    before.check_finished_runs(before.steps())
    with pytest.raises(ConfigError, match=rf"1 finished run.*{soup} \(weight\); delete"):
        after.check_finished_runs(after.steps())
    for role in ("reward", "eval"):  # the classifiers as if trained
        after.paths.classifier(role).mkdir(parents=True)
        (after.paths.classifier(role) / "metrics.json").write_text("{}")
    evaluation = next(s for s in after.steps() if s.key == "eval-steer-soup-s0")
    assert not evaluation.kwargs["redo"] and not evaluation.is_done()  # nothing evaluated yet
    evaluation_dir = after.paths.evaluation("steer", "soup", 0)
    evaluation_dir.mkdir(parents=True)
    (evaluation_dir / "metrics.json").write_text(json.dumps({
        "model": str(soup), "n": after.preset.n_eval, "reference": "quickdraw:owl",
        "seed": 1000, "max_len": 40}))
    assert evaluation.is_done()  # an evaluation from before digests: current
    (soup / DONE_FILE).unlink()  # the soup deleted, to be mixed again: its evaluation too
    evaluation = next(s for s in after.steps() if s.key == "eval-steer-soup-s0")
    assert evaluation.kwargs["redo"] and not evaluation.is_done()
    changed_classifier = dataclasses.replace(after.preset, eval_classifier_arch="resnet18")
    with pytest.raises(ConfigError, match="classifiers' settings changed"):
        Study(changed_classifier, tmp_path, update=True).check_out_dir()
