"""`sketchrl interpolate`: a model between a fine-tune and its starting model (WiSE-FT)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchrl.cli.export import base_spec

EPILOG = """\
Every weight becomes start + WEIGHT * (fine-tune - start): 0 is the starting model, 1 the
fine-tune, 0.5 halfway; above 1 extrapolates past the fine-tune. It trades the reward the
fine-tune gained against what it lost (recall, FID) without training again; measure each
result with `sketchrl evaluate`. The README ("What was tried") has what it did on the offline
tasks.

MODEL and --base are anything `sketchrl sample --model` accepts; --base defaults to the
`model` of MODEL/rl_config.json (a `sketchrl train` output directory). --out gets
model.safetensors + model_config.json (usable wherever a model is accepted) and
interpolation.json (the two models and the weight).

examples:
  sketchrl interpolate runs/recognize --weight 0.7 --out runs/recognize-0.7
  sketchrl evaluate --model runs/recognize-0.7 --reference quickdraw:bird --out eval/r07
  sketchrl interpolate runs/steer --base sketchrnn:bird --weight 0.5 --out runs/steer-0.5
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``interpolate`` subcommand."""
    parser = subparsers.add_parser(
        "interpolate",
        help="mix a fine-tune's weights with its starting model's (WiSE-FT), no training",
        description="Write a model whose weights lie between MODEL (a fine-tune) and the model "
                    "it started from.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="the fine-tuned model")
    parser.add_argument("--weight", type=float, required=True,
                        help="0 = the starting model, 1 = MODEL, in between: a mix")
    parser.add_argument("--base", metavar="MODEL",
                        help="the starting model (default: from MODEL/rl_config.json)")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the model (must not hold a model already)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the output, load both models, write the mix and print one summary line."""
    from sketchrl.data.common import writable_directory
    from sketchrl.errors import ConfigError
    from sketchrl.models.interpolate import changed_tensors, check_weight, write_interpolation
    from sketchrl.models.io import WEIGHTS_FILE

    check_weight(args.weight)
    out = writable_directory(args.out, "--out")
    if (out / WEIGHTS_FILE).exists():
        raise ConfigError(f"--out {out} already holds a model; choose another folder")
    spec, _ = base_spec(args.model, args.base)
    if spec is None:
        raise ConfigError(f"{args.model} names no starting model (no rl_config.json); "
                          "give --base MODEL")
    start, tuned = write_interpolation(args.model, spec, args.weight, out)
    print(f"wrote {out}: start + {args.weight:g} x (fine-tune - start), start {spec}; "
          f"{changed_tensors(start, tuned)} of {len(tuned.state_dict())} tensors differ "
          "between the two")
    return 0
