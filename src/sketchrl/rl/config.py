"""Configuration of a fine-tuning run (one TOML file per experiment)."""

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

from sketchrl.models.mixture import TEMPERATURE_SEMANTICS, Temperature
from sketchrl.rl.advantages import ADVANTAGES
from sketchrl.rl.algorithms import algorithm_names, get_algorithm
from sketchrl.rl.algorithms.base import KL_ESTIMATORS

CREDITS = ("episode", "reward_to_go")
SCALE_REWARDS = ("group", "batch", "none")
DENSE_FRAMES = ("prefix", "final")


@dataclasses.dataclass
class RLConfig(Config):
    """Everything that defines a fine-tuning run. Defaults are the SketchRL paper's (REINFORCE)."""

    # -- policy, reward, budget ----------------------------------------------------------------
    # Policy to fine-tune: `sketchrnn:<category>`, a sketch-rnn-js .json, or a model directory.
    model: str = "sketchrnn:bird"
    # Reward name (see `sketchrl.rewards.REWARDS`) and its own options.
    reward: str = "classifier"
    reward_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Total episodes; batches = episodes // batch_size, the warm-up batches included (paper: 312).
    episodes: int = 5000
    # Episodes per batch: `batch_size // group_size` groups of `group_size` episodes.
    batch_size: int = 16
    # Episodes per group (0 = the whole batch is one group, as the paper). A VAE's group shares
    # one z; grpo normalises advantages within each group; a prefix is shared by a group.
    group_size: int = 0
    # Adam learning rate of the policy.
    lr: float = 1e-5
    # Optimiser steps over which the policy's learning rate ramps linearly up to lr (0 = from
    # the first step). Adam's first steps move every weight by about lr, whatever its gradient.
    lr_warmup: int = 0
    # The learning rate falls linearly over the update batches, from lr at the first to
    # lr x lr_end at the end of the run (1 = constant; 0 = annealed to zero, as CleanRL's PPO).
    lr_end: float = 1.0
    # First batches that are sampled and scored but change no weight.
    warmup_batches: int = 3
    # -- sampling --------------------------------------------------------------------------------
    # Sampling temperature tau (the policy is the tempered distribution).
    temperature: float = 0.5
    # Divisor of the pen and mixture-weight logits (None: from temperature_semantics).
    pen_temperature: float | None = None
    # paper: logits / tau, sigma * sqrt(tau); magenta-js: logits / (0.5 + 0.5 tau).
    temperature_semantics: str = "paper"
    # Maximum decoder steps per episode (a prefix included).
    max_len: int = 250
    # Start episodes from real partial drawings: drawings (an asset such as
    # "quickdraw:bird/simplified", an ndjson or samples.npz file; "" = no prefix), of which the
    # first prefix_fraction of the rows are given; the reward scores the finished drawing and
    # only the continuation is differentiated.
    prefix_from: str = ""
    prefix_fraction: float = 0.5
    # -- the algorithm ---------------------------------------------------------------------------
    # reinforce (paper), grpo or ppo (see sketchrl.rl.algorithms).
    algorithm: str = "reinforce"
    # reinforce: advantage estimator of the returns, whiten (paper), leave_one_out or mean.
    advantage: str = "whiten"
    # grpo: divide advantages by the std of their group, of the batch, or not at all (Dr. GRPO).
    scale_rewards: str = "group"
    # grpo/ppo: passes over each batch, and minibatches per pass.
    epochs: int = 1
    minibatches: int = 1
    # grpo/ppo: the importance ratio is clipped to [1 - clip_low, 1 + clip_high] (DAPO).
    clip_low: float = 0.2
    clip_high: float = 0.28
    # grpo/ppo: skip a batch's remaining optimiser steps once a minibatch's approx_kl to the
    # sampling policy exceeds this (a trust region by early stopping, as Stable-Baselines3's
    # target_kl; 0 = never). The first step of a batch is on-policy and always taken.
    max_approx_kl: float = 0.0
    # Per-step KL to the frozen starting policy in the loss, times kl_beta; estimated by k3
    # (GRPO's; as a loss, its gradient is the forward KL's weighted by p_start / p) or k2
    # ((log p - log p_start)^2 / 2, whose gradient is the reverse KL's), k3_clamped (k3
    # bounded as verl's low_var_kl: no gradient past the bound) or k3_truncated (k3 whose
    # gradient's weight p_start / p is truncated at 10).
    kl_beta: float = 0.0
    kl_estimator: str = "k3"
    # Adaptive kl_beta (Ziegler et al. 2019), 0 = fixed: after each update batch kl_beta is
    # multiplied by 1 + clip(KL / kl_target - 1, -0.2, 0.2) * batch_size / kl_horizon, where KL
    # is the batch's KL to the start in nats per sketch (kl_beta is the starting value).
    kl_target: float = 0.0
    kl_horizon: int = 10000
    # reinforce: subtract kl_coef * (log p - log p_start) from each return (0 = the paper).
    kl_coef: float = 0.0
    # Bonus for the entropy of the pen-state and mixture-weight distributions.
    entropy_coef: float = 0.0
    # Bonus for the entropy of the pen offsets (the mixture-weighted entropy of its Gaussians, a
    # lower bound): holds the sigmas against the policy's shrinking them to near-deterministic
    # offsets, which entropy_coef does not reach. With offset_entropy_floor (nats per step) the
    # bonus acts only on minibatches whose mean is below the floor: a floor, not a push.
    offset_entropy_coef: float = 0.0
    offset_entropy_floor: float | None = None
    # Forward KL(start || policy) in the loss, times forward_kl_beta: the policy's negative
    # log-likelihood of forward_kl_episodes sketches the starting policy draws each batch. k3
    # has the same gradient in expectation, from the policy's own sketches weighted by
    # p_start / p (which explodes where the policy left a narrow mode of the start).
    forward_kl_beta: float = 0.0
    forward_kl_episodes: int = 16
    # ppo: GAE lambda, value loss weight, value clip, the value head's learning rate and width.
    gae_lambda: float = 0.95
    value_coef: float = 0.5
    value_clip: float = 0.2
    value_lr: float = 1e-3
    value_hidden: int = 256
    # -- dense rewards -------------------------------------------------------------------------
    # Score the partial render every this many steps (0 = sparse reward).
    dense_every: int = 0
    # Discount: of the dense return G = sum_j gamma^(T-j) r_j; per checkpoint for reward_to_go
    # and ppo.
    gamma: float = 1.0
    # Dense return as a weighted mean over checkpoints instead of the paper's sum (the sum pays
    # for length: a sketch that never ends collects more checkpoints).
    dense_normalize: bool = False
    # episode: every step gets the episode's return (paper); reward_to_go: step t gets the
    # discounted checkpoint rewards at or after t (ppo always uses per-step rewards).
    credit: str = "episode"
    # Render each partial sketch framed on its own (prefix) or in the finished sketch's frame.
    dense_frame: str = "prefix"
    # -- the rest --------------------------------------------------------------------------------
    # Seed of sampling (each batch's generator is derived from it and the batch index).
    seed: int = 0
    # Element-wise gradient clip: every gradient value is clamped to [-grad_clip, grad_clip].
    grad_clip: float = 1.0
    # One z shared by each group (paper: by the batch) or one per episode (VAE only).
    share_z: bool = True
    # Log the KL to the starting policy every this many batches (every batch when a KL term
    # is in the loss or the returns).
    kl_log_every: int = 10
    # Save the policy and the resume state every this many batches (and at the end).
    checkpoint_every: int = 25
    # Weight averaging (0: off): the run's model files hold an exponential moving average of
    # the policy's weights over its updates instead of the last weights; an update's weights
    # count half as much ema_half_life episodes later. The average starts at the starting
    # policy; the last weights go to last_policy/ beside it. Training itself is unchanged.
    ema_half_life: float = 0.0
    # Torch device: "cpu", "cuda", or "auto" (cuda when available).
    device: str = "auto"

    def __post_init__(self) -> None:
        for ok, message in self._range_checks():
            if not ok:
                raise ConfigError(message)
        for key, value, valid in self._choices():
            if value not in valid:
                raise ConfigError(f"unknown {key} {value!r}; valid: {', '.join(sorted(valid))}")
        get_algorithm(self.algorithm).check_config(self)
        if self.num_batches <= self.warmup_batches:
            raise ConfigError(
                f"{self.num_batches} batches leave no update after {self.warmup_batches} "
                "warm-up batches: raise episodes or lower warmup_batches"
            )

    def _range_checks(self) -> list[tuple[bool, str]]:
        """(holds, message when it does not) for every numeric option."""
        return [
            (self.episodes >= self.batch_size, "episodes must be >= batch_size"),
            (self.batch_size >= 2, "batch_size must be >= 2 (advantages are within a batch)"),
            (self.group_size >= 0, "group_size must be >= 0 (0 = one group per batch)"),
            (self.batch_size % self.group_size_resolved == 0,
             f"batch_size {self.batch_size} is not a multiple of group_size {self.group_size}"),
            (self.group_size_resolved >= 2, "group_size must be >= 2 (advantages compare "
                                            "episodes within a group)"),
            (self.lr > 0 and self.lr_warmup >= 0, "lr must be > 0 and lr_warmup >= 0"),
            (0.0 <= self.lr_end <= 1.0, "lr_end must be in [0, 1] (a fraction of lr)"),
            (self.max_approx_kl >= 0, "max_approx_kl must be >= 0 (0 = never stop early)"),
            (self.temperature > 0, "temperature must be > 0"),
            (self.pen_temperature is None or self.pen_temperature > 0,
             "pen_temperature must be > 0 (or unset)"),
            (self.max_len >= 1, "max_len must be >= 1"),
            (self.warmup_batches >= 0, "warmup_batches must be >= 0"),
            (0.0 < self.prefix_fraction < 1.0, "prefix_fraction must be in (0, 1)"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.minibatches >= 1 and self.batch_size % self.minibatches == 0,
             "minibatches must be >= 1 and divide batch_size"),
            (0.0 <= self.clip_low < 1.0 and self.clip_high >= 0.0,
             "clip_low must be in [0, 1) and clip_high >= 0"),
            (min(self.kl_beta, self.kl_coef, self.entropy_coef, self.offset_entropy_coef,
                 self.forward_kl_beta) >= 0,
             "kl_beta, kl_coef, entropy_coef, offset_entropy_coef and forward_kl_beta must be "
             ">= 0"),
            (self.kl_target >= 0 and self.kl_horizon >= 1,
             "kl_target must be >= 0 (0 = a fixed kl_beta) and kl_horizon >= 1"),
            (self.kl_target == 0 or self.kl_beta > 0,
             "kl_target adapts kl_beta: set kl_beta > 0 as its starting value"),
            (self.forward_kl_beta == 0 or (self.forward_kl_episodes >= self.minibatches
                                           and self.forward_kl_episodes % self.minibatches == 0),
             "forward_kl_episodes must be a multiple of minibatches (each minibatch gets its "
             "share)"),
            (0.0 <= self.gae_lambda <= 1.0, "gae_lambda must be in [0, 1]"),
            (self.value_coef >= 0 and self.value_clip > 0 and self.value_lr > 0
             and self.value_hidden >= 1,
             "value_coef must be >= 0, value_clip, value_lr and value_hidden > 0"),
            (self.dense_every >= 0, "dense_every must be >= 0 (0 = sparse reward)"),
            (0 < self.gamma <= 1, "gamma must be in (0, 1]"),
            (self.grad_clip > 0, "grad_clip must be > 0"),
            (self.kl_log_every >= 1, "kl_log_every must be >= 1"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1"),
            (self.ema_half_life >= 0, "ema_half_life must be >= 0 (0: no weight average)"),
            (self.device in ("auto", "cpu") or self.device.startswith("cuda"),
             "device must be auto, cpu or cuda[:N]"),
        ]

    def _choices(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(key, value, valid values) for every option that names a choice."""
        return [
            ("advantage", self.advantage, tuple(ADVANTAGES)),
            ("scale_rewards", self.scale_rewards, SCALE_REWARDS),
            ("credit", self.credit, CREDITS),
            ("dense_frame", self.dense_frame, DENSE_FRAMES),
            ("temperature_semantics", self.temperature_semantics, tuple(TEMPERATURE_SEMANTICS)),
            ("algorithm", self.algorithm, algorithm_names()),
            ("kl_estimator", self.kl_estimator, tuple(KL_ESTIMATORS)),
        ]

    @property
    def num_batches(self) -> int:
        return self.episodes // self.batch_size

    @property
    def group_size_resolved(self) -> int:
        """Episodes per group (``group_size``, or the whole batch when 0)."""
        return self.group_size or self.batch_size

    @property
    def groups(self) -> int:
        """Groups per batch."""
        return self.batch_size // self.group_size_resolved

    @property
    def sampling_temperature(self) -> Temperature:
        """The policy's temperature (tau, pen temperature and semantics)."""
        return Temperature(self.temperature, self.pen_temperature, self.temperature_semantics)

    @property
    def needs_reference(self) -> bool:
        """Whether every batch needs the starting policy's log-probabilities."""
        return self.kl_beta > 0 or self.kl_coef > 0


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
