"""`sketchrl pretrain`: train a SketchRNN (VAE or decoder-only) on stroke data, Magenta style."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from sketchrl.errors import ConfigError

DESCRIPTION = """\
Train a SketchRNN on a sketch-rnn .npz (its train / valid splits) or Quick, Draw! ndjson files
(raw or simplified; a share of the drawings is held out for validation), with Magenta's loss
(mixture NLL + pen cross-entropy + annealed KL with a tolerance), learning-rate decay, gradient
clipping and augmentations. Writes model.safetensors + model_config.json (loadable wherever a
model is expected), training_state.pt, pretrain_config.json, metrics.csv and tb/ (TensorBoard).
"""

EPILOG = """\
Settings (--set key=value) are PretrainConfig fields (num_steps, valid_fraction, eval_every,
save_every, log_every, seed, device, num_workers) or SketchRNNConfig fields with Magenta's names
(dec_rnn_size, enc_rnn_size, z_size, num_mixture, dec_model, enc_model, max_seq_len, batch_size,
learning_rate, decay_rate, min_learning_rate, kl_weight, kl_weight_start, kl_decay_rate,
kl_tolerance, grad_clip, random_scale_factor, augment_stroke_prob, use_recurrent_dropout, ...).

Examples:
  sketchrl pretrain --data quickdraw:owl/sketchrnn --out runs/owl_vae
  sketchrl pretrain --data quickdraw:bird/raw --data quickdraw:bird/simplified \\
      --decoder-only --set dec_rnn_size=256 --steps 2000 --out runs/bird_gen
  sketchrl pretrain --out runs/owl_vae --resume --steps 20000
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pretrain`` subcommand."""
    parser = subparsers.add_parser(
        "pretrain",
        help="train a SketchRNN (VAE or decoder-only) on stroke data",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data", action="append", default=None, metavar="PATH_OR_ASSET",
        help="a .npz or .ndjson file or an asset name (e.g. quickdraw:owl/sketchrnn); repeat "
        "to train on several (all are used); on --resume the saved list is the default",
    )
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder: must be new or empty unless --resume")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--conditional", dest="conditional", action="store_const", const=True,
                      default=None, help="train a VAE: encoder + latent z (the default)")
    kind.add_argument("--decoder-only", dest="conditional", action="store_const", const=False,
                      help="train an unconditional decoder-only model (no encoder, no z)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting (see below); repeatable")
    parser.add_argument("--steps", type=int, default=None, metavar="N",
                        help="total training steps (num_steps); a resumed run continues to N")
    parser.add_argument("--device", default=None,
                        help="torch device, e.g. cpu or cuda (default: cpu)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run saved in --out (weights, optimizer and step)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def parse_settings(items: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` -> dict; ConfigError on an item without ``=``."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. --set z_size=64")
        settings[key.strip()] = value.strip()
    return settings


def run(args: argparse.Namespace) -> int:
    """Build the PretrainConfig from the arguments (or the saved run) and train."""
    from sketchrl.data.common import writable_directory
    from sketchrl.devices import resolve_device
    from sketchrl.models.pretrain import (
        PretrainConfig,
        check_out_dir,
        load_pretrain_config,
        pretrain,
        with_settings,
    )

    writable_directory(args.out)
    check_out_dir(Path(args.out), args.resume)
    config = load_pretrain_config(args.out) if args.resume else PretrainConfig()
    settings = parse_settings(args.set)
    if args.steps is not None:
        settings["num_steps"] = str(args.steps)
    if args.device is not None:
        settings["device"] = args.device
    if args.conditional is not None:
        settings["conditional"] = str(args.conditional)
    config = with_settings(config, settings)
    if args.data:
        config = dataclasses.replace(config, data=list(args.data))
    resolve_device(config.device)  # e.g. cuda without a GPU: one line, before any work
    result = pretrain(config, args.out, resume=args.resume, progress=not args.quiet)
    split, rows = ("valid", result.valid) if result.valid else ("train", result.train)
    summary = f" (last {split} loss {rows[-1]['loss']:.4f})" if rows else ""
    print(f"trained steps {result.first_step}..{result.step} into {result.out_dir}{summary}")
    return 0
