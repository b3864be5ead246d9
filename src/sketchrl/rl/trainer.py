"""Fine-tuning a SketchRNN decoder on a reward computed from the rendered sketch.

One batch is ``collect()`` (sample the episodes: groups sharing a z or a prefix) ->
``score()`` (render + reward, per episode and per step) -> ``update()`` (the algorithm's
advantages and loss, ``epochs x minibatches`` optimiser steps on the decoder only). Everything
but the algorithm's mathematics is shared by all algorithms (:mod:`sketchrl.rl.algorithms`).

With one epoch of one minibatch the sampling pass itself is differentiated (no second pass
over the episodes); otherwise the current policy is teacher-forced on them, one fused pass per
minibatch. The starting policy runs only when a KL term needs it or a KL log is due; with
``forward_kl_beta`` it also draws sketches each batch, whose likelihood under the policy is kept.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Iterator

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from sketchrl.devices import resolve_device
from sketchrl.memory import retain_freed_memory
from sketchrl.models import Rollout, SketchRNN, cpu_state_dict, load_model
from sketchrl.models.cells import subnormal_flushing_enabled
from sketchrl.rewards import DenseReward, Reward, build_reward
from sketchrl.rl.algorithms import get_algorithm
from sketchrl.rl.config import RLConfig
from sketchrl.rl.credit import (
    checkpoint_mask,
    final_rewards,
    last_sampled_step,
    place_rewards,
)
from sketchrl.rl.experience import (
    K3_STEP_BOUND,
    Experience,
    PolicyTerms,
    categorical_entropy,
    forward_kl_terms,
    k3_divergence,
    offset_entropy_bound,
    policy_terms,
)
from sketchrl.rl.prefixes import PrefixSource
from sketchrl.rl.run_files import RunState

logger = logging.getLogger(__name__)

#: Columns every run logs (an algorithm adds its own ``metric_names``).
BASE_METRICS = ("batch", "episodes", "updated", "reward_mean", "reward_std", "reward_min",
                "reward_max", "length_mean", "nll_per_step", "pen_entropy", "kl_to_start",
                "kl_k3", "kl_k3_over_bound", "kl_beta", "loss", "grad_norm", "grad_clipped")


def build_run_reward(config: RLConfig, device: torch.device) -> Reward:
    """The configured reward, wrapped in its dense form when ``dense_every > 0``."""
    reward = build_reward(config.reward, dict(config.reward_options), device=device)
    if config.dense_every > 0:
        reward = DenseReward(reward, every=config.dense_every, gamma=config.gamma,
                             normalize=config.dense_normalize, frame=config.dense_frame)
    return reward


def batch_seed(seed: int, batch_index: int) -> int:
    """The seed of one batch's generator: a function of the run's seed and the batch alone, so
    that a run resumed anywhere (another process or device) draws what it would have drawn."""
    return (seed * 1_000_003 + batch_index * 7_919 + 12_345) % (2**63 - 1)


@contextlib.contextmanager
def flushed_denormals(device: torch.device) -> Iterator[None]:
    """On a CPU, treat subnormal floats as zero (FTZ/DAZ) for the duration: the gradients of
    the mixture head hold some (components of negligible weight), and x86 multiplies them up to
    100x slower. The flags reach only this thread; the matrix library's worker threads are
    covered by the decoder's head, which flushes its gradient's subnormal values itself
    (:func:`sketchrl.models.cells.flush_subnormal_gradient`). Values below 1.2e-38 cannot
    change a float32 weight update, so this costs no precision."""
    if device.type != "cpu" or not subnormal_flushing_enabled():
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def freeze_all_but_decoder(model: SketchRNN) -> None:
    """Only decoder parameters keep ``requires_grad``; the encoder (if any) is frozen."""
    decoder = {id(p) for p in model.decoder_parameters()}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in decoder)


def clipped_share(parameters: list[torch.Tensor], bound: float) -> torch.Tensor:
    """Share of the gradient's elements outside ``[-bound, bound]``, as a float64 tensor (no
    host sync); nan when no parameter has a gradient."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(math.nan, dtype=torch.float64)
    beyond = torch.stack([(g.abs() > bound).sum() for g in grads]).sum()
    return beyond.double() / sum(g.numel() for g in grads)


def weight_average(policy: SketchRNN, config: RLConfig) -> AveragedModel | None:
    """An exponential moving average of ``policy``'s weights, starting at them (None when
    ``ema_half_life`` is 0). Each update batch moves it towards the policy by
    ``1 - 0.5 ** (batch_size / ema_half_life)``."""
    if config.ema_half_life <= 0:
        return None
    decay = 0.5 ** (config.batch_size / config.ema_half_life)
    average = AveragedModel(policy, multi_avg_fn=get_ema_multi_avg_fn(decay))
    average.update_parameters(policy)  # the first update copies: the average starts here
    return average


