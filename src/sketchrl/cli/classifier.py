"""`sketchrl classifier`: train a Quick, Draw! classifier, or classify drawings with one."""

from __future__ import annotations

import argparse
import json
import sys

from sketchrl.classifiers.config import ARCHITECTURES, PAPER_CATEGORIES, SUBSETS, ClassifierConfig
from sketchrl.cli.sample import seed_value
from sketchrl.config import parse_value

DEFAULTS = ClassifierConfig()

TRAIN_EPILOG = """\
Each category's numpy_bitmap drawings are split, with a fixed seed, into two disjoint halves:
--subset reward trains the classifier used as an RL reward, --subset eval the independent one
used for evaluation. A held-out part of the subset is never trained on; its accuracy is printed
at the end and written to metrics.json.

examples:
  sketchrl classifier train --arch cnn --subset reward --out runs/classifier-reward
  sketchrl classifier train --arch resnet18 --subset eval --out runs/classifier-eval
  sketchrl classifier train --categories owl,cat --arch cnn --epochs 2 --out runs/owl-vs-cat
"""

PREDICT_EPILOG = """\
Writes one JSON line per drawing to stdout: {"index", "category" (the most probable),
"probability" (its probability), "probs" (category -> probability)}.

examples:
  sketchrl classifier predict --model runs/classifier-eval samples.npz
  sketchrl classifier predict --model runs/classifier-eval owl.ndjson
  sketchrl classifier predict --model runs/classifier-eval quickdraw:owl/numpy_bitmap
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``classifier train`` and ``classifier predict``."""
    parser = subparsers.add_parser(
        "classifier",
        help="train a Quick, Draw! classifier or classify drawings with one",
        description="Train a 28x28 Quick, Draw! classifier (reward / evaluation) or apply one.",
    )
    actions = parser.add_subparsers(dest="classifier_command", metavar="ACTION", required=True)
    _register_train(actions)
    _register_predict(actions)


def _register_train(actions: argparse._SubParsersAction) -> None:
    train = actions.add_parser(
        "train",
        help="train a classifier on Quick, Draw! numpy_bitmap drawings",
        description="Train a classifier on the 28x28 numpy_bitmap drawings of some categories "
        "and report its held-out accuracy.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--categories", default=",".join(PAPER_CATEGORIES),
        help="comma-separated categories, in output order (default: %(default)s)",
    )
    train.add_argument(
        "--arch", choices=sorted(ARCHITECTURES), default=DEFAULTS.arch,
        help="network: cnn (small, fast on a CPU) or resnet18 (the paper's evaluation "
        "classifier; about 15x slower to train on a CPU) (default: %(default)s)",
    )
    train.add_argument(
        "--subset", choices=SUBSETS, default=DEFAULTS.subset,
        help="which disjoint half of each category to train on (default: %(default)s)",
    )
    train.add_argument("--out", required=True, help="output directory (created if needed)")
    train.add_argument(
        "--epochs", type=int, default=DEFAULTS.epochs,
        help="passes over the data (default: %(default)s)",
    )
    train.add_argument(
        "--batch-size", type=int, default=DEFAULTS.batch_size,
        help="bitmaps per step (default: %(default)s)",
    )
    train.add_argument(
        "--lr", type=float, default=DEFAULTS.lr, help="peak learning rate (default: %(default)s)"
    )
    train.add_argument(
        "--seed", type=seed_value, default=DEFAULTS.seed,
        help="seed of initialisation, batch order and augmentation; not of the data split "
        "(default: %(default)s)",
    )
    train.add_argument(
        "--max-per-category", type=int, default=None,
        help="use at most this many bitmaps per category (default: all)",
    )
    train.add_argument(
        "--holdout-fraction", type=float, default=DEFAULTS.holdout_fraction,
        help="fraction of each category held out for accuracy (default: %(default)s)",
    )
    train.add_argument(
        "--no-augment", action="store_true", help="no random shifts/scales while training"
    )
    train.add_argument(
        "--device", default=DEFAULTS.device,
        help="cpu, cuda[:N] or auto (cuda when available) (default: %(default)s)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=run_train)


def _register_predict(actions: argparse._SubParsersAction) -> None:
    predict = actions.add_parser(
        "predict",
        help="classify the drawings of a file with a trained classifier",
        description="Classify every drawing of an ndjson file, a samples / sketch-rnn .npz "
        "(drawn at 28x28 like numpy_bitmap) or a numpy_bitmap .npy / .bin (used directly).",
        epilog=PREDICT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument(
        "--model", required=True, help="classifier directory written by `classifier train`"
    )
    predict.add_argument(
        "input", metavar="INPUT",
        help="drawings: .ndjson, .npz, .npy, .bin, or an asset name such as "
        "quickdraw:owl/numpy_bitmap",
    )
    predict.add_argument(
        "--device", default=None, help="where the classifier runs: cpu or cuda[:N] (default: cpu)"
    )
    predict.add_argument(
        "--skip-bad", action="store_true",
        help="skip (and count) bad lines of an .ndjson input instead of stopping at the first",
    )
    predict.set_defaults(func=run_predict)


def run_train(args: argparse.Namespace) -> int:
    """Train and report; --out and --device are checked before any work."""
    from sketchrl.classifiers.training import train_classifier

    config = ClassifierConfig(
        categories=parse_value(args.categories, list[str], "categories"),
        arch=args.arch,
        subset=args.subset,
        holdout_fraction=args.holdout_fraction,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        max_per_category=args.max_per_category,
        augment=not args.no_augment,
        device=args.device,
    )
    metrics = train_classifier(config, args.out, progress=not args.quiet)
    per_class = ", ".join(
        f"{name} {value:.3f}" for name, value in metrics["held_out_per_class_accuracy"].items()
    )
    print(
        f"held-out accuracy {metrics['held_out_accuracy']:.4f} "
        f"(balanced {metrics['held_out_balanced_accuracy']:.4f}; {per_class}) "
        f"on {metrics['held_out_count']} bitmaps; {metrics['train_seconds']:.0f} s; "
        f"saved to {args.out}"
    )
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """One JSON line per drawing on stdout."""
    from sketchrl.classifiers.predict import classify_file, load_classifier

    classifier = load_classifier(args.model, device=args.device)
    for record in classify_file(classifier, args.input, skip_bad=args.skip_bad):
        sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
    return 0
