"""`sketchrl train`: fine-tune a SketchRNN decoder with REINFORCE on a visual reward."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sketchrl.rl import RLConfig, apply_overrides, load_rl_config, read_metrics, train
from sketchrl.rl.run_files import CONFIG_FILE

EPILOG = """\
config keys (TOML; defaults are the paper's):
  model, reward, episodes, batch_size, lr, temperature, max_len, warmup_batches,
  dense_every (0 = sparse), gamma, dense_normalize, seed, grad_clip, advantage, share_z, kl_coef,
  checkpoint_every, device; the reward's own options go in a [reward_options] table.

examples:
  sketchrl train --config experiments/offline/ssim.toml --out runs/ssim
  sketchrl train --config experiments/offline/classifier_dense.toml --set gamma=0.9 --out runs/g09
  sketchrl train --out runs/ssim --resume          # continue an interrupted run
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune a sketch model with REINFORCE on a reward",
        description=(
            "Fine-tune the decoder of a SketchRNN with REINFORCE (shared z per batch, "
            "within-batch advantage normalisation, element-wise gradient clipping) on a reward "
            "computed from the rendered sketch. Writes metrics.csv, TensorBoard scalars, the "
            "policy (loadable wherever a model name is accepted) and resume state into --out."
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
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.resume and args.config is None and (args.out / CONFIG_FILE).exists():
        config = apply_overrides(RLConfig.load_json(args.out / CONFIG_FILE), args.overrides)
    else:
        config = load_rl_config(args.config, args.overrides)
    started = time.perf_counter()
    out_dir = train(config, args.out, resume=args.resume, progress=not args.quiet)
    rows = read_metrics(out_dir / "metrics.csv")
    print(summarize(rows, config, time.perf_counter() - started, out_dir))
    return 0


def summarize(rows: list[dict[str, str]], config: RLConfig, seconds: float, out_dir: Path) -> str:
    """One paragraph: reward at the start (warm-up batches) and over the last batches."""
    if not rows:
        return f"{out_dir}: no batches run"
    head = rows[: max(config.warmup_batches, 1)]
    tail = rows[-max(len(rows) // 10, 1):]

    def mean(selection: list[dict[str, str]]) -> float:
        return sum(float(r["reward_mean"]) for r in selection) / len(selection)

    return (
        f"{out_dir}: {len(rows)} batches ({rows[-1]['episodes']} episodes) in {seconds:.0f} s; "
        f"reward {mean(head):.4f} (first {len(head)} batches) -> {mean(tail):.4f} "
        f"(last {len(tail)}); KL to start {float(rows[-1]['kl_to_start']):.3f}"
    )
