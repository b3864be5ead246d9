"""The algorithms through the shared trainer: groups, epochs, PPO's critic, credit, prefixes,
resume, and learning on the real bird decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchrl.errors import ConfigError
from sketchrl.models import load_model
from sketchrl.rl import RLConfig, Trainer, algorithm_names, load_rl_config, read_metrics, train
from sketchrl.rl.experience import policy_terms
from sketchrl.rl.trainer import BASE_METRICS
from tests.test_rl_trainer import (
    InkReward,
    ShortSketchReward,
    assert_resume_continues_exactly,
    parameters,
    tiny_config,
    tiny_vae,
)


def test_registry_lists_the_algorithms_and_rejects_others():
    assert {"reinforce", "grpo", "ppo"} <= set(algorithm_names())
    with pytest.raises(ConfigError, match="grpo, ppo, reinforce"):
        load_rl_config(None, ["algorithm=trpo"])
    with pytest.raises(ConfigError, match="epochs = 1"):
        load_rl_config(None, ["epochs=2"])  # reinforce is on-policy
    with pytest.raises(ConfigError, match="multiple of group_size"):
        load_rl_config(None, ["algorithm=grpo", "group_size=5"])
    with pytest.raises(ConfigError, match="leave_one_out"):
        load_rl_config(None, ["credit=reward_to_go", "advantage=leave_one_out"])


@pytest.mark.parametrize("settings", [
    dict(algorithm="grpo", group_size=4, epochs=2, minibatches=2, kl_beta=0.1,
         entropy_coef=0.01),
    dict(algorithm="grpo", group_size=4, scale_rewards="none", credit="reward_to_go",
         dense_every=5, dense_frame="final"),
    dict(algorithm="ppo", epochs=2, minibatches=2),
    dict(algorithm="ppo", dense_every=5, gamma=0.9, dense_normalize=True),
    dict(algorithm="reinforce", advantage="leave_one_out", kl_coef=0.1, group_size=4),
    dict(algorithm="reinforce", credit="reward_to_go", dense_every=5, kl_coef=0.1),
])
def test_algorithms_train_and_log(tmp_path, settings):
    config = tiny_config(**settings)
    policy = tiny_vae()
    before = parameters(policy)
    out = train(config, tmp_path / "run", policy=policy, reward=InkReward(), progress=False)
    rows = read_metrics(out / "metrics.csv")
    assert len(rows) == config.num_batches
    trainer_columns = set(BASE_METRICS)
    assert trainer_columns <= set(rows[0])
    updated = [r for r in rows if r["updated"] == "1"]
    assert all(np.isfinite(float(r["loss"])) and float(r["grad_norm"]) > 0 for r in updated)
    if settings["algorithm"] != "reinforce":
        assert all(0 <= float(r["clip_frac"]) <= 1 for r in updated)
        assert all(float(r["approx_kl"]) >= 0 for r in updated)
    if settings["algorithm"] == "ppo":
        assert all(np.isfinite(float(r["value_loss"])) for r in updated)
        assert "explained_variance" in rows[0]
    assert any(not torch.equal(before[n], v) for n, v in parameters(policy).items())


def test_one_group_grpo_step_equals_the_papers_reinforce_step():
    """At one epoch the ratio is 1: GRPO with one whitened group is REINFORCE."""
    results = []
    for algorithm in ("reinforce", "grpo"):
        config = tiny_config(algorithm=algorithm, warmup_batches=0, clip_low=0.2,
                             clip_high=0.28)
        trainer = Trainer(config, policy=tiny_vae(), reward=InkReward(), device="cpu")
        trainer.run_batch()
        results.append(parameters(trainer.policy))
    for name, value in results[0].items():
        torch.testing.assert_close(value, results[1][name], rtol=1e-5, atol=1e-7)


def test_one_pass_gradient_equals_teacher_forcing_gradient():
    config = tiny_config(warmup_batches=0)
    trainer = Trainer(config, policy=tiny_vae().double(), reward=InkReward(), device="cpu")
    rollout = trainer.collect(trainer.batch_generator(), grad=True)
    batch = trainer.score(rollout)
    trainer.algorithm.prepare(batch)
    terms = policy_terms(trainer.policy, rollout, trainer.temperature)
    torch.testing.assert_close(terms.log_probs, rollout.log_probs, rtol=0, atol=1e-9)
    grads = []
    for log_probs in (rollout.log_probs, terms.log_probs):
        trainer.policy.zero_grad()
        (-(batch.advantages * log_probs).sum()).backward(retain_graph=True)
        grads.append([p.grad.clone() for p in trainer.policy.decoder.parameters()])
    for one_pass, teacher in zip(*grads, strict=True):
        torch.testing.assert_close(one_pass, teacher, rtol=1e-7, atol=1e-10)


def test_reference_policy_runs_only_when_needed(monkeypatch):
    calls = []
    trainer = Trainer(tiny_config(kl_log_every=3), policy=tiny_vae(), reward=InkReward(),
                      device="cpu")
    original = trainer.reference_log_probs
    monkeypatch.setattr(trainer, "reference_log_probs",
                        lambda rollout: calls.append(trainer.batch_index) or original(rollout))
    rows = [trainer.run_batch() for _ in range(4)]
    assert calls == [0, 3]  # every kl_log_every batches
    assert np.isnan(rows[1]["kl_to_start"]) and np.isfinite(rows[3]["kl_to_start"])
    with_kl = Trainer(tiny_config(algorithm="grpo", kl_beta=0.1), policy=tiny_vae(),
                      reward=InkReward(), device="cpu")
    assert all(np.isfinite(with_kl.run_batch()["kl_k3"]) for _ in range(3))


def test_ppo_value_head_depends_on_the_seed_alone():
    """Not on what ran before in the process (a study runs many steps in one worker)."""
    from sketchrl.rl.algorithms import get_algorithm

    heads = []
    for global_seed, seed in ((1, 0), (2, 0), (1, 1)):
        torch.manual_seed(global_seed)
        ppo = get_algorithm("ppo")(RLConfig(algorithm="ppo", seed=seed), 16, torch.device("cpu"))
        heads.append(torch.cat([p.flatten() for p in ppo.value_head.parameters()]))
    assert torch.equal(heads[0], heads[1]) and not torch.equal(heads[0], heads[2])


def test_ppo_resume_continues_exactly(tmp_path):
    assert_resume_continues_exactly(tmp_path, algorithm="ppo", epochs=2, checkpoint_every=2)


def test_prefix_episodes_start_from_real_drawings(shared_assets):
    config = tiny_config(prefix_from="quickdraw:bird/simplified", prefix_fraction=0.3,
                         group_size=4, max_len=60)
    trainer = Trainer(config, policy=tiny_vae(), reward=InkReward(), device="cpu")
    rollout = trainer.collect(trainer.batch_generator())
    given = rollout.prefix_lengths
    assert given.min() >= 1
    assert torch.equal(given[:4], given[:1].expand(4))  # a group shares its prefix
    torch.testing.assert_close(rollout.strokes[:4, :int(given[0])],
                               rollout.strokes[:1, :int(given[0])].expand(4, -1, -1))
    assert not (rollout.mask & (torch.arange(rollout.strokes.shape[1]) < given[:, None])).any()
    stats = trainer.run_batch()
    assert np.isfinite(stats["reward_mean"])


@pytest.mark.slow
@pytest.mark.parametrize("settings", [
    dict(algorithm="grpo", group_size=8, epochs=2, minibatches=2),
    dict(algorithm="ppo", epochs=2, minibatches=2, warmup_batches=2),
])
def test_learning_on_the_real_bird(shared_assets, settings):
    """GRPO and PPO raise the reward of *fresh* samples of the real Magenta bird decoder
    (the test of REINFORCE in test_rl_trainer.py, with the same reward and budget)."""
    from scipy import stats

    reward = ShortSketchReward()
    settings = {"warmup_batches": 0, **settings}
    config = RLConfig(model="sketchrnn:bird", reward="short", episodes=8 * 32, batch_size=32,
                      lr=5e-5, max_len=130, device="cpu", seed=1, **settings)

    def fresh_rewards(model) -> np.ndarray:
        rollout = model.sample(128, temperature=0.5, max_len=130,
                               generator=torch.Generator().manual_seed(123))
        return reward.score(rollout.to_stroke3()).numpy()

    before = fresh_rewards(load_model("sketchrnn:bird"))
    trainer = Trainer(config, policy=load_model("sketchrnn:bird"), reward=reward)
    for _ in range(config.num_batches):
        trainer.run_batch()
    after = fresh_rewards(trainer.policy)
    test = stats.ttest_ind(after, before, equal_var=False)
    assert after.mean() - before.mean() > 0.1, (before.mean(), after.mean())
    assert test.pvalue < 1e-6, test
