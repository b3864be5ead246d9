"""`sketchrl train`: fine-tune a SketchRNN decoder with RL (REINFORCE, GRPO, PPO) on a reward."""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchrl.cli.sample import check_threads
from sketchrl.errors import ConfigError

CONFIG_FILE = "rl_config.json"  # sketchrl.rl.run_files.CONFIG_FILE (not imported: start-up)

EPILOG = """\
config keys (TOML; defaults are the paper's REINFORCE; every key is commented in
sketchrl/rl/config.py):
  policy and budget   model, reward + [reward_options], episodes, batch_size, group_size,
                      lr, lr_warmup, lr_end (linear decay to lr x lr_end),
                      warmup_batches, seed, device
  sampling            temperature, pen_temperature, temperature_semantics (paper|magenta-js),
                      max_len, prefix_from, prefix_fraction
  algorithm           algorithm (reinforce|grpo|ppo); reinforce: advantage, kl_coef;
                      grpo/ppo: epochs, minibatches, clip_low, clip_high, scale_rewards
                      (group|batch|none), max_approx_kl (stop a batch's steps once
                      the policy moved this far); all: kl_beta + kl_estimator
                      (k3|k2|k3_clamped|k3_truncated; KL to the start policy),
                      kl_target + kl_horizon (adapt kl_beta towards a KL in nats
                      per sketch), forward_kl_beta + forward_kl_episodes (KL from
                      the start policy, on its own sketches), entropy_coef (pen
                      and mixture weights), offset_entropy_coef (the offsets'
                      Gaussians); ppo: gae_lambda, value_coef, value_clip,
                      value_lr, value_hidden
  dense rewards       dense_every (0 = sparse), gamma, dense_normalize, credit
                      (episode|reward_to_go), dense_frame (prefix|final)
  output              ema_half_life (episodes; > 0: the model files hold a moving average
                      of the weights, the last ones in last_policy/)
  the rest            grad_clip, share_z, kl_log_every, checkpoint_every

examples:
  sketchrl train --config experiments/offline/steer_best.toml --out runs/steer
  sketchrl train --config experiments/offline/recognize_reinforce.toml --set seed=1 --out runs/r1
  sketchrl train --out runs/steer --resume          # continue an interrupted run
  sketchrl train --config experiments/offline/recognize_best.toml --threads 1 --out runs/b
                                                    # the README's runs used 1 thread
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune a sketch model with RL (REINFORCE, GRPO, PPO) on a reward",
        description=(
            "Fine-tune the decoder of a SketchRNN on a reward computed from the rendered "
            "sketch: the paper's REINFORCE (shared z, within-batch advantage normalisation, "
            "element-wise gradient clipping), GRPO (group-relative advantages, clipped ratio, "
            "k3 KL to the starting policy) or PPO (a value head, GAE). Writes metrics.csv, "
            "TensorBoard scalars, the policy (loadable wherever a model name is accepted) and "
            "resume state into --out."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, help="experiment TOML file (default: the paper's settings)"
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key; reward options as reward.KEY=VALUE (repeatable)",
    )
    parser.add_argument("--out", type=Path, required=True, help="run directory (must be empty)")
    parser.add_argument(
        "--resume", action="store_true",
        help="continue the run in --out from its last checkpoint (uses its saved config)",
    )
    parser.add_argument(
        "--threads", type=int, default=None,
        help="CPU threads for torch (default: torch's choice); a run's numbers depend on it, so "
        "rerun with the same count to get the same model",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_threads(args.threads)
    from sketchrl.rl import RLConfig, apply_overrides, load_rl_config, read_metrics, train_run

    saved = args.out / CONFIG_FILE
    if args.resume and args.config is None:
        if not saved.exists():
            raise ConfigError(
                f"--resume: {args.out} holds no run to resume (no {CONFIG_FILE}); start one "
                "with --config FILE --out DIR"
            )
        config = apply_overrides(RLConfig.load_json(saved), args.overrides)
    else:
        config = load_rl_config(args.config, args.overrides)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    summary = train_run(config, args.out, resume=args.resume, progress=not args.quiet)
    rows = read_metrics(summary.out_dir / "metrics.csv")
    print(summarize(rows, config, summary))
    return 0


def summarize(rows: list[dict[str, str]], config, summary) -> str:
    """One paragraph: reward at the start (warm-up batches) and over the last batches, the
    time over every attempt, and the last KL to the starting policy logged."""
    out_dir = summary.out_dir
    if not rows:
        return f"{out_dir}: no batches run"
    head = rows[: max(config.warmup_batches, 1)]
    tail = rows[-max(len(rows) // 10, 1):]

    def mean(selection: list[dict[str, str]]) -> float:
        return sum(float(r["reward_mean"]) for r in selection) / len(selection)

    kls = [float(r["kl_to_start"]) for r in rows if r.get("kl_to_start") not in ("", "nan")]
    attempts = f" over {summary.attempts} attempts" if summary.attempts > 1 else ""
    kl = f"; KL to start {kls[-1]:.3f}" if kls else ""
    return (
        f"{out_dir}: {len(rows)} batches ({rows[-1]['episodes']} episodes, {config.algorithm}) "
        f"in {summary.seconds:.0f} s{attempts}; reward {mean(head):.4f} (first {len(head)} "
        f"batches) -> {mean(tail):.4f} (last {len(tail)}){kl}"
    )
