"""The adaptive KL weight (``kl_target``, Ziegler et al. 2019): the update rule by hand, its
settings' checks, and a resume that continues it exactly."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from sketchrl.errors import ConfigError
from sketchrl.rl.algorithms import get_algorithm
from sketchrl.rl.config import load_rl_config
from tests.test_rl_trainer import assert_resume_continues_exactly, tiny_config


def controller(**settings):
    config = tiny_config(algorithm="grpo", group_size=4, kl_beta=0.1, **settings)
    return get_algorithm("grpo")(config, hidden_size=8, device=torch.device("cpu"))


def test_kl_beta_moves_towards_the_target_by_a_clipped_step():
    algorithm = controller(kl_target=10.0, kl_horizon=80)  # batch_size 8: steps of 8 / 80
    algorithm.adapt_kl_beta(20.0)  # twice the target: error 1, clipped to 0.2
    assert algorithm.kl_beta == pytest.approx(0.1 * (1 + 0.2 * 0.1))
    algorithm.adapt_kl_beta(9.0)  # error -0.1
    assert algorithm.kl_beta == pytest.approx(0.1 * 1.02 * (1 - 0.1 * 0.1))
    before = algorithm.kl_beta
    algorithm.adapt_kl_beta(math.nan)  # no KL measured: unchanged
    assert algorithm.kl_beta == before
    fixed = controller()  # kl_target 0: the configured weight, whatever the KL
    fixed.adapt_kl_beta(1e6)
    assert fixed.kl_beta == 0.1


def test_kl_target_needs_a_starting_kl_beta():
    with pytest.raises(ConfigError, match="kl_target"):
        load_rl_config(None, ["kl_target=5"])
    with pytest.raises(ConfigError, match="kl_horizon"):
        load_rl_config(None, ["kl_beta=0.1", "kl_target=5", "kl_horizon=0"])


def test_a_resumed_run_continues_the_adapted_weight_exactly(tmp_path):
    rows = assert_resume_continues_exactly(tmp_path, algorithm="grpo", group_size=4,
                                           kl_beta=0.1, kl_target=1e-3, kl_horizon=16,
                                           warmup_batches=1, checkpoint_every=2)
    assert float(rows[0]["kl_beta"]) == 0.1  # the warm-up batch does not adapt
    for before, row in itertools.pairwise(rows):  # each update follows the logged KL
        error = min(max(float(row["kl_to_start"]) / 1e-3 - 1, -0.2), 0.2)
        expected = float(before["kl_beta"]) * (1 + error * 8 / 16)
        assert float(row["kl_beta"]) == pytest.approx(expected, rel=1e-12)
    assert len({row["kl_beta"] for row in rows}) == len(rows)  # it moved every batch
