"""`sketchrl reproduce`: presets agree with the experiment files, seeds aggregate as computed by
hand, and --quick runs the whole study (identically twice, and on Ray)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from sketchrl.cli.main import main
from sketchrl.errors import ConfigError
from sketchrl.reproduce import Study, get_preset
from sketchrl.reproduce.aggregate import summarize, welch_p_value
from sketchrl.reproduce.presets import ABLATION_GAMMAS
from sketchrl.reproduce.tables import build_table
from sketchrl.rl import load_rl_config

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
# Keys a preset may size differently from the experiment files.
SIZED_KEYS = ("episodes", "lr", "device", "seed")


def assert_same_run(study: Study, task, method, path: Path) -> None:
    from_preset = study.rl_config(task, method).to_dict()
    from_file = load_rl_config(path).to_dict()
    options = from_preset.pop("reward_options"), from_file.pop("reward_options")
    if options[0].get("model") == str(study.paths.classifier("reward")):
        assert options[1]["model"] == "runs/classifier-reward"
        options[0]["model"] = options[1]["model"]
    assert options[0] == options[1], method.name
    sized = SIZED_KEYS if study.preset.name == "offline-paper" else ("device", "seed")
    for key in from_preset:
        if key not in sized:
            assert from_preset[key] == from_file[key], (method.name, key)


def test_offline_full_preset_trains_what_the_experiment_files_say(tmp_path):
    study = Study(get_preset("offline-full"), tmp_path)
    for task in study.preset.tasks:
        for method in study.preset.trained_methods:
            assert_same_run(study, task, method,
                            EXPERIMENTS / "offline" / f"{task.name}_{method.name}.toml")


def changed_keys(path: Path, base: Path) -> dict:
    """The keys whose values differ between two run config files, with ``path``'s values."""
    config, base_config = load_rl_config(path).to_dict(), load_rl_config(base).to_dict()
    return {key: value for key, value in config.items() if base_config[key] != value}


def test_each_tasks_best_file_is_its_grpo_method_plus_the_chosen_keys():
    """recognize's best is the studies' GRPO with k2, a higher lr and a weight average; steer's
    is GRPO with the learning rate annealed to zero and a reward of two terms: the classifier
    reward averaged over an ensemble, and realism against real owls (steer_annealed.toml, the
    best before the realism term, is the same without it)."""
    offline = EXPERIMENTS / "offline"
    assert changed_keys(offline / "recognize_best.toml", offline / "recognize_grpo.toml") == {
        "kl_estimator": "k2", "lr": 4.5e-5, "ema_half_life": 1000}
    grpo_reward = load_rl_config(offline / "steer_grpo.toml").reward_options
    ensemble = ["runs/classifier-reward-s1", "runs/classifier-reward-s2"]
    terms = [
        {"name": "classifier", "weight": 1.0, "options": {**grpo_reward, "ensemble": ensemble}},
        {"name": "realism", "weight": 1.0,
         "options": {"model": grpo_reward["model"], "category": "owl"}},
    ]
    assert changed_keys(offline / "steer_best.toml", offline / "steer_grpo.toml") == {
        "lr_end": 0.0, "reward": "weighted_sum", "reward_options": {"terms": terms}}
    assert changed_keys(offline / "steer_annealed.toml", offline / "steer_grpo.toml") == {
        "lr_end": 0.0, "reward_options": terms[0]["options"]}


@pytest.mark.parametrize("name, weight", [("steer_realism05", 0.5), ("steer_realism20", 2.0)])
def test_the_tried_realism_weights_are_steer_best_with_that_weight(name, weight):
    offline = EXPERIMENTS / "offline"
    best = load_rl_config(offline / "steer_best.toml").reward_options
    best["terms"][1]["weight"] = weight
    assert changed_keys(offline / f"{name}.toml", offline / "steer_best.toml") == {
        "reward_options": best}


def test_the_recognize_soup_files_are_the_studys_runs_at_half_the_episodes():
    offline = EXPERIMENTS / "offline"
    assert changed_keys(offline / "recognize_soup_grpo.toml", offline / "recognize_grpo.toml") == {
        "episodes": 2500, "kl_estimator": "k2"}
    assert changed_keys(offline / "recognize_soup_ppo.toml", offline / "recognize_ppo.toml") == {
        "episodes": 2500}


def test_the_main_job_is_offline_full_with_fewer_episodes_and_no_sweep(tmp_path):
    main_job, full = get_preset("offline"), get_preset("offline-full")
    assert main_job.training_settings == {"episodes": 2000} and not main_job.sweeps
    assert (main_job.seeds, full.seeds) == (3, 5)
    assert dataclasses.replace(main_job, name=full.name, description=full.description,
                               training=(), sweeps=full.sweeps, seeds=5) == full
    runs = Study(main_job, tmp_path).runs()
    assert len(runs) == 2 * 3 * 3
    config = Study(main_job, tmp_path).rl_config(*runs[0])
    assert config.episodes == 2000 and Study(full, tmp_path).rl_config(*runs[0]).episodes == 5000


