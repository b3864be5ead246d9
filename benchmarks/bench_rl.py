"""Time of one fine-tuning batch, split by stage, against baselines and the roofline.

The baselines (``rl_baselines.py``): ``legacy``, the step as it was before the speed work
(per-step sampler, per-step teacher forcing with grad, the starting policy every batch, SSIM by
pytorch-msssim), and ``naive``, one episode at a time.

    python benchmarks/bench_rl.py [--batches 7] [--threads 2] [--model sketchrnn:bird]

Prints figures and ratios measured in this run (no assertions):
1. the matrix rate of this machine for the shapes of a batch (torch matmul), and from it the
   roofline of a batch: its matrix FLOPs divided by those rates;
2. the paper's REINFORCE (16 episodes, up to 250 steps, sparse SSIM reward): today's step split
   into sampling, render, reward, loss, backward and optimiser (and the reference policy, run
   every ``kl_log_every`` batches), against the same step without the C++ kernels
   (``SKETCHRL_NATIVE=0``: the decoder's loops in Python, SSIM as matrix products), its
   backward pass with the mixture head's subnormal gradients left in (``SKETCHRL_FTZ=0``), the
   step before the speed work (``legacy``) and a naive one (one episode at a time), and against
   the roofline, next to what torch's fused LSTM kernel (oneDNN / cuDNN) reaches on the same
   recurrence without sampling;
3. GRPO with several epochs (teacher forcing per minibatch);
4. dense rewards (every 25 steps) against their sparse batch: classifier and SSIM, the
   variants taking turns batch by batch from the same weights (the same episodes);
5. episodes per second against batch size (GRPO, one epoch).
Each variant runs the same seeds, so the sampled lengths match; medians over the batches.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import roofline
import torch
from rl_baselines import legacy_log_prob, legacy_sample
from roofline import (
    best_rates,
    lstm_roofline_seconds,
    measure_rates,
    roofline_seconds,
    vendor_lstm_seconds,
)

from sketchrl.models import load_model
from sketchrl.models.cells import FTZ_SWITCH
from sketchrl.models.native import SWITCH, native_loops
from sketchrl.rewards import DenseReward
from sketchrl.rewards.ssim import ssim_kernel
from sketchrl.rl import RLConfig, Trainer
from sketchrl.rl.experience import policy_terms
from sketchrl.rl.trainer import flushed_denormals

SSIM = {"target": "quickdraw:bird/simplified", "target_index": 0}
DEVICE = torch.device("cpu")


def sync() -> None:
    """Wait for the GPU (timings of asynchronous work)."""
    roofline.sync(DEVICE)


class Stages:
    """Wall time per named stage of one batch."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        sync()
        started = time.perf_counter()
        with torch.profiler.record_function(name):  # stage names for profile_rl.py
            yield
        sync()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


@contextlib.contextmanager
def switched_off(variable: str) -> Iterator[None]:
    """Today's step with ``variable=0``: ``SKETCHRL_NATIVE`` (the decoder's loops in Python,
    SSIM by matrix products) or ``SKETCHRL_FTZ`` (subnormal gradients left as they are)."""
    before = os.environ.get(variable)
    os.environ[variable] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ[variable]
        else:
            os.environ[variable] = before


def reinforce_batch(trainer: Trainer, batch_index: int, reference: bool = False) -> tuple:
    """One update of today's trainer, stage by stage; returns ``(Stages, steps)``."""
    stages = Stages()
    trainer.batch_index = batch_index
    trainer.needs_reference = lambda: False  # timed on its own below
    one_pass = trainer.config.epochs == 1 and trainer.config.minibatches == 1
    generator = trainer.batch_generator()
    with stages("sampling"):
        rollout = trainer.collect(generator, grad=one_pass)
    sketches = rollout.to_stroke3()
    reward = trainer.reward
    if isinstance(reward, DenseReward):
        with stages("render + reward (dense)"):
            batch = trainer.score(rollout)
    else:
        with stages("render"):
            images = reward.render(sketches)
        with stages("reward"):
            reward(images, sketches)
        batch = trainer.score(rollout)  # the reward again, untimed: the Experience
    if reference:
        with stages("reference policy"):
            batch.ref_log_probs = trainer.reference_log_probs(rollout)
    trainer.algorithm.prepare(batch)
    config = trainer.config
    for epoch in range(config.epochs):
        for index in torch.arange(len(batch)).chunk(config.minibatches):
            if one_pass and epoch == 0:
                from sketchrl.rl.experience import PolicyTerms

                terms = PolicyTerms(index, rollout.log_probs, rollout.outputs)
            else:
                with stages("teacher forcing"):
                    terms = policy_terms(trainer.policy, rollout, trainer.temperature, index)
            with stages("loss"):
                loss, _ = trainer.algorithm.loss(batch, terms)
            with stages("backward"), flushed_denormals(DEVICE):
                trainer.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for group in trainer.optimizer.param_groups:
                    torch.nn.utils.clip_grad_value_(group["params"], config.grad_clip)
            with stages("optimiser"):
                trainer.optimizer.step()
    return stages, rollout.strokes.shape[1]


