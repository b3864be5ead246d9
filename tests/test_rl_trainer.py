"""REINFORCE trainer: what changes, what must not, resume, and the command line."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchrl.cli.main import main
from sketchrl.errors import ConfigError
from sketchrl.models import SketchRNN, SketchRNNConfig, load_model, save_model
from sketchrl.render import RenderOptions
from sketchrl.rewards import Reward
from sketchrl.rl import RLConfig, Trainer, read_metrics, train
from sketchrl.rl.run_files import LAST_POLICY_DIR


class InkReward(Reward):
    """Fraction of the 28x28 canvas covered by ink: a cheap reward for tests."""

    name = "ink"

    def __init__(self) -> None:
        self.render_options = RenderOptions(size=28, channels=1, ink_on_black=True)
        self.device = torch.device("cpu")

    def __call__(self, images: torch.Tensor, sketches: Sequence[np.ndarray]) -> torch.Tensor:
        return images.mean(dim=(1, 2, 3)).float()


def tiny_vae(seed: int = 0) -> SketchRNN:
    torch.manual_seed(seed)
    config = SketchRNNConfig(
        conditional=True, enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=3,
        max_seq_len=30,
    )
    return SketchRNN(config)


def tiny_config(**changes) -> RLConfig:
    values = dict(model="unused", reward="ink", episodes=4 * 8, batch_size=8, lr=1e-2,
                  max_len=20, warmup_batches=1, checkpoint_every=2, device="cpu")
    values.update(changes)
    return RLConfig(**values)


def parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.named_parameters()}


def encoder_parameter_names(model: SketchRNN) -> set[str]:
    """Names of the encoder's parameters (frozen by fine-tuning)."""
    return {name for name, value in model.named_parameters()
            if any(value is p for p in model.encoder_parameters())}


def assert_resume_continues_exactly(out: Path, **settings) -> list[dict[str, str]]:
    """Train 6 batches straight, and 2 then resumed to 6: the same weights (the model files,
    and the resumed policy against the straight run's last weights, which are in
    ``last_policy/`` when the files hold a weight average) and metrics bit for bit. Returns
    the straight run's metric rows."""
    config = tiny_config(episodes=6 * 8, **settings)
    train(config, out / "straight", policy=tiny_vae(), reward=InkReward(), progress=False)
    train(tiny_config(episodes=2 * 8, **settings), out / "resumed", policy=tiny_vae(),
          reward=InkReward(), progress=False)
    resumed = tiny_vae()
    train(config, out / "resumed", policy=resumed, reward=InkReward(), resume=True,
          progress=False)
    last_weights = out / "straight" / LAST_POLICY_DIR
    straight = load_model(last_weights if last_weights.exists() else out / "straight")
    resumed_weights = parameters(resumed)
    for name, value in parameters(straight).items():
        torch.testing.assert_close(resumed_weights[name], value, rtol=0, atol=0)
    resumed_files = parameters(load_model(out / "resumed"))
    for name, value in parameters(load_model(out / "straight")).items():
        torch.testing.assert_close(resumed_files[name], value, rtol=0, atol=0)
    rows = [read_metrics(out / run / "metrics.csv") for run in ("straight", "resumed")]
    assert rows[0] == rows[1]
    return rows[0]


def test_only_decoder_parameters_change(tmp_path):
    policy = tiny_vae()
    before = parameters(policy)
    encoder_names = encoder_parameter_names(policy)
    assert encoder_names, "the VAE must have encoder parameters for this test to mean anything"
    train(tiny_config(), tmp_path / "run", policy=policy, reward=InkReward(), progress=False)
    after = parameters(policy)
    for name in before:
        changed = not torch.equal(before[name], after[name])
        if name in encoder_names:
            assert not changed, f"frozen encoder parameter {name} changed"
    decoder_changed = [n for n in before if n not in encoder_names
                       and not torch.equal(before[n], after[n])]
    assert decoder_changed, "no decoder parameter changed"


def test_warmup_batches_change_no_weight():
    trainer = Trainer(tiny_config(warmup_batches=2), policy=tiny_vae(),
                               reward=InkReward(), device="cpu")
    before = parameters(trainer.policy)
    for _ in range(2):
        stats = trainer.run_batch()
        assert not stats["updated"]
    assert all(torch.equal(before[n], v) for n, v in parameters(trainer.policy).items())
    assert trainer.run_batch()["updated"]
    assert any(not torch.equal(before[n], v) for n, v in parameters(trainer.policy).items())


