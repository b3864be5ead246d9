"""REINFORCE fine-tuning of a SketchRNN decoder on a reward computed from the rendered sketch.

One batch is ``collect()`` (sample B episodes, one shared z) -> ``score()`` (render + reward)
-> ``update()`` (advantages, policy-gradient step on the decoder only).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from sketchrl.devices import resolve_device
from sketchrl.errors import ConfigError
from sketchrl.models import Rollout, SketchRNN, load_model, save_model
from sketchrl.rewards import DenseReward, Reward, build_reward
from sketchrl.rl.advantages import get_advantage_fn
from sketchrl.rl.config import RLConfig
from sketchrl.rl.plots import save_reward_curves
from sketchrl.rl.run_files import MetricsLog, RunState, prepare_run_dir, write_run_config

logger = logging.getLogger(__name__)

CURVE_FILE = "reward_curve.png"


def build_run_reward(config: RLConfig, device: torch.device) -> Reward:
    """The configured reward, wrapped in its dense form when ``dense_every > 0``."""
    reward = build_reward(config.reward, dict(config.reward_options), device=device)
    if config.dense_every > 0:
        reward = DenseReward(reward, every=config.dense_every, gamma=config.gamma,
                             normalize=config.dense_normalize)
    return reward


@dataclass
class BatchStats:
    """What one batch logs (one row of ``metrics.csv``)."""

    batch: int
    episodes: int
    updated: bool
    reward_mean: float
    reward_std: float
    reward_min: float
    reward_max: float
    length_mean: float
    entropy: float
    kl_to_start: float
    loss: float
    grad_norm: float

    def as_row(self) -> dict[str, float | int]:
        return {key: (int(value) if isinstance(value, bool) else value)
                for key, value in self.__dict__.items()}


class ReinforceTrainer:
    """The paper's REINFORCE with shared z and within-batch advantage normalisation."""

    def __init__(
        self,
        config: RLConfig,
        *,
        policy: SketchRNN | None = None,
        reward: Reward | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.config = config
        self.device = resolve_device(device if device is not None else config.device)
        self.policy = (policy or load_model(config.model)).to(self.device)
        # Dropout off: the distribution that samples must be the one that is differentiated.
        self.policy.eval()
        self.start_policy = copy.deepcopy(self.policy).eval()
        for parameter in self.start_policy.parameters():
            parameter.requires_grad_(False)
        freeze_all_but_decoder(self.policy)
        self.reward = reward if reward is not None else build_run_reward(config, self.device)
        self.advantage_fn = get_advantage_fn(config.advantage)
        self.optimizer = torch.optim.Adam(trainable_parameters(self.policy), lr=config.lr)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.batch_index = 0

    # -- the three stages -------------------------------------------------------------------
    def collect(self) -> Rollout:
        """Sample one batch of episodes (no gradient); a VAE's batch shares one prior z."""
        z = None
        if self.policy.config.conditional:
            count = 1 if self.config.share_z else self.config.batch_size
            z = self.policy.sample_prior_z(count, generator=self.generator)
            z = z[0] if self.config.share_z else z
        return self.policy.sample(
            self.config.batch_size,
            temperature=self.config.temperature,
            max_len=self.config.max_len,
            z=z,
            generator=self.generator,
        )

    def score(self, rollout: Rollout) -> torch.Tensor:
        """Render the episodes and score them: one return per episode, float32 on CPU."""
        returns = self.reward.score(rollout.to_stroke3())
        return torch.as_tensor(returns, dtype=torch.float32).detach().cpu()

    def update(self, rollout: Rollout, returns: torch.Tensor, *, step: bool) -> dict[str, float]:
        """Policy-gradient step ``-(1/B) sum_i A_i log p(tau_i)`` on the decoder (if ``step``)."""
        temperature = self.config.temperature
        with torch.set_grad_enabled(step):
            log_probs = self.policy.log_prob(
                rollout.strokes, rollout.lengths, rollout.z, temperature=temperature
            )
        with torch.no_grad():
            start_log_probs = self.start_policy.log_prob(
                rollout.strokes, rollout.lengths, rollout.z, temperature=temperature
            )
        sampled_kl = (log_probs.detach() - start_log_probs).cpu()
        # With kl_coef > 0 the KL to the start policy is a cost inside each episode's return.
        penalised = returns - self.config.kl_coef * sampled_kl
        advantages = self.advantage_fn(penalised).to(self.device)
        loss = -(advantages * log_probs).mean()
        grad_norm = 0.0
        if step:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            parameters = trainable_parameters(self.policy)
            torch.nn.utils.clip_grad_value_(parameters, self.config.grad_clip)
            grad_norm = float(torch.norm(torch.stack([p.grad.norm() for p in parameters
                                                      if p.grad is not None])))
            self.optimizer.step()
        steps = rollout.mask.sum().clamp(min=1)
        entropy = -(rollout.log_probs * rollout.mask).sum() / steps
        return {
            "loss": float(loss.detach()),
            "kl_to_start": float(sampled_kl.mean()),
            "entropy": float(entropy),
            "grad_norm": grad_norm,
        }

    def run_batch(self) -> BatchStats:
        """Collect, score and (after the warm-up) update once; returns the batch's statistics."""
        rollout = self.collect()
        returns = self.score(rollout)
        updated = self.batch_index >= self.config.warmup_batches
        stats = self.update(rollout, returns, step=updated)
        self.batch_index += 1
        return BatchStats(
            batch=self.batch_index,
            episodes=self.batch_index * self.config.batch_size,
            updated=updated,
            reward_mean=float(returns.mean()),
            reward_std=float(returns.std(unbiased=False)),
            reward_min=float(returns.min()),
            reward_max=float(returns.max()),
            length_mean=float(rollout.lengths.float().mean()),
            **stats,
        )

    # -- state for --resume -------------------------------------------------------------------
    def state(self) -> RunState:
        return RunState(
            batch_index=self.batch_index,
            optimizer=self.optimizer.state_dict(),
            generator=self.generator.get_state(),
        )

    def load_state(self, state: RunState) -> None:
        self.batch_index = state.batch_index
        self.optimizer.load_state_dict(state.optimizer)
        self.generator.set_state(state.generator)


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def freeze_all_but_decoder(model: SketchRNN) -> None:
    """Only decoder parameters keep ``requires_grad``; the encoder (if any) is frozen."""
    decoder = {id(p) for p in model.decoder_parameters()}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in decoder)


