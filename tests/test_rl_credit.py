"""Credit assignment and loss terms against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from sketchrl.rewards.dense import checkpoint_lengths
from sketchrl.rl.algorithms.base import clipped_surrogate
from sketchrl.rl.credit import (
    checkpoint_mask,
    final_rewards,
    gae,
    group_advantages,
    group_step_advantages,
    place_rewards,
    reward_to_go,
    whiten_steps,
)
from sketchrl.rl.experience import k3_divergence


def test_group_advantages_by_hand():
    returns = torch.tensor([1.0, 3.0, 0.0, 0.0, 2.0, 6.0])  # groups of 2: (1, 3), (0, 0), (2, 6)
    none = group_advantages(returns, 2, "none")
    assert torch.allclose(none, torch.tensor([-1.0, 1.0, 0.0, 0.0, -2.0, 2.0]))
    group = group_advantages(returns, 2, "group")
    # each non-flat group: (r - mean) / population std = +-1; the flat group gets zeros
    assert torch.allclose(group, torch.tensor([-1.0, 1.0, 0.0, 0.0, -1.0, 1.0]), atol=1e-6)
    batch = group_advantages(returns, 2, "batch")
    std = returns.std(unbiased=False)
    assert torch.allclose(batch, none / std, atol=1e-6)
    # groups of 3: (1, 3, 0), (0, 2, 6)
    three = group_advantages(returns, 3, "none")
    assert torch.allclose(three, torch.tensor([-1 / 3, 5 / 3, -4 / 3, -8 / 3, -2 / 3, 10 / 3]))
    with pytest.raises(ValueError, match="scale"):
        group_advantages(returns, 2, "rank")


def test_one_group_whitening_is_the_papers():
    from sketchrl.rl import whiten

    returns = torch.tensor([0.1, 0.5, 0.2, 0.9, 0.4, 0.4, 0.3, 0.8])
    assert torch.allclose(group_advantages(returns, 8, "group"), whiten(returns), atol=1e-6)


def test_checkpoint_mask_matches_the_dense_reward():
    lengths = torch.tensor([0, 3, 10, 25, 26, 40])
    steps = 40  # the last episode ran to the step limit without ending
    mask = checkpoint_mask(lengths, steps, 10)
    for row, length in enumerate(lengths.tolist()):
        expected_steps = [k - 1 for k in checkpoint_lengths(length, 10)[:-1]]
        expected_steps.append(min(length, steps - 1))  # the whole sketch: its last step
        assert mask[row].nonzero().flatten().tolist() == expected_steps, length


def test_place_and_final_rewards():
    where = torch.tensor([[False, True, False, True], [True, False, False, False]])
    placed = place_rewards(torch.tensor([1.0, 2.0, 3.0]), where)
    assert placed.tolist() == [[0.0, 1.0, 0.0, 2.0], [3.0, 0.0, 0.0, 0.0]]
    final = final_rewards(torch.tensor([5.0, 7.0]), torch.tensor([1, 9]), 4)
    assert final.tolist() == [[0.0, 5.0, 0.0, 0.0], [0.0, 0.0, 0.0, 7.0]]


def test_reward_to_go_by_hand():
    # One episode, checkpoints at steps 1, 3, 4 with rewards 1, 2, 4; gamma 0.5 per checkpoint.
    checkpoints = torch.tensor([[False, True, False, True, True, False]])
    rewards = place_rewards(torch.tensor([1.0, 2.0, 4.0]), checkpoints)
    credit = reward_to_go(rewards, checkpoints, 0.5)
    g3 = 4.0
    g2 = 2.0 + 0.5 * g3
    g1 = 1.0 + 0.5 * g2
    assert credit.tolist() == [[g1, g1, g2, g2, g3, 0.0]]
    mean = reward_to_go(rewards, checkpoints, 0.5, normalize=True)
    w1, w2 = 1 + 0.5 + 0.25, 1 + 0.5
    assert torch.allclose(mean, torch.tensor([[g1 / w1, g1 / w1, g2 / w2, g2 / w2, g3, 0.0]]))
    undiscounted = reward_to_go(rewards, checkpoints, 1.0)
    assert undiscounted.tolist() == [[7.0, 7.0, 6.0, 6.0, 4.0, 0.0]]


def test_group_step_advantages_subtract_the_groups_step_mean():
    credit = torch.tensor([[3.0, 1.0], [1.0, 5.0], [2.0, 2.0], [4.0, 0.0]])
    mask = torch.tensor([[True, True], [True, False], [True, True], [True, True]])
    advantages = group_step_advantages(credit, mask, 2, "none")
    # group 1, step 0: mean 2 -> (1, -1); step 1: only episode 0 runs -> 0
    # group 2, step 0: mean 3 -> (-1, 1); step 1: mean 1 -> (1, -1)
    assert advantages.tolist() == [[1.0, 0.0], [-1.0, 0.0], [-1.0, 1.0], [1.0, -1.0]]
    episode_credit = torch.tensor([[2.0, 2.0], [4.0, 4.0]])
    both = torch.ones(2, 2, dtype=torch.bool)
    assert torch.allclose(group_step_advantages(episode_credit, both, 2, "group"),
                          torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), atol=1e-6)


def test_gae_by_hand():
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.4, 0.8, 9.0]])  # the last step is not sampled
    mask = torch.tensor([[True, True, True, False]])
    gamma, lam = 0.9, 0.8
    d2 = 1.0 - 0.8
    d1 = 0.0 + gamma * 0.8 - 0.4
    d0 = 0.0 + gamma * 0.4 - 0.5
    a2 = d2
    a1 = d1 + gamma * lam * a2
    a0 = d0 + gamma * lam * a1
    advantages, targets = gae(rewards, values, mask, gamma, lam)
    assert torch.allclose(advantages, torch.tensor([[a0, a1, a2, 0.0]]), atol=1e-6)
    assert torch.allclose(targets, torch.tensor([[a0 + 0.5, a1 + 0.4, a2 + 0.8, 0.0]]), atol=1e-6)
    # lambda = 1: the Monte-Carlo return minus the value
    mc, _ = gae(rewards, values, mask, gamma, 1.0)
    returns = torch.tensor([[gamma**2, gamma, 1.0, 0.0]])
    assert torch.allclose(mc, (returns - values) * mask, atol=1e-6)


def test_clipped_surrogate_clips_the_ratio_asymmetrically():
    old = torch.zeros(1, 4)
    new = torch.log(torch.tensor([[0.5, 0.5, 1.5, 1.5]]))  # ratios 0.5, 0.5, 1.5, 1.5
    advantages = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    loss, metrics = clipped_surrogate(new, old, advantages, mask, 0.2, 0.28)
    # min(r A, clip(r, 0.8, 1.28) A): 0.5 (unclipped, r A smaller), -0.8 (clipped),
    # 1.28 (clipped), -1.5 (unclipped)
    assert loss.item() == pytest.approx(-(0.5 - 0.8 + 1.28 - 1.5))
    assert metrics["clip_frac"] == pytest.approx(0.5)
    expected_kl = sum(r - 1 - math.log(r) for r in (0.5, 0.5, 1.5, 1.5)) / 4
    assert metrics["approx_kl"] == pytest.approx(expected_kl, rel=1e-5)
    # gradient flows only through the unclipped terms
    new.requires_grad_(True)
    clipped_surrogate(new, old, advantages, mask, 0.2, 0.28)[0].backward()
    assert (new.grad[0, [1, 2]] == 0).all() and (new.grad[0, [0, 3]] != 0).all()


def test_k3_is_a_kl_estimate():
    assert k3_divergence(torch.tensor([-1.0]), torch.tensor([-1.0])).item() == 0.0
    log_p, log_q = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    r = 0.25 / 0.5
    assert k3_divergence(log_p, log_q).item() == pytest.approx(r - 1 - math.log(r))
    # Monte-Carlo: E_p[k3] = KL(p || q) for two categoricals
    p, q = torch.tensor([0.7, 0.2, 0.1]), torch.tensor([0.3, 0.3, 0.4])
    draws = torch.multinomial(p, 200_000, replacement=True, generator=torch.Generator()
                              .manual_seed(0))
    estimate = k3_divergence(p.log()[draws], q.log()[draws]).mean()
    exact = (p * (p / q).log()).sum()
    assert estimate.item() == pytest.approx(exact.item(), rel=0.02)


def test_whiten_steps_ignores_unsampled_steps():
    values = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[True, True, False]])
    assert torch.allclose(whiten_steps(values, mask), torch.tensor([[-1.0, 1.0, 0.0]]),
                          atol=1e-6)