def test_batch_shares_one_z_and_logs_statistics():
    trainer = Trainer(tiny_config(), policy=tiny_vae(), reward=InkReward(), device="cpu")
    rollout = trainer.collect(trainer.batch_generator())
    assert torch.all(rollout.z == rollout.z[0])
    stats = trainer.run_batch()
    # Nothing has been updated yet (a warm-up batch): zero up to rounding, since the starting
    # policy is teacher-forced by another kernel than the sampler's (bit-equal on some CPUs).
    assert abs(stats["kl_to_start"]) < 1e-5
    assert stats["length_mean"] > 0
    assert 0 < stats["pen_entropy"] <= math.log(3)  # a real entropy of the 3 pen states
    assert math.isfinite(stats["nll_per_step"])
    assert stats["reward_min"] <= stats["reward_mean"] <= stats["reward_max"]


def test_gradients_are_clipped_elementwise(monkeypatch):
    trainer = Trainer(tiny_config(warmup_batches=0, grad_clip=1e-6, lr=1.0),
                               policy=tiny_vae(), reward=InkReward(), device="cpu")
    seen = []
    original = trainer.optimizer.step

    def spy_step(*args, **kwargs):
        seen.extend(float(p.grad.abs().max()) for p in trainer.optimizer.param_groups[0]["params"]
                    if p.grad is not None)
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer.optimizer, "step", spy_step)
    trainer.run_batch()
    assert seen and max(seen) <= 1e-6 + 1e-12