class Trainer:
    """Runs batches of any registered algorithm (the config's ``algorithm``)."""

    def __init__(self, config: RLConfig, *, policy: SketchRNN | None = None,
                 reward: Reward | None = None, device: str | torch.device | None = None) -> None:
        self.config = config
        self.device = resolve_device(device if device is not None else config.device)
        if self.device.type == "cpu":
            retain_freed_memory()  # no page faults for each batch's buffers (sketchrl.memory)
        self.policy = (policy or load_model(config.model)).to(self.device)
        # Dropout off: the distribution that samples must be the one that is differentiated.
        self.policy.eval()
        self.start_policy = copy.deepcopy(self.policy).eval()
        for parameter in self.start_policy.parameters():
            parameter.requires_grad_(False)
        freeze_all_but_decoder(self.policy)
        self.reward = reward if reward is not None else build_run_reward(config, self.device)
        self.temperature = config.sampling_temperature
        self.algorithm = get_algorithm(config.algorithm)(
            config, self.policy.config.dec_rnn_size, self.device)
        self.prefixes = (PrefixSource(config.prefix_from, config.prefix_fraction,
                                      self.policy.config.scale_factor)
                         if config.prefix_from else None)
        groups = [{"params": trainable_parameters(self.policy), "lr": config.lr}]
        extra = [p for module in self.algorithm.modules().values() for p in module.parameters()]
        if extra:
            groups.append({"params": extra, "lr": config.value_lr})
        self.optimizer = torch.optim.Adam(groups)
        self.average = weight_average(self.policy, config)
        self.batch_index = 0
        self.updates = 0  # optimiser steps taken (for the learning-rate warm-up)

    @property
    def output_policy(self) -> SketchRNN:
        """What the run's model files hold: the weight average, or the policy itself."""
        return self.average.module if self.average is not None else self.policy

    @property
    def metric_names(self) -> tuple[str, ...]:
        forward = ("forward_kl",) if self.config.forward_kl_beta > 0 else ()
        stops = ("update_steps",) if self.config.max_approx_kl else ()
        offsets = ("offset_entropy",) if self.config.offset_entropy_coef > 0 else ()
        return BASE_METRICS + tuple(self.algorithm.metric_names) + forward + stops + offsets

    def batch_generator(self) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(
            batch_seed(self.config.seed, self.batch_index))

    # -- the three stages -------------------------------------------------------------------
    def collect(self, generator: torch.Generator, *, grad: bool = False) -> Rollout:
        """Sample one batch; each group shares one prior z (a VAE) and one prefix (if any)."""
        config = self.config
        size, groups = config.group_size_resolved, config.groups
        z = prefix = prefix_lengths = None
        if self.policy.config.conditional:
            count = groups if config.share_z else config.batch_size
            z = self.policy.sample_prior_z(count, generator=generator)
            if config.share_z:
                z = z.repeat_interleave(size, dim=0)
        if self.prefixes is not None:
            prefix, prefix_lengths = self.prefixes.sample(groups, size, generator, self.device)
        return self.policy.sample(
            config.batch_size, temperature=self.temperature, max_len=config.max_len, z=z,
            generator=generator, grad=grad, prefix=prefix, prefix_lengths=prefix_lengths,
            keep_outputs=True,
        )

    def score(self, rollout: Rollout) -> Experience:
        """Render and score the episodes: returns per episode, rewards per step."""
        sketches = rollout.to_stroke3()
        steps, lengths = rollout.strokes.shape[1], rollout.lengths
        if isinstance(self.reward, DenseReward):
            per_sketch = self.reward.checkpoint_rewards(sketches)
            returns = self.reward.returns(per_sketch)
            checkpoints = checkpoint_mask(lengths, steps, self.reward.every)
            step_rewards = place_rewards(torch.cat(per_sketch).float(), checkpoints)
        else:
            returns = self.reward.score(sketches)
            step_rewards = final_rewards(returns.float().to(lengths.device), lengths, steps)
            checkpoints = torch.zeros_like(step_rewards, dtype=torch.bool)
            checkpoints.scatter_(1, last_sampled_step(lengths, steps).unsqueeze(1), True)
        reference = None
        if self.needs_reference():
            reference = self.reference_log_probs(rollout)
        return Experience(
            rollout=rollout, returns=returns.detach().float().to(self.device),
            step_rewards=step_rewards.to(self.device), checkpoints=checkpoints.to(self.device),
            old_log_probs=rollout.log_probs.detach(), ref_log_probs=reference,
            group_size=self.config.group_size_resolved,
        )

    def sample_start(self, generator: torch.Generator) -> Rollout:
        """Sketches of the starting policy for the forward KL term (a VAE's: a prior z each)."""
        count, start = self.config.forward_kl_episodes, self.start_policy
        z = start.sample_prior_z(count, generator=generator) if start.config.conditional else None
        return start.sample(count, temperature=self.temperature, max_len=self.config.max_len,
                            z=z, generator=generator)

    def needs_reference(self) -> bool:
        """Whether this batch runs the starting policy (a KL term, or a KL log is due)."""
        return self.config.needs_reference or self.batch_index % self.config.kl_log_every == 0

    def reference_log_probs(self, rollout: Rollout) -> torch.Tensor:
        with torch.no_grad():
            return policy_terms(self.start_policy, rollout, self.temperature).log_probs

    def update(self, batch: Experience, generator: torch.Generator,
               one_pass: bool) -> dict[str, float]:
        """``epochs x minibatches`` optimiser steps of the algorithm's loss; mean metrics."""
        config = self.config
        self.algorithm.prepare(batch)
        totals: dict[str, list[float]] = {}
        start_chunks = ((None,) * config.minibatches if batch.start_samples is None else
                        torch.arange(len(batch.start_samples), device=self.device)
                        .chunk(config.minibatches))
        for epoch in range(config.epochs):
            order = (torch.randperm(len(batch), generator=generator, device=self.device)
                     if config.minibatches > 1 else torch.arange(len(batch), device=self.device))
            for index, start_index in zip(order.chunk(config.minibatches), start_chunks,
                                          strict=True):
                if one_pass and epoch == 0:
                    terms = PolicyTerms(index, batch.rollout.log_probs, batch.rollout.outputs)
                else:
                    terms = policy_terms(self.policy, batch.rollout, self.temperature, index)
                loss, metrics = self.algorithm.loss(batch, terms)
                if self.beyond_trust_region(metrics, totals):
                    self.updates += config.epochs * config.minibatches - len(totals["loss"])
                    return self.update_metrics(totals)
                if start_index is not None:
                    forward_loss, metrics["forward_kl"] = forward_kl_terms(
                        self.policy, batch.start_samples, self.temperature, start_index)
                    loss = loss + config.forward_kl_beta * forward_loss
                metrics.update(loss=float(loss.detach()), **self.step(loss))
                for key, value in metrics.items():
                    totals.setdefault(key, []).append(value)
        return self.update_metrics(totals)

    def beyond_trust_region(self, metrics: dict[str, float],
                            totals: dict[str, list[float]]) -> bool:
        """Whether ``max_approx_kl`` stops this batch before the step whose ``metrics`` these
        are (never before its first step)."""
        limit = self.config.max_approx_kl
        return bool(limit and totals and metrics.get("approx_kl", 0.0) > limit)

    def update_metrics(self, totals: dict[str, list[float]]) -> dict[str, float]:
        """Mean of each metric over the batch's steps, and how many steps were taken."""
        means = {key: sum(values) / len(values) for key, values in totals.items()}
        if self.config.max_approx_kl:
            means["update_steps"] = len(totals["loss"])
        return means

    def step(self, loss: torch.Tensor) -> dict[str, float]:
        """One optimiser step; returns the policy's gradient norm before clipping
        (``grad_norm``) and the share of its elements that the element-wise clip cut
        (``grad_clipped``). A step whose gradient is not finite (an overflowing loss term) is
        skipped, as AMP's scaler does: clipping cannot repair a NaN, which would reach every
        weight."""
        self.optimizer.zero_grad(set_to_none=True)
        with flushed_denormals(self.device):
            loss.backward()
        policy_parameters = self.optimizer.param_groups[0]["params"]
        norm_tensor = torch.nn.utils.clip_grad_norm_(policy_parameters, math.inf)
        share = clipped_share(policy_parameters, self.config.grad_clip).to(norm_tensor.device)
        norm, clipped = torch.stack([norm_tensor.double(), share]).tolist()  # one host sync
        lr = self.current_lr()
        self.updates += 1  # the schedule counts skipped steps too (resume recomputes it)
        if not math.isfinite(norm):
            logger.warning("batch %d: the gradient is not finite (norm %s, loss %s); this "
                           "update is skipped", self.batch_index + 1, norm, float(loss.detach()))
            self.optimizer.zero_grad(set_to_none=True)
            return {"grad_norm": norm, "grad_clipped": float("nan")}
        for group in self.optimizer.param_groups:
            torch.nn.utils.clip_grad_value_(group["params"], self.config.grad_clip)
        self.optimizer.param_groups[0]["lr"] = lr
        self.optimizer.step()
        return {"grad_norm": norm, "grad_clipped": clipped}

    def current_lr(self) -> float:
        """The policy's learning rate for the next step: ``lr_warmup``'s linear ramp over
        the steps times ``lr_end``'s linear decay over the update batches."""
        config = self.config
        lr = config.lr * min(1.0, (self.updates + 1) / config.lr_warmup) if config.lr_warmup \
            else config.lr
        if config.lr_end < 1.0:
            update_batches = config.num_batches - config.warmup_batches
            progress = (self.batch_index - config.warmup_batches) / update_batches
            lr *= 1.0 - (1.0 - config.lr_end) * min(1.0, max(0.0, progress))
        return lr

    def run_batch(self) -> dict[str, float | int]:
        """Collect, score and (after the warm-up) update once; returns the batch's log row."""
        config = self.config
        updated = self.batch_index >= config.warmup_batches
        one_pass = updated and config.epochs == 1 and config.minibatches == 1
        generator = self.batch_generator()
        rollout = self.collect(generator, grad=one_pass)
        batch = self.score(rollout)
        row = dict.fromkeys(self.metric_names, float("nan"))
        if updated:
            if config.forward_kl_beta > 0:
                batch.start_samples = self.sample_start(generator)
            row.update(self.update(batch, generator, one_pass))
            if self.average is not None:
                self.average.update_parameters(self.policy)
        else:
            row.update(self.algorithm.observe(batch))
        row.update(self.batch_statistics(batch))
        if updated and "kl_to_start" in row:
            self.algorithm.adapt_kl_beta(row["kl_to_start"])
        row["kl_beta"] = self.algorithm.kl_beta
        self.batch_index += 1
        row.update(batch=self.batch_index, episodes=self.batch_index * config.batch_size,
                   updated=int(updated))
        return row

    def batch_statistics(self, batch: Experience) -> dict[str, float]:
        """Reward, length, per-step NLL, pen entropy and (when computed) KL to the start and
        the offsets' entropy bound."""
        rollout, mask = batch.rollout, batch.mask
        steps = mask.sum().clamp(min=1)
        returns = batch.returns
        with torch.no_grad():
            pen_entropy, _ = categorical_entropy(rollout.outputs.detach(), self.temperature,
                                                 self.policy.config.num_mixture)
            stats = {
                "reward_mean": float(returns.mean()),
                "reward_std": float(returns.std(unbiased=False)),
                "reward_min": float(returns.min()), "reward_max": float(returns.max()),
                "length_mean": float(rollout.lengths.float().mean()),
                "nll_per_step": float(-(batch.old_log_probs * mask).sum() / steps),
                "pen_entropy": float((pen_entropy * mask).sum() / steps),
            }
            if self.config.offset_entropy_coef > 0:
                offsets = offset_entropy_bound(rollout.outputs.detach(), self.temperature,
                                               self.policy.config.num_mixture)
                stats["offset_entropy"] = float((offsets * mask).sum() / steps)
            if batch.ref_log_probs is not None:
                log_ratio = (batch.old_log_probs - batch.ref_log_probs) * mask
                stats["kl_to_start"] = float(log_ratio.sum(dim=1).mean())
                k3 = k3_divergence(batch.old_log_probs, batch.ref_log_probs)
                stats["kl_k3"] = float((k3 * mask).sum() / steps)
                over = (k3 > K3_STEP_BOUND) & mask.bool()
                stats["kl_k3_over_bound"] = float(over.sum() / steps)
        return stats

    # -- state for --resume -------------------------------------------------------------------
    def state(self) -> RunState:
        average = cpu_state_dict(self.average) if self.average is not None else {}
        return RunState(batch_index=self.batch_index, optimizer=self.optimizer.state_dict(),
                        modules=self.algorithm.state_dict(), policy=cpu_state_dict(self.policy),
                        average=average)

    def load_state(self, state: RunState) -> None:
        """Continue from ``state`` (the policy too, when the state holds it)."""
        if state.policy:
            self.policy.load_state_dict(state.policy)
        self.batch_index = state.batch_index
        config = self.config
        self.updates = (max(0, self.batch_index - config.warmup_batches)
                        * config.epochs * config.minibatches)
        self.optimizer.load_state_dict(state.optimizer)
        self.algorithm.load_state_dict(state.modules)
        if self.average is not None:
            self.average.load_state_dict(state.average)
