"""The per-step KL estimators of the ``kl_beta`` term: values by hand, and the gradients they give
as a loss on the policy's own samples (exact expectations over a small categorical policy)."""

from __future__ import annotations

import math

import pytest
import torch

from sketchrl.rl.algorithms.base import KL_ESTIMATORS
from sketchrl.rl.experience import (
    k2_divergence,
    k3_clamped_divergence,
    k3_divergence,
    k3_truncated_divergence,
)
from tests.test_rl_trainer import InkReward, tiny_config, tiny_vae


def test_values_by_hand():
    log_p, log_ref = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0])
    assert k2_divergence(log_p, log_ref).tolist() == pytest.approx([0.125, 0.5])
    expected = [math.exp(-0.5) - 1 + 0.5, math.exp(1.0) - 1 - 1.0]
    assert k3_divergence(log_p, log_ref).tolist() == pytest.approx(expected)


def test_clamped_k3_is_k3_within_its_bounds_and_flat_beyond():
    log_p = torch.tensor([-1.0, -2.0, -30.0, -1.0, -200.0], requires_grad=True)
    log_ref = torch.tensor([-1.5, -1.0, -1.0, -12.0, 0.0])
    clamped = k3_clamped_divergence(log_p, log_ref)
    plain = k3_divergence(log_p.detach(), log_ref)
    torch.testing.assert_close(clamped[:2], plain[:2])  # log ratios -0.5 and 1: untouched
    # log ratio 29 (k3 ~ 4e12) and 200 (clamped to 20 first): the bound; -11: k3 = 10.00002
    assert clamped[2:].tolist() == pytest.approx([10.0, 10.0, 10.0])
    assert plain[2] > 1e12 and plain[3] > 10.0
    clamped.sum().backward()
    # beyond the bound no gradient; within it k3's, 1 - p_ref / p
    assert log_p.grad.tolist() == pytest.approx([1 - math.exp(-0.5), 1 - math.e, 0.0, 0.0, 0.0])


def test_truncated_k3_is_k3_until_the_weight_bound_then_a_line():
    log_p = torch.tensor([-1.0, -2.0, -30.0, -1.0], requires_grad=True)
    log_ref = torch.tensor([-1.5, -1.0, -1.0, -12.0])
    truncated = k3_truncated_divergence(log_p, log_ref)
    plain = k3_divergence(log_p.detach(), log_ref)
    torch.testing.assert_close(truncated[[0, 1, 3]], plain[[0, 1, 3]])  # weights 0.6, 2.7, 0
    # log ratio 29: k3 at log 10 (10 - 1 - log 10), then slope 10 - 1 over the remaining ratio
    expected = 9 - math.log(10) + (29 - math.log(10)) * 9
    assert truncated[2].item() == pytest.approx(expected, rel=1e-6)
    truncated.sum().backward()  # 1 - min(p_ref / p, 10)
    expected_grad = [1 - math.exp(-0.5), 1 - math.e, 1 - 10.0, 1 - math.exp(-11)]
    assert log_p.grad.tolist() == pytest.approx(expected_grad, rel=1e-5)


def expected_loss_gradient(estimator, logits: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``E_{x ~ p}[grad estimator(log p(x), log ref(x))]``, summed over the outcomes x exactly
    (the sampling weights p(x) carry no gradient, as samples do not)."""
    log_p = torch.log_softmax(logits, dim=-1)
    loss = (log_p.exp().detach() * estimator(log_p, ref.log())).sum()
    return torch.autograd.grad(loss, logits)[0]


def divergence_gradient(logits: torch.Tensor, ref: torch.Tensor, forward: bool) -> torch.Tensor:
    log_p = torch.log_softmax(logits, dim=-1)
    if forward:  # KL(ref || p)
        kl = (ref * (ref.log() - log_p)).sum()
    else:  # KL(p || ref)
        kl = (log_p.exp() * (log_p - ref.log())).sum()
    return torch.autograd.grad(kl, logits)[0]


def test_k2_gives_the_reverse_kl_gradient_and_k3_the_forward_one():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, generator=generator, dtype=torch.float64, requires_grad=True)
    ref = torch.softmax(torch.randn(6, generator=generator, dtype=torch.float64), dim=-1)
    reverse = divergence_gradient(logits, ref, forward=False)
    forward = divergence_gradient(logits, ref, forward=True)
    assert not torch.allclose(reverse, forward, atol=1e-3)  # the two differ here
    torch.testing.assert_close(expected_loss_gradient(k2_divergence, logits, ref), reverse)
    torch.testing.assert_close(expected_loss_gradient(k3_divergence, logits, ref), forward)


@pytest.mark.parametrize("estimator", ["k2", "k3", "k3_clamped", "k3_truncated"])
def test_the_loss_uses_the_configured_estimator(monkeypatch, estimator):
    from sketchrl.rl import Trainer

    calls = []
    chosen = KL_ESTIMATORS[estimator]
    monkeypatch.setitem(KL_ESTIMATORS, estimator,
                        lambda *tensors: calls.append(estimator) or chosen(*tensors))
    config = tiny_config(algorithm="grpo", group_size=4, kl_beta=0.1, kl_estimator=estimator,
                         warmup_batches=0)
    trainer = Trainer(config, policy=tiny_vae(), reward=InkReward(), device="cpu")
    metrics = trainer.run_batch()
    assert calls == [estimator]
    assert 0.0 <= metrics["kl_k3_over_bound"] <= 1.0  # the share of steps where k3 > 10