def test_the_log_counts_the_gradient_elements_the_clip_cuts():
    trainer = Trainer(tiny_config(warmup_batches=0, grad_clip=1.0), policy=tiny_vae(),
                      reward=InkReward(), device="cpu")
    weights = trainer.optimizer.param_groups[0]["params"]
    total = sum(w.numel() for w in weights)
    # d/dw of 0.5 w^2 / t is w / t: exactly the elements with |w| > t are cut. t lies in the
    # widest gap between the middle half's sorted |w|, so rounding cannot move one across it.
    values = torch.cat([w.detach().flatten() for w in weights]).abs().sort().values
    middle = slice(total // 4, 3 * total // 4)
    k = total // 4 + int((values[1:][middle] - values[:-1][middle]).argmax())
    threshold = float(values[k] + values[k + 1]) / 2
    logged = trainer.step(sum(0.5 / threshold * (w * w).sum() for w in weights))
    assert logged["grad_clipped"] == pytest.approx((total - k - 1) / total, abs=1e-12)
    assert logged["grad_norm"] > 1.0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_an_update_with_a_non_finite_gradient_is_skipped(bad, caplog):
    trainer = Trainer(tiny_config(warmup_batches=0), policy=tiny_vae(), reward=InkReward(),
                      device="cpu")
    before = parameters(trainer.policy)
    weights = trainer.optimizer.param_groups[0]["params"]
    overflowing = sum((w * w).sum() for w in weights) * bad  # inf x 0 gives NaN gradients
    norm = trainer.step(overflowing)["grad_norm"]
    assert not math.isfinite(norm) and "update is skipped" in caplog.text
    after = parameters(trainer.policy)
    assert all(torch.equal(after[name], value) for name, value in before.items())
    assert trainer.updates == 1 and not trainer.optimizer.state  # Adam took no step
    finite = trainer.step(sum((w * w).sum() for w in weights))["grad_norm"]  # this one updates
    assert math.isfinite(finite) and any(
        not torch.equal(parameters(trainer.policy)[name], value) for name, value in before.items())


def test_run_writes_metrics_checkpoint_and_loadable_policy(tmp_path):
    out = train(tiny_config(), tmp_path / "run", policy=tiny_vae(), reward=InkReward(),
                progress=False)
    rows = read_metrics(out / "metrics.csv")
    assert [int(r["batch"]) for r in rows] == [1, 2, 3, 4]
    for key in ("episodes", "reward_mean", "reward_std", "reward_max", "length_mean",
                "nll_per_step", "pen_entropy", "kl_to_start", "grad_norm", "grad_clipped"):
        assert key in rows[0]
    assert float(rows[-1]["kl_to_start"]) != 0.0
    assert (out / "tb").is_dir() and any((out / "tb").iterdir())
    assert (out / "reward_curve.png").stat().st_size > 1000
    assert RLConfig.load_json(out / "rl_config.json") == tiny_config()
    reloaded = load_model(out)
    assert isinstance(reloaded, SketchRNN)


def test_resume_continues_to_the_same_weights(tmp_path):
    straight = tiny_vae()
    train(tiny_config(), tmp_path / "straight", policy=straight, reward=InkReward(),
          progress=False)
    # An interrupted run: only half the batches, then resumed with the full episode count.
    train(tiny_config(episodes=2 * 8), tmp_path / "resumed", policy=tiny_vae(),
          reward=InkReward(), progress=False)
    resumed = tiny_vae()
    train(tiny_config(), tmp_path / "resumed", policy=resumed, reward=InkReward(),
          resume=True, progress=False)
    for name, value in parameters(straight).items():
        assert torch.allclose(value, parameters(resumed)[name], atol=1e-6), name
    rows = read_metrics(tmp_path / "resumed" / "metrics.csv")
    assert [int(r["batch"]) for r in rows] == [1, 2, 3, 4]


def train_killed_then_resumed(config: RLConfig, out: Path, monkeypatch) -> SketchRNN:
    """Train into ``out`` until the kill a ``kill_on_call`` patch arranged, undo the patch,
    resume to the end; returns the resumed policy."""
    with pytest.raises(KeyboardInterrupt):
        train(config, out, policy=tiny_vae(), reward=InkReward(), progress=False)
    monkeypatch.undo()
    resumed = tiny_vae()
    train(config, out, policy=resumed, reward=InkReward(), resume=True, progress=False)
    return resumed


@pytest.mark.parametrize("failing_write", ["model", "state"])
def test_a_kill_between_checkpoint_files_resumes_to_the_same_weights(tmp_path, monkeypatch,
                                                                     kill_on_call, failing_write):
    """A checkpoint is two files (the resume state, then model.safetensors): a kill while
    writing either one, at any batch, must resume to the uninterrupted run's weights."""
    import sketchrl.rl.run as run_module
    from sketchrl.rl.run_files import RunState

    config = tiny_config(checkpoint_every=1)
    straight = tiny_vae()
    train(config, tmp_path / "straight", policy=straight, reward=InkReward(), progress=False)
    # the checkpoint after batch 3: the kill arrives while one of its files is written
    if failing_write == "model":
        kill_on_call(run_module, "save_model", 3)
    else:
        kill_on_call(RunState, "save", 3)
    resumed = train_killed_then_resumed(config, tmp_path / "resumed", monkeypatch)
    for name, value in parameters(straight).items():
        torch.testing.assert_close(parameters(resumed)[name], value, rtol=0, atol=0)
    rows = read_metrics(tmp_path / "resumed" / "metrics.csv")
    assert [int(r["batch"]) for r in rows] == [1, 2, 3, 4]


def test_refuses_to_overwrite_or_resume_a_different_run(tmp_path):
    out = tmp_path / "run"
    train(tiny_config(episodes=16), out, policy=tiny_vae(), reward=InkReward(), progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny_config(), out, policy=tiny_vae(), reward=InkReward(), progress=False)
    with pytest.raises(ConfigError, match="lr"):
        train(tiny_config(lr=0.5), out, policy=tiny_vae(), reward=InkReward(), resume=True,
              progress=False)


def test_cli_train_ssim_on_a_saved_model(tmp_path, shared_assets, capsys):
    model_dir = tmp_path / "model"
    save_model(tiny_vae(), model_dir)
    config = tmp_path / "ssim.toml"
    config.write_text(
        f'model = "{model_dir}"\nreward = "ssim"\nepisodes = 24\nbatch_size = 8\n'
        'max_len = 20\nwarmup_batches = 1\ndevice = "cpu"\n'
        '[reward_options]\ntarget = "quickdraw:bird/simplified"\ntarget_index = 0\n'
    )
    out = tmp_path / "run"
    code = main(["train", "--config", str(config), "--set", "dense_every=5", "--set",
                 "dense_normalize=true", "--out", str(out), "--quiet"])
    assert code == 0
    assert "reward" in capsys.readouterr().out
    assert len(read_metrics(out / "metrics.csv")) == 3
    assert RLConfig.load_json(out / "rl_config.json").dense_every == 5
    # The run directory is accepted wherever a model name is.
    assert main(["sample", "--model", str(out), "-n", "2", "--out", str(tmp_path / "s"),
                 "--quiet"]) == 0
    # A run whose reward cannot load fails in one line and leaves no folder behind.
    broken = tmp_path / "broken"
    assert main(["train", "--config", str(config), "--set", "reward.target=missing.png",
                 "--out", str(broken), "--quiet"]) == 2
    assert not broken.exists()
    # A second run into the same folder is a one-line error, not a traceback.
    assert main(["train", "--config", str(config), "--out", str(out), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err


class ShortSketchReward(InkReward):
    """Prefers sketches with fewer rows: a reward whose gradient signal is strong and direct."""

    name = "short"

    def __call__(self, images: torch.Tensor, sketches: Sequence[np.ndarray]) -> torch.Tensor:
        return torch.tensor([-len(sketch) / 100 for sketch in sketches], dtype=torch.float32)


@pytest.mark.slow
def test_learning_raises_reward_of_fresh_samples_on_the_real_bird(shared_assets):
    """A short run on the real Magenta bird decoder raises the mean reward of *fresh* samples.

    The same seeds draw 128 sketches from the start and the fine-tuned policy; the increase
    must be large (> 0.1, i.e. 10 rows shorter on average) and clear to Welch's t-test.
    """
    from scipy import stats

    reward = ShortSketchReward()
    config = RLConfig(model="sketchrnn:bird", reward="short", episodes=8 * 32, batch_size=32,
                      lr=5e-5, warmup_batches=0, max_len=130, device="cpu", seed=1)

    def fresh_rewards(model: SketchRNN) -> np.ndarray:
        generator = torch.Generator().manual_seed(123)
        rollout = model.sample(128, temperature=0.5, max_len=130, generator=generator)
        return reward.score(rollout.to_stroke3()).numpy()

    before = fresh_rewards(load_model("sketchrnn:bird"))
    trainer = Trainer(config, policy=load_model("sketchrnn:bird"), reward=reward)
    for _ in range(config.num_batches):
        trainer.run_batch()
    after = fresh_rewards(trainer.policy)
    test = stats.ttest_ind(after, before, equal_var=False)
    assert after.mean() - before.mean() > 0.1, (before.mean(), after.mean())
    assert test.pvalue < 1e-6, test


@pytest.mark.parametrize("threads", [1, 2])
def test_flushing_denormals_in_backward_changes_no_weight(shared_assets, monkeypatch, threads):
    """The trainer treats subnormal floats as zero during the backward pass (speed: the mixture
    head's gradients hold some, and x86 multiplies them slowly): FTZ/DAZ on the calling thread
    and the head's gradient flushed in the tensor (for the matrix library's worker threads).
    The real bird, trained a few batches with and without both, ends with the same bits, and
    the switch is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        weights = trained_with_and_without_flushing(monkeypatch)
    finally:
        torch.set_num_threads(before)
    for name, value in weights["1"].items():
        assert torch.equal(value, weights["0"][name]), name
    subnormal = torch.tensor([1e-40])
    assert float(subnormal * 1.0) != 0.0, "flushing was left on after the backward pass"


def trained_with_and_without_flushing(monkeypatch) -> dict[str, dict[str, torch.Tensor]]:
    weights = {}
    for switch in ("1", "0"):
        monkeypatch.setenv("SKETCHRL_FTZ", switch)
        trainer = Trainer(RLConfig(
            model="sketchrnn:bird", reward="ssim", device="cpu", warmup_batches=1, seed=3,
            lr=1e-4, reward_options={"target": "quickdraw:bird/simplified"}))
        for _ in range(3):
            trainer.run_batch()
        weights[switch] = parameters(trainer.policy)
    return weights


def test_flushed_denormals_flushes_on_cpu_only_while_open(monkeypatch):
    from sketchrl.rl.trainer import flushed_denormals

    subnormal = torch.tensor([1e-40])
    with flushed_denormals(torch.device("cpu")):
        assert float(subnormal * 1.0) == 0.0
    assert float(subnormal * 1.0) != 0.0
    monkeypatch.setenv("SKETCHRL_FTZ", "0")
    with flushed_denormals(torch.device("cpu")):
        assert float(subnormal * 1.0) != 0.0
