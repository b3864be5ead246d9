"""The offsets' entropy bonus (``offset_entropy_coef``): the bound's value, its direction, its
use in the loss and its log column."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from sketchrl.errors import ConfigError
from sketchrl.models.mixture import Temperature, apply_temperature, offset_log_prob, split_output
from sketchrl.rl.experience import offset_entropy_bound
from tests.test_rl_trainer import InkReward, tiny_config, tiny_vae

NUM_MIXTURE = 3


def random_outputs(*shape: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, 3 + 6 * NUM_MIXTURE, generator=generator)


def component_entropies(outputs: torch.Tensor, temperature: Temperature) -> torch.Tensor:
    """Each tempered component's entropy by torch.distributions (independent of the code)."""
    params = apply_temperature(split_output(outputs, NUM_MIXTURE), temperature)
    sx, sy, rho = params.log_sigma_x.exp(), params.log_sigma_y.exp(), params.rho
    covariance = torch.stack([torch.stack([sx * sx, rho * sx * sy], -1),
                              torch.stack([rho * sx * sy, sy * sy], -1)], -2)
    return MultivariateNormal(torch.zeros(*sx.shape, 2), covariance).entropy()


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_the_bound_is_the_weighted_entropy_of_the_components(tau):
    temperature = Temperature(tau)
    outputs = random_outputs(2, 5)
    weights = apply_temperature(split_output(outputs, NUM_MIXTURE), temperature).log_pi.exp()
    expected = (weights * component_entropies(outputs, temperature)).sum(-1)
    torch.testing.assert_close(offset_entropy_bound(outputs, temperature, NUM_MIXTURE),
                               expected)


def test_one_component_by_hand():
    outputs = torch.zeros(3 + 6)
    outputs[3 + 3], outputs[3 + 4] = math.log(2.0), math.log(0.5)  # log sigma_x, log sigma_y
    outputs[3 + 5] = math.atanh(0.6)  # rho
    expected = 1.0 + math.log(2.0 * math.pi) + 0.5 * math.log(1.0 - 0.36)
    value = offset_entropy_bound(outputs, Temperature(1.0), 1)
    assert value.item() == pytest.approx(expected, abs=1e-6)


def test_it_bounds_the_mixture_entropy_from_below():
    """A Monte Carlo estimate of the mixture's entropy lies above the bound."""
    temperature = Temperature(1.0)
    outputs = random_outputs(1, seed=3)[0]
    params = apply_temperature(split_output(outputs, NUM_MIXTURE), temperature)
    sx, sy, rho = params.log_sigma_x.exp(), params.log_sigma_y.exp(), params.rho
    covariance = torch.stack([torch.stack([sx * sx, rho * sx * sy], -1),
                              torch.stack([rho * sx * sy, sy * sy], -1)], -2)
    means = torch.stack([params.mu_x, params.mu_y], -1)
    generator = torch.Generator().manual_seed(1)
    component = torch.multinomial(params.log_pi.exp(), 20000, True, generator=generator)
    noise = torch.randn(20000, 2, generator=generator)
    points = means[component] + (torch.linalg.cholesky(covariance)[component]
                                 @ noise.unsqueeze(-1)).squeeze(-1)
    repeated = type(params)(*(p.expand(20000, -1) for p in params))
    entropy = -offset_log_prob(repeated, points[:, 0], points[:, 1]).mean()
    bound = offset_entropy_bound(outputs, temperature, NUM_MIXTURE)
    assert bound < entropy
    assert entropy - bound < 2.0  # a bound, not a different quantity


def test_the_bonus_widens_the_sigmas():
    """A gradient step on ``-bound`` raises every sigma's share of the bound."""
    outputs = random_outputs(4, 6).requires_grad_()
    (-offset_entropy_bound(outputs, Temperature(0.5), NUM_MIXTURE).sum()).backward()
    sigma_grads = outputs.grad[..., 3 + 3 * NUM_MIXTURE:3 + 5 * NUM_MIXTURE]
    assert (sigma_grads < 0).all()


def test_the_loss_uses_it_and_logs_it(monkeypatch):
    from sketchrl.rl import Trainer
    from sketchrl.rl.algorithms import base

    calls = []
    monkeypatch.setattr(base, "offset_entropy_bound",
                        lambda *args: calls.append(1) or offset_entropy_bound(*args))
    config = tiny_config(algorithm="grpo", group_size=4, offset_entropy_coef=0.1,
                         warmup_batches=0)
    trainer = Trainer(config, policy=tiny_vae(), reward=InkReward(), device="cpu")
    metrics = trainer.run_batch()
    assert calls == [1]
    assert math.isfinite(metrics["offset_entropy"])
    assert "offset_entropy" in trainer.metric_names
    plain = Trainer(tiny_config(algorithm="grpo", group_size=4), policy=tiny_vae(),
                    reward=InkReward(), device="cpu")
    assert "offset_entropy" not in plain.metric_names


def test_a_negative_coefficient_is_refused():
    with pytest.raises(ConfigError, match="offset_entropy_coef"):
        tiny_config(offset_entropy_coef=-0.1)


@pytest.mark.parametrize(("floor", "acts"), [(None, True), (100.0, True), (-100.0, False)])
def test_the_floor_turns_the_bonus_off_above_it(floor, acts):
    from sketchrl.rl.algorithms import ALGORITHMS
    from sketchrl.rl.experience import PolicyTerms

    config = tiny_config(algorithm="grpo", group_size=4, offset_entropy_coef=0.1,
                         offset_entropy_floor=floor)
    algorithm = ALGORITHMS["grpo"](config, 16, torch.device("cpu"))
    outputs = random_outputs(4, 6).requires_grad_()
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[0, 3:] = False
    terms = PolicyTerms(torch.arange(4), torch.zeros(4, 6), outputs)
    bonus = algorithm.offset_entropy_bonus(terms, mask)
    bound = offset_entropy_bound(outputs, config.sampling_temperature, NUM_MIXTURE)
    expected = 0.1 * (bound * mask).sum() / 4 if acts else torch.tensor(0.0)
    torch.testing.assert_close(bonus, expected)
    bonus.backward()
    assert (outputs.grad.abs().sum() > 0) == acts


def test_the_floor_is_between_the_minibatch_means():
    """Just below the minibatch's mean per step the bonus is off, just above it is on."""
    from sketchrl.rl.algorithms import ALGORITHMS
    from sketchrl.rl.experience import PolicyTerms

    outputs = random_outputs(2, 5)
    mask = torch.ones(2, 5, dtype=torch.bool)
    config = tiny_config(offset_entropy_coef=0.1)
    mean = float(offset_entropy_bound(outputs, config.sampling_temperature, NUM_MIXTURE).mean())
    terms = PolicyTerms(torch.arange(2), torch.zeros(2, 5), outputs)
    for floor, acts in ((mean - 1e-3, False), (mean + 1e-3, True)):
        config = tiny_config(offset_entropy_coef=0.1, offset_entropy_floor=floor)
        bonus = ALGORITHMS["grpo"](config, 16, torch.device("cpu")).offset_entropy_bonus(
            terms, mask)
        assert (float(bonus) != 0.0) == acts
