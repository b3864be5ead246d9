"""Reinforcement-learning fine-tuning: REINFORCE with shared z and within-batch advantages."""

from sketchrl.rl.advantages import ADVANTAGES, get_advantage_fn, leave_one_out, whiten
from sketchrl.rl.config import RLConfig, apply_overrides, load_rl_config
from sketchrl.rl.reinforce import BatchStats, ReinforceTrainer, build_run_reward, train
from sketchrl.rl.run_files import read_metrics

__all__ = [
    "ADVANTAGES",
    "BatchStats",
    "RLConfig",
    "ReinforceTrainer",
    "apply_overrides",
    "build_run_reward",
    "get_advantage_fn",
    "leave_one_out",
    "load_rl_config",
    "read_metrics",
    "train",
    "whiten",
]