def test_the_kl_sweep_includes_each_tasks_own_weight_once(tmp_path):
    preset = get_preset("offline-full")
    for task, own in (("recognize", 0.05), ("steer", 0.03)):
        pairs = preset.sweep_methods(preset.sweeps[0], task)
        assert [value for value, _ in pairs] == sorted({0.0, 0.2, own})
        assert [m.name for v, m in pairs if v == own] == ["grpo"]
        variant = next(m for v, m in pairs if v == 0.2)
        assert variant.settings_for(task)["kl_beta"] == 0.2
    runs = Study(preset, tmp_path).runs()
    assert len(runs) == len(set(runs)) == 2 * (3 * 5 + 2)  # 3 methods x 5 seeds, 2 sweep runs


@pytest.mark.parametrize("preset_name, folder, files", [
    ("offline-paper", "offline", {"ssim_sparse": "ssim", "classifier_sparse":
                                  "classifier_sparse", "classifier_dense": "classifier_dense"}),
    ("paper", "paper", {"clip_sparse": "clip_sparse", "ssim_sparse": "ssim_sparse",
                        "clip_dense": "clip_dense"}),
])
def test_paper_presets_train_what_the_experiment_files_say(tmp_path, preset_name, folder, files):
    study = Study(get_preset(preset_name), tmp_path)
    for method in study.preset.methods:
        assert_same_run(study, study.preset.tasks[0], method,
                        EXPERIMENTS / folder / f"{files[method.name]}.toml")


def test_the_ablation_covers_the_papers_gammas_and_reuses_the_dense_run():
    gammas = sorted(load_rl_config(p).gamma for p in EXPERIMENTS.glob("paper/clip_dense_gamma_*"))
    assert gammas == sorted(ABLATION_GAMMAS)
    preset = get_preset("offline-paper")
    pairs = preset.sweep_methods(preset.sweeps[0])
    assert [value for value, _ in pairs] == list(ABLATION_GAMMAS)
    assert pairs[0][1].name == "classifier_dense"  # gamma = 1 is the dense run itself


def test_unknown_preset_and_settings_are_config_errors():
    with pytest.raises(ConfigError, match="offline"):
        get_preset("owl")
    with pytest.raises(ConfigError, match="unknown preset setting"):
        get_preset("offline", episodez=3)
    with pytest.raises(ConfigError, match="at least one seed"):
        get_preset("offline", seeds=0)


def test_seed_aggregation_by_hand():
    values = [0.90, 0.94, 0.95]
    summary = summarize(values)
    mean = sum(values) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t_{0.975, 2}
    assert summary.mean == pytest.approx(mean)
    assert (summary.low, summary.high) == pytest.approx((mean - half, mean + half))
    assert summarize([0.5], (0.4, 0.6)).low == 0.4  # one seed: the evaluation's own interval
    assert summarize([None, float("nan")]) is None
    # Welch's t test on per-seed values (scipy), None with one seed
    assert welch_p_value([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]) < 0.01
    assert welch_p_value([1.0], [2.0, 2.1]) is None


def test_tables_mark_significant_differences_and_keep_every_seed(tmp_path):
    def seeds(rates, recalls):
        return [{"classifier_rate": r, "recall": c, "n": 100, "train_seed": k}
                for k, (r, c) in enumerate(zip(rates, recalls, strict=True))]

    table = build_table("t", "T", [
        ("pretrained", seeds([0.90, 0.91, 0.89], [0.60, 0.61, 0.62])),
        ("REINFORCE", seeds([0.92, 0.90, 0.91], [0.50, 0.49, 0.52])),
        ("GRPO", seeds([0.98, 0.97, 0.99], [0.60, 0.62, 0.61])),
    ], "P", "REINFORCE", 100)
    text = table.markdown()
    grpo = next(line for line in text.splitlines() if line.startswith("| GRPO"))
    reinforce = next(line for line in text.splitlines() if line.startswith("| REINFORCE"))
    assert "98.0%*†" in grpo  # judge: differs from both
    assert "0.503*" in reinforce  # recall: REINFORCE lost diversity
    assert "0.610*" not in grpo and "0.610†" in grpo  # GRPO kept it (differs from REINFORCE)
    table.write_csv(tmp_path / "t.csv")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert sum(line.startswith("GRPO,") for line in lines) == 4  # 3 seeds + the summary


def run_quick(out: Path, *extra: str, preset: str = "offline") -> int:
    return main(["reproduce", "--preset", preset, "--quick", "--seeds", "2", "--out",
                 str(out), "--quiet", *extra])


