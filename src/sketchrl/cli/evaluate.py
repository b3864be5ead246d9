"""`sketchrl evaluate`: FID, precision/recall, classifier rate and rewards of a model's samples."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sketchrl.cli.render import positive_int
from sketchrl.cli.sample import (
    MAX_SKETCHES,
    add_temperature_options,
    seed_value,
    sketch_count,
    temperature_from_args,
    temperature_options_given,
)
from sketchrl.errors import ConfigError

EPILOG = """\
writes into --out: metrics.json (all numbers), metrics.md (readable table), grid.png (the first
64 samples) and samples.npz (the sketches evaluated).

temperature (--model only): --temperature-semantics paper (default; the SketchRNN paper):
logits / T, sigma * sqrt(T); magenta-js (@magenta/sketch's default): logits / (0.5 + 0.5 T),
sigma * sqrt(T). metrics.json records temperature, pen_temperature, temperature_semantics.

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
        help="evaluate a model's samples: FID, KID, precision/recall, classifier rate, rewards",
        description=(
            "Sample sketches from a model (or read existing samples) and measure FID, KID and "
            "precision / recall / density / coverage against real Quick, Draw! drawings, the "
            "rate at which an independent classifier recognises the category, optional "
            "rewards (mean with a bootstrap 95% interval) and sketch statistics."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_options(parser)
    add_metric_options(parser)
    add_sampling_options(parser)
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:1 or auto (default: cuda if available)"
    )
    parser.add_argument(
        "--precision", choices=("bf16", "fp32"), default="bf16",
        help="arithmetic of the Inception network (default bf16: fast on AMX CPUs and GPUs, "
             "FID within 1%% of fp32); the preprocessing is the same for both",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """What is evaluated, against what, and where the results go."""
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
        "-n", type=sketch_count, default=None,
        help=f"sketches to sample (default 2000, the paper's; at most {MAX_SKETCHES:,}) or, "
             "with --samples, to read (default all)",
    )
    parser.add_argument(
        "--skip-bad", action="store_true",
        help="with an .ndjson --samples file: skip (and count) bad lines instead of stopping",
    )


def add_metric_options(parser: argparse.ArgumentParser) -> None:
    """The classifier rate, rewards and CLIP score measured besides FID / KID / prdc."""
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


def add_sampling_options(parser: argparse.ArgumentParser) -> None:
    """How --model is sampled."""
    add_temperature_options(parser)
    parser.add_argument(
        "--seed", type=seed_value, default=0, help="seed of sampling and bootstrap (default 0)"
    )
    parser.add_argument(
        "--max-len", type=positive_int, default=None,
        help="most steps per sketch (default: the model's)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=500,
        help="sketches sampled per batch (default 500)",
    )


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
    """Check every option and --out, build the rewards, then sample (or read) and evaluate."""
    from sketchrl.evaluate import (
        DEFAULT_N,
        evaluate_model,
        evaluate_samples_file,
        format_markdown,
        parse_reference,
    )

    category = args.category or parse_reference(args.reference)
    if args.reward_options and not args.reward:
        raise ConfigError("--reward-option needs --reward NAME")
    given = temperature_options_given(args)
    if args.samples is not None and given:
        raise ConfigError(f"{', '.join(given)} apply to sampling: use them with --model")
    if args.model is not None and args.skip_bad:
        raise ConfigError("--skip-bad applies to an .ndjson --samples file, not to --model")
    temperature = temperature_from_args(args)
    from sketchrl.data import writable_directory
    from sketchrl.devices import resolve_device

    writable_directory(args.out)
    resolve_device(args.device, default="auto")
    check_inputs(args, category)
    rewards = build_rewards(args, category)
    common: dict[str, Any] = dict(
        reference=args.reference, out_dir=args.out, classifier_dir=args.classifier,
        target_category=args.category, rewards=rewards, seed=args.seed, device=args.device,
        progress=not args.quiet, precision=args.precision,
    )
    if args.samples is not None:
        metrics = evaluate_samples_file(args.samples, args.n, skip_bad=args.skip_bad, **common)
    else:
        metrics = evaluate_model(
            args.model, args.n or DEFAULT_N, max_len=args.max_len, batch_size=args.batch_size,
            temperature=temperature, **common,
        )
    print(format_markdown(metrics), end="")
    if args.model is not None:
        print(f"\nsampled at temperature {temperature.describe()}")
    print(f"\nwrote metrics.json, metrics.md, grid.png, samples.npz to {args.out}")
    return 0


def check_inputs(args: argparse.Namespace, category: str) -> None:
    """Fail before sampling when the reference drawings or the classifier cannot be had."""
    from sketchrl.assets import resolve
    from sketchrl.evaluate import parse_reference
    from sketchrl.evaluate.judge import load_evaluation_classifier

    resolve(f"quickdraw:{parse_reference(args.reference)}/numpy_bitmap", progress=not args.quiet)
    if args.classifier is not None:
        load_evaluation_classifier(args.classifier, category, "cpu")


def build_rewards(args: argparse.Namespace, category: str) -> dict[str, Any]:
    """--reward and --clip as evaluation rewards; a missing CLIP checkpoint names this command's
    option for it."""
    from sketchrl.evaluate import build_evaluation_rewards
    from sketchrl.rewards.clip import MissingCLIPWeights

    rewards: dict[str, Any] = {}
    if args.reward:
        try:
            rewards.update(build_evaluation_rewards(
                args.reward, parse_options(args.reward_options), device=args.device
            ))
        except MissingCLIPWeights as error:
            raise error.with_hint("pass one with --reward-option weights=FILE") from None
    if args.clip:
        clip_options: dict[str, Any] = {"category": category}
        if args.clip_weights is not None:
            clip_options["weights"] = str(args.clip_weights)
        try:
            rewards.update(build_evaluation_rewards(
                clip=True, clip_options=clip_options, device=args.device
            ))
        except MissingCLIPWeights as error:
            raise error.with_hint(
                "pass a local open_clip ViT-B-32 checkpoint with --clip-weights FILE"
            ) from None
    return rewards
