"""`sketchrl evaluate`: FID, precision/recall, classifier rate and rewards of a model's samples."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sketchrl.errors import ConfigError

EPILOG = """\
writes into --out: metrics.json (all numbers), metrics.md (readable table), grid.png (the first
64 samples) and samples.npz (the sketches evaluated).

FID, precision and recall compare Inception features of the samples, rendered as 28x28
Quick, Draw! bitmaps, with those of the first min(n, available) real bitmaps of the
reference category (cached under $SKETCHRL_HOME/features/). With fewer than 2048 samples on a
side FID is reported with fid_reliable=false and a warning.

examples:
  sketchrl evaluate --model sketchrnn:bird -n 2000 --reference quickdraw:bird --out eval/base \\
      --classifier classifiers/eval --reward ssim --reward-option target=quickdraw:bird/simplified
  sketchrl evaluate --model runs/ssim --reference quickdraw:bird --out eval/ssim
  sketchrl evaluate --samples eval/base/samples.npz --reference quickdraw:bird --out eval/again
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a model's samples: FID, precision/recall, classifier rate, rewards",
        description=(
            "Sample sketches from a model (or read existing samples) and measure FID and "
            "precision / recall / density / coverage against real Quick, Draw! drawings, the "
            "rate at which an independent classifier recognises the category, optional "
            "rewards (mean with a bootstrap 95% interval) and sketch statistics."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model", metavar="NAME_OR_DIR",
        help="model to sample: sketchrnn:<category>, a sketch-rnn-js .json, or a training "
             "output directory",
    )
    source.add_argument(
        "--samples", type=Path, metavar="FILE",
        help="evaluate existing sketches instead of sampling (samples.npz, .ndjson, sketch-rnn "
             ".npz test split)",
    )
    parser.add_argument(
        "--reference", required=True, metavar="quickdraw:CATEGORY",
        help="real drawings to compare with, e.g. quickdraw:bird",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for the results")
    parser.add_argument(
        "-n", type=int, default=None,
        help="sketches to sample (default 2000, the paper's) or, with --samples, to read "
             "(default all)",
    )
    parser.add_argument(
        "--classifier", type=Path, metavar="DIR",
        help="independent classifier (trained with --subset eval) for the classifier rate",
    )
    parser.add_argument(
        "--category", help="category counted by the classifier and CLIP's positive prompt "
                           "(default: the reference's)",
    )
    parser.add_argument("--reward", metavar="NAME", help="also report this reward's mean")
    parser.add_argument(
        "--reward-option", dest="reward_options", action="append", default=[],
        metavar="KEY=VALUE", help="an option of --reward (repeatable)",
    )
    parser.add_argument("--clip", action="store_true", help="also report the CLIP score")
    parser.add_argument(
        "--clip-weights", type=Path, metavar="PATH",
        help="local open_clip ViT-B-32 checkpoint for --clip (default: download 'openai')",
    )
    parser.add_argument(
        "--temperature", type=float, default=0.5, help="sampling temperature (default 0.5)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of sampling and bootstrap (default 0)"
    )
    parser.add_argument(
        "--max-len", type=int, default=None, help="most steps per sketch (default: the model's)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=500, help="sketches sampled per batch (default 500)"
    )
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:1 or auto (default: cuda if available)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise ConfigError(f"--reward-option {pair!r}: write KEY=VALUE, e.g. category=bird")
        options[key.strip()] = value
    return options


def run(args: argparse.Namespace) -> int:
    from sketchrl.evaluate import (
        DEFAULT_N,
        build_evaluation_rewards,
        evaluate_model,
        evaluate_samples_file,
        format_markdown,
        parse_reference,
    )

    category = args.category or parse_reference(args.reference)
    if args.reward_options and not args.reward:
        raise ConfigError("--reward-option needs --reward NAME")
    clip_options: dict[str, Any] = {"category": category}
    if args.clip_weights is not None:
        clip_options["weights"] = str(args.clip_weights)
    rewards = build_evaluation_rewards(
        args.reward, parse_options(args.reward_options), clip=args.clip,
        clip_options=clip_options, device=args.device,
    )
    common: dict[str, Any] = dict(
        reference=args.reference, out_dir=args.out, classifier_dir=args.classifier,
        target_category=args.category, rewards=rewards, seed=args.seed, device=args.device,
        progress=not args.quiet,
    )
    if args.samples is not None:
        metrics = evaluate_samples_file(args.samples, args.n, **common)
    else:
        metrics = evaluate_model(
            args.model, args.n or DEFAULT_N, temperature=args.temperature, max_len=args.max_len,
            batch_size=args.batch_size, **common,
        )
    print(format_markdown(metrics), end="")
    print(f"\nwrote metrics.json, metrics.md, grid.png, samples.npz to {args.out}")
    return 0