def legacy_batch(trainer: Trainer, batch_index: int) -> tuple[float, int]:
    """The step before the speed work: sample, teacher-force with grad, run the start policy."""
    config, policy = trainer.config, trainer.policy
    sync()
    started = time.perf_counter()
    generator = torch.Generator(DEVICE).manual_seed(batch_index)
    strokes, lengths, mask = legacy_sample(policy, config.batch_size, config.temperature,
                                           config.max_len, generator)
    from sketchrl.models import Rollout

    sketches = Rollout(strokes, lengths, torch.zeros_like(mask, dtype=torch.float32),
                       mask).to_stroke3()
    returns = legacy_reward(trainer.reward, sketches)
    log_probs = legacy_log_prob(policy, strokes, lengths, config.temperature)
    with torch.no_grad():
        legacy_log_prob(trainer.start_policy, strokes, lengths, config.temperature)
    advantages = (returns - returns.mean()) / (returns.std(unbiased=False) + 1e-8)
    loss = -(advantages * log_probs).mean()
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_value_(trainer.optimizer.param_groups[0]["params"], 1.0)
    trainer.optimizer.step()
    sync()
    return time.perf_counter() - started, strokes.shape[1]


def legacy_reward(reward, sketches: list) -> torch.Tensor:
    """The reward as it was computed before the speed work (SSIM by pytorch-msssim's grouped
    convolutions); other rewards are unchanged."""
    from sketchrl.rewards.ssim import SSIMReward, ssim_per_image

    if isinstance(reward, SSIMReward):
        return ssim_per_image(reward.render(sketches), reward.target_image)
    return reward.score(sketches)


def naive_batch(trainer: Trainer, batch_index: int) -> tuple[float, int]:
    """One episode at a time: sample it, teacher-force it with grad, accumulate the gradient."""
    config, policy = trainer.config, trainer.policy
    sync()
    started = time.perf_counter()
    generator = torch.Generator(DEVICE).manual_seed(batch_index)
    episodes = [legacy_sample(policy, 1, config.temperature, config.max_len, generator)
                for _ in range(config.batch_size)]
    from sketchrl.models import Rollout

    sketches = [Rollout(s, n, torch.zeros_like(m, dtype=torch.float32), m).to_stroke3()[0]
                for s, n, m in episodes]
    returns = legacy_reward(trainer.reward, sketches)
    advantages = (returns - returns.mean()) / (returns.std(unbiased=False) + 1e-8)
    trainer.optimizer.zero_grad(set_to_none=True)
    for (strokes, lengths, _), advantage in zip(episodes, advantages, strict=True):
        loss = -advantage * legacy_log_prob(policy, strokes, lengths, config.temperature)[0]
        (loss / config.batch_size).backward()
    torch.nn.utils.clip_grad_value_(trainer.optimizer.param_groups[0]["params"], 1.0)
    trainer.optimizer.step()
    sync()
    return time.perf_counter() - started, max(s.shape[1] for s, _, _ in episodes)


def make_trainer(model: str, reward: str, options: dict, **settings) -> Trainer:
    config = RLConfig(model=model, reward=reward, reward_options=options, device=str(DEVICE),
                      warmup_batches=0, **settings)
    return Trainer(config)


def median_over(batches: int, run: Callable[[int], tuple]) -> tuple:
    results = [run(100 + k) for k in range(batches)]
    return results