def train(
    config: RLConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    policy: SketchRNN | None = None,
    reward: Reward | None = None,
) -> Path:
    """Run (or resume) a fine-tuning run writing into ``out_dir``; returns ``out_dir``.

    Writes the current policy (``model.safetensors`` + ``model_config.json``) and the resume
    state every ``checkpoint_every`` batches and at the end, ``rl_config.json``, one
    ``metrics.csv`` row per batch, TensorBoard scalars under ``tb/`` and, at the end,
    ``reward_curve.png``.
    """
    out_dir = Path(out_dir)
    config, saved_state = prepare_run_dir(config, out_dir, resume=resume)
    trainer = ReinforceTrainer(config, policy=policy, reward=reward)
    write_run_config(config, out_dir)
    if saved_state is not None:
        trainer.policy.load_state_dict(load_model(out_dir, device=trainer.device).state_dict())
        trainer.load_state(saved_state)
    if trainer.batch_index >= config.num_batches:
        logger.info("%s: already finished (%d batches)", out_dir, trainer.batch_index)
        return out_dir
    log = MetricsLog(out_dir, start_batch=trainer.batch_index)
    bar = progress_bar(config.num_batches, trainer.batch_index, progress)
    try:
        while trainer.batch_index < config.num_batches:
            stats = trainer.run_batch()
            log.write(stats.as_row())
            bar.update(1)
            bar.set_postfix(reward=f"{stats.reward_mean:.3f}", kl=f"{stats.kl_to_start:.2f}")
            if not math.isfinite(stats.loss):  # checked first: never checkpoint a broken policy
                raise ConfigError(
                    f"loss became {stats.loss} at batch {stats.batch}; lower lr "
                    "(the last checkpoint is kept)"
                )
            last = trainer.batch_index == config.num_batches
            if trainer.batch_index % config.checkpoint_every == 0 or last:
                save_checkpoint(trainer, out_dir)
    finally:
        bar.close()
        log.close()
    save_reward_curves([(out_dir, f"{config.reward} ({out_dir.name})")], out_dir / CURVE_FILE)
    return out_dir


def save_checkpoint(trainer: ReinforceTrainer, out_dir: Path) -> None:
    """Policy at the top level of ``out_dir`` (loadable as a model), resume state beside it."""
    save_model(trainer.policy, out_dir)
    trainer.state().save(out_dir)


def progress_bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="REINFORCE", unit="batch", disable=not enabled)
