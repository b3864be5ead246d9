"""Configuration of a REINFORCE fine-tuning run (one TOML file per experiment)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from sketchrl.config import Config, parse_value
from sketchrl.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from sketchrl.rl.advantages import ADVANTAGES


@dataclasses.dataclass
class RLConfig(Config):
    """Everything that defines a fine-tuning run. Defaults are the SketchRL paper's."""

    # Policy to fine-tune: `sketchrnn:<category>`, a sketch-rnn-js .json, or a model directory.
    model: str = "sketchrnn:bird"
    # Reward name (see `sketchrl.rewards.REWARDS`) and its own options.
    reward: str = "classifier"
    reward_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Total episodes; batches = episodes // batch_size, the warm-up batches included (paper: 312).
    episodes: int = 5000
    # Episodes per batch; for a VAE they all share one z drawn from the prior.
    batch_size: int = 16
    # Adam learning rate.
    lr: float = 1e-5
    # Sampling temperature (the policy is the tempered distribution).
    temperature: float = 0.5
    # Maximum decoder steps per episode.
    max_len: int = 250
    # First batches that are sampled and scored but change no weight.
    warmup_batches: int = 3
    # Dense reward: score the partial render every this many steps (0 = sparse reward).
    dense_every: int = 0
    # Discount of the dense return G = sum_t gamma^(T-t) r_t.
    gamma: float = 1.0
    # Dense return as a weighted mean over checkpoints instead of the paper's sum (the sum pays
    # for length: a sketch that never ends collects more checkpoints).
    dense_normalize: bool = False
    # Seed of sampling (torch generator) and of anything else random.
    seed: int = 0
    # Element-wise gradient clip: every gradient value is clamped to [-grad_clip, grad_clip].
    grad_clip: float = 1.0
    # Advantage estimator: whiten (paper), leave_one_out (RLOO) or mean.
    advantage: str = "whiten"
    # One z shared by the whole batch (paper) or one per episode (VAE only).
    share_z: bool = True
    # Subtract kl_coef * (log p - log p_start) from each return (0 = the paper: no penalty).
    kl_coef: float = 0.0
    # Save the policy and the resume state every this many batches (and at the end).
    checkpoint_every: int = 25
    # Torch device: "cpu", "cuda", or "auto" (cuda when available).
    device: str = "auto"

    def __post_init__(self) -> None:
        checks = [
            (self.episodes >= self.batch_size, "episodes must be >= batch_size"),
            (self.batch_size >= 2, "batch_size must be >= 2 (advantages are within a batch)"),
            (self.lr > 0, "lr must be > 0"),
            (self.temperature > 0, "temperature must be > 0"),
            (self.max_len >= 1, "max_len must be >= 1"),
            (self.warmup_batches >= 0, "warmup_batches must be >= 0"),
            (self.dense_every >= 0, "dense_every must be >= 0 (0 = sparse reward)"),
            (0 < self.gamma <= 1, "gamma must be in (0, 1]"),
            (self.grad_clip > 0, "grad_clip must be > 0"),
            (self.kl_coef >= 0, "kl_coef must be >= 0"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1"),
            (self.device in ("auto", "cpu") or self.device.startswith("cuda"),
             "device must be auto, cpu or cuda[:N]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.advantage not in ADVANTAGES:
            raise ConfigError(
                f"unknown advantage {self.advantage!r}; valid: {', '.join(sorted(ADVANTAGES))}"
            )
        if self.num_batches <= self.warmup_batches:
            raise ConfigError(
                f"{self.num_batches} batches leave no update after {self.warmup_batches} "
                "warm-up batches: raise episodes or lower warmup_batches"
            )

    @property
    def num_batches(self) -> int:
        return self.episodes // self.batch_size


def load_rl_config(path: str | Path | None, overrides: list[str] | None = None) -> RLConfig:
    """Read a TOML experiment file (or the defaults) and apply ``key=value`` overrides.

    The reward's own options live in a ``[reward_options]`` table; on the command line they are
    set as ``reward.KEY=VALUE`` (or ``reward_options.KEY=VALUE``).
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                values = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: invalid TOML ({error})") from None
    values.setdefault("reward_options", {})
    values["reward_options"] = dict(values["reward_options"])
    config = RLConfig.from_dict(values)
    return apply_overrides(config, overrides or [])


def apply_overrides(config: RLConfig, overrides: list[str]) -> RLConfig:
    """Apply ``key=value`` strings; ``reward.KEY`` sets a reward option (TOML-typed value)."""
    top_level: dict[str, str] = {}
    reward_options = dict(config.reward_options)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        prefix, dot, option = key.partition(".")
        if dot and prefix in ("reward", "reward_options"):
            reward_options[option] = parse_toml_scalar(text)
        else:
            top_level[key] = text
    config = config.with_overrides(top_level)
    return dataclasses.replace(config, reward_options=reward_options)


def parse_toml_scalar(text: str) -> Any:
    """Parse a value as TOML would (numbers, booleans, quoted strings, arrays); else a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return parse_value(text, str)