def table_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.csv")) + [out / "tables.md"]}


@pytest.mark.slow
def test_quick_study_twice_gives_identical_tables_and_resumes(tmp_path, shared_assets, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert run_quick(first, "--workers", "2", preset="offline-full") == 0  # with its sweep
    printed = capsys.readouterr().out
    assert "recognize" in printed and "steer" in printed and "report:" in printed
    soup = first / "runs" / "recognize" / "soup" / "seed1"
    assert json.loads((soup / "interpolation.json").read_text())["weight"] == 0.25
    steer_soup = first / "runs" / "steer" / "soup" / "seed1"
    assert json.loads((steer_soup / "interpolation.json").read_text())["weight"] == 0.5
    assert "GRPO + PPO soup (0.25 PPO)" in (first / "recognize.csv").read_text()
    assert "GRPO + PPO soup (0.5 PPO)" in (first / "steer.csv").read_text()
    for name in ("report.html", "pareto.png", "samples.png", "reward_curves.png",
                 "environment.json", "timings.json", "recognize.csv", "steer.csv",
                 "recognize_kl_sweep.csv", "steer_kl_sweep.csv"):
        assert (first / name).stat().st_size > 0, name
    assert "Draw with the fine-tuned models" in (first / "report.html").read_text()
    assert (first / "runs" / "steer" / "grpo" / "seed0" / "page" / "model.json").is_file()
    environment = json.loads((first / "environment.json").read_text())
    assert environment["torch_threads_per_step"] == 1 and environment["packages"]["torch"]
    assert run_quick(second, "--workers", "1", preset="offline-full") == 0
    assert table_files(first) == table_files(second)
    # Re-running finishes nothing new and rewrites the same tables.
    stamps = {p: p.stat().st_mtime_ns for p in first.rglob("metrics.json")}
    assert run_quick(first, preset="offline-full") == 0
    assert {p: p.stat().st_mtime_ns for p in first.rglob("metrics.json")} == stamps
    assert table_files(first) == table_files(second)
    # Another study into the same folder is refused before anything is written.
    assert main(["reproduce", "--preset", "offline", "--quick", "--seeds", "2", "--out",
                 str(first), "--quiet"]) == 2
    assert "other settings" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["--executor", "dask"], "unknown executor"),
    (["--executor", "ray", "--address", "127.0.0.1:1"], "cannot reach"),
    (["--seeds", "0"], "--seeds"),
    (["--workers", "64"], "cores"),
])
def test_bad_study_input_is_one_line_and_writes_nothing(tmp_path, shared_assets, capsys,
                                                        arguments, message):
    out = tmp_path / "study"
    code = main(["reproduce", "--preset", "offline", "--quick", "--out", str(out), "--quiet",
                 *arguments])
    error = capsys.readouterr().err
    assert code == 2 and message in error and len(error.strip().splitlines()) == 1, error
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.ray
def test_ray_gives_the_local_tables_and_retries_a_killed_step(tmp_path, shared_assets,
                                                              monkeypatch):
    pytest.importorskip("ray")
    from sketchrl.reproduce.steps import FAULT_KILL_ENV

    local, remote = tmp_path / "local", tmp_path / "ray"
    assert run_quick(local, "--workers", "2") == 0
    killed = remote / "runs" / "steer" / "grpo" / "seed1"
    marker = tmp_path / "killed-once"
    monkeypatch.setenv(FAULT_KILL_ENV, f"{killed}={marker}")
    assert run_quick(remote, "--executor", "ray") == 0
    assert marker.exists(), "the fault was not injected"
    state = json.loads(json.dumps(_attempts(killed)))
    assert state == 2  # the run was resumed from its checkpoint, not started again
    assert table_files(local) == table_files(remote)


def _attempts(run_dir: Path) -> int:
    from sketchrl.rl.run_files import RunState

    return RunState.load(run_dir).attempts


def test_a_step_recomputed_from_nothing_starts_its_time_afresh(tmp_path):
    """A resumed step adds to its recorded time; one whose output folder was removed (so it
    runs again from scratch) does not carry the time of the run it replaces."""
    from sketchrl.reproduce.executors import Step
    from sketchrl.reproduce.pipeline import fresh_timings
    from sketchrl.reproduce.steps import train_step

    def step(key: str) -> Step:
        return Step(key, train_step, {"out": str(tmp_path / key)}, done=tmp_path / key / "DONE")

    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "DONE").touch()
    (tmp_path / "partial").mkdir()
    recorded = {"done": 5.0, "partial": 7.0, "removed": 9.0, "other": 1.0}
    steps = [step("done"), step("partial"), step("removed")]
    assert fresh_timings(recorded, steps) == {"done": 5.0, "partial": 7.0, "other": 1.0}
