"""Reinforcement-learning fine-tuning: REINFORCE (the paper), GRPO and PPO on visual rewards."""

from sketchrl.rl.advantages import ADVANTAGES, get_advantage_fn, leave_one_out, whiten
from sketchrl.rl.algorithms import Algorithm, algorithm_names, get_algorithm
from sketchrl.rl.config import RLConfig, apply_overrides, load_rl_config
from sketchrl.rl.experience import Experience, PolicyTerms
from sketchrl.rl.run import DONE_FILE, RunSummary, train, train_run
from sketchrl.rl.run_files import read_metrics
from sketchrl.rl.trainer import Trainer, build_run_reward

__all__ = [
    "ADVANTAGES",
    "DONE_FILE",
    "Algorithm",
    "Experience",
    "PolicyTerms",
    "RLConfig",
    "RunSummary",
    "Trainer",
    "algorithm_names",
    "apply_overrides",
    "build_run_reward",
    "get_advantage_fn",
    "get_algorithm",
    "leave_one_out",
    "load_rl_config",
    "read_metrics",
    "train",
    "train_run",
    "whiten",
]