def report_reinforce(args: argparse.Namespace) -> None:
    trainer = make_trainer(args.model, "ssim", SSIM)
    hidden = trainer.policy.config.dec_rnn_size
    out = trainer.policy.config.output_size
    rates = measure_rates(16, hidden, out, 160, DEVICE)
    runs = median_over(args.batches, lambda b: reinforce_batch(trainer, b))
    steps = [s for _, s in runs]
    rates = best_rates(rates, measure_rates(16, hidden, out, int(statistics.median(steps)),
                                            DEVICE))
    print("matrix rates (GFLOP/s, torch matmul, the best of two measurements in this run): " +
          ", ".join(f"{k} {v:.0f}" for k, v in rates.items()))
    current = [stages.total for stages, _ in runs]
    roof = [roofline_seconds(16, s, hidden, out, rates) for s in steps]
    with switched_off(SWITCH):
        python = [reinforce_batch(trainer, 100 + k)[0].total for k in range(args.batches)]
    legacy = [legacy_batch(trainer, 100 + k)[0] for k in range(args.batches)]
    naive = [naive_batch(trainer, 100 + k)[0] for k in range(max(2, args.batches // 3))]
    reference = [reinforce_batch(trainer, 100 + k, reference=True)[0].seconds[
        "reference policy"] for k in range(3)]
    print(f"\n== REINFORCE (paper), 16 episodes, sparse SSIM, steps per batch {steps} ==")
    stage_names = runs[0][0].seconds
    for name in stage_names:
        print(f"  {name:<22} {statistics.median(r.seconds[name] for r, _ in runs) * 1e3:8.1f} ms")
    print(f"  {'reference policy':<22} {statistics.median(reference) * 1e3:8.1f} ms "
          f"(every kl_log_every = 10 batches, or every batch with a KL term)")
    med = statistics.median(current)
    print(f"  {'total':<22} {med * 1e3:8.1f} ms  ({16 / med:.0f} episodes/s)")
    print(f"  without C++ kernels    {statistics.median(python) * 1e3:8.1f} ms  -> "
          f"the C++ kernels are {statistics.median(python) / med:.2f}x faster ({SWITCH}=0)")
    print_flush_pairs(flush_pairs(trainer, args.batches))
    print(f"  legacy step (before)   {statistics.median(legacy) * 1e3:8.1f} ms  -> "
          f"today is {statistics.median(legacy) / med:.2f}x faster (target >= 2.5x)")
    print(f"  naive (per episode)    {statistics.median(naive) * 1e3:8.1f} ms  -> "
          f"today is {statistics.median(naive) / med:.1f}x faster")
    ratio = statistics.median(c / r for c, r in zip(current, roof, strict=True))
    print(f"  roofline               {statistics.median(roof) * 1e3:8.1f} ms  -> "
          f"today is {ratio:.2f}x the roofline (target <= 1.5x)")
    learning = statistics.median(r.total - r.seconds["render"] - r.seconds["reward"]
                                 for r, _ in runs)
    print(f"  without render+reward  {learning * 1e3:8.1f} ms  -> "
          f"{statistics.median((r.total - r.seconds['render'] - r.seconds['reward']) / f for (r, _), f in zip(runs, roof, strict=True)):.2f}x the roofline")  # noqa: E501
    median_steps = int(statistics.median(steps))
    vendor = vendor_lstm_seconds(16, median_steps, hidden, DEVICE)
    print(f"  for scale: torch.nn.LSTM forward + backward, {median_steps} teacher-forced steps "
          f"(the vendor's fused kernel, no sampling): {vendor * 1e3:.1f} ms = "
          f"{vendor / lstm_roofline_seconds(16, median_steps, hidden, rates):.2f}x the "
          "roofline of the same LSTM work")


def flush_pairs(trainer: Trainer, batches: int) -> list[tuple[float, float]]:
    """Backward seconds with and without flushing subnormal gradients (``SKETCHRL_FTZ=0``),
    batch by batch from the same weights (the same episodes), in turns."""
    start = {key: value.clone() for key, value in trainer.policy.state_dict().items()}
    pairs = []
    for k in range(batches):
        flushed = batch_from(trainer, start, 100 + k)[0].seconds["backward"]
        with switched_off(FTZ_SWITCH):
            kept = batch_from(trainer, start, 100 + k)[0].seconds["backward"]
        pairs.append((flushed, kept))
    return pairs


def print_flush_pairs(pairs: list[tuple[float, float]]) -> None:
    flushed, kept = (statistics.median(times) for times in zip(*pairs, strict=True))
    ratio = statistics.median(k / f for f, k in pairs)
    print(f"  backward, subnormals   {kept * 1e3:8.1f} ms  -> flushed ({flushed * 1e3:.1f} ms) "
          f"{ratio:.2f}x faster (SKETCHRL_FTZ=0; paired, the same episodes in turns)")


def report_grpo(args: argparse.Namespace) -> None:
    trainer = make_trainer(args.model, "ssim", SSIM, algorithm="grpo", batch_size=64,
                           group_size=16, epochs=2, minibatches=2, kl_beta=0.05)
    runs = median_over(max(3, args.batches // 2), lambda b: reinforce_batch(trainer, b, True))
    print("\n== GRPO, 4 groups of 16, 2 epochs x 2 minibatches, kl_beta 0.05 ==")
    for name in runs[0][0].seconds:
        print(f"  {name:<22} {statistics.median(r.seconds[name] for r, _ in runs) * 1e3:8.1f} ms")
    med = statistics.median(r.total for r, _ in runs)
    print(f"  {'total':<22} {med * 1e3:8.1f} ms  ({64 / med:.0f} episodes/s)")


def report_dense(args: argparse.Namespace) -> None:
    from sketchrl.classifiers import ClassifierConfig, build_classifier, save_classifier

    with tempfile.TemporaryDirectory() as folder:
        config = ClassifierConfig(categories=["owl", "cat", "dog", "bird", "fish"], arch="cnn")
        save_classifier(build_classifier("cnn", config.categories).eval(), config,
                        Path(folder) / "clf")
        classifier = {"model": str(Path(folder) / "clf"), "category": "bird"}
        print("\n== dense rewards (every 25 steps) against the sparse batch ==")
        print("  (the three variants take turns batch by batch, each batch from the pretrained "
              "weights, so that they sample the same episodes and a change in the machine's "
              "speed hits all of them; ratio = median over the rounds of dense / sparse)")
        for name, reward, options in (("classifier", "classifier", classifier),
                                      ("SSIM", "ssim", SSIM)):
            variants = {"sparse": {}, "dense": {"dense_every": 25},
                        "dense, final frame": {"dense_every": 25, "dense_frame": "final"}}
            trainers = {label: make_trainer(args.model, reward, options, **settings)
                        for label, settings in variants.items()}
            # copies: a state_dict (and cpu_state_dict on a CPU) shares the live weights' storage
            start = {key: value.clone()
                     for key, value in trainers["sparse"].policy.state_dict().items()}
            rounds = [{label: batch_from(trainer, start, 100 + k)
                       for label, trainer in trainers.items()} for k in range(args.batches)]
            print_dense_rounds(name, rounds, 1.3 if name == "classifier" else 1.6)


def batch_from(trainer: Trainer, weights: dict, batch_index: int) -> tuple:
    """:func:`reinforce_batch` from the given policy weights (so that variants sample alike)."""
    trainer.policy.load_state_dict(weights)
    return reinforce_batch(trainer, batch_index)


def print_dense_rounds(name: str, rounds: list[dict], target: float) -> None:
    """Median time and steps of each variant, and the median per-round ratio to sparse."""
    def ratio(label: str) -> float:
        return statistics.median(r[label][0].total / r["sparse"][0].total for r in rounds)

    times = {label: statistics.median(r[label][0].total for r in rounds) for label in rounds[0]}
    steps = {label: int(statistics.median(r[label][1] for r in rounds)) for label in rounds[0]}
    print(f"  {name:<10} sparse {times['sparse'] * 1e3:7.1f} ms, dense "
          f"{times['dense'] * 1e3:7.1f} ms ({ratio('dense'):.2f}x, target <= {target}x), "
          f"final frame {ratio('dense, final frame'):.2f}x; median steps "
          + " / ".join(str(steps[label]) for label in steps))


def report_batch_sizes(args: argparse.Namespace) -> None:
    print("\n== episodes/s against batch size (GRPO, groups of 16, one epoch, SSIM) ==")
    for size in (16, 32, 64, 128):
        trainer = make_trainer(args.model, "ssim", SSIM, algorithm="grpo", batch_size=size,
                               group_size=16)
        runs = median_over(max(3, args.batches // 2), lambda b, t=trainer: reinforce_batch(t, b))
        seconds = statistics.median(r.total for r, _ in runs)
        print(f"  batch {size:>3}: {seconds * 1e3:8.1f} ms per batch, {size / seconds:6.0f} "
              "episodes/s")


def prepare(model: str, threads: int) -> None:
    """Before anything is timed: torch's threads set, the model fetched, the C++ kernels
    compiled (first use)."""
    torch.set_num_threads(threads)
    load_model(model)
    native_loops()
    ssim_kernel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=7, help="batches per variant")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--model", default="sketchrnn:bird")
    parser.add_argument("--only", choices=("reinforce", "grpo", "dense", "sizes"))
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    prepare(args.model, args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {DEVICE}"
          + (f" ({torch.cuda.get_device_name()})" if DEVICE.type == "cuda" else ""))
    sections = {"reinforce": report_reinforce, "grpo": report_grpo, "dense": report_dense,
                "sizes": report_batch_sizes}
    for name, report in sections.items():
        if args.only in (None, name):
            report(args)


if __name__ == "__main__":
    main()
