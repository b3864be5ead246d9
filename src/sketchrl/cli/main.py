"""Entry point of the ``sketchrl`` command.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``func(args) -> int | None``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from sketchrl import __version__
from sketchrl.errors import SketchRLError

SUBCOMMAND_MODULES = (
    "fetch",
    "render",
    "sample",
    "pretrain",
    "classifier",
    "train",
    "evaluate",
    "reproduce",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sketchrl",
        description=(
            "Fine-tune SketchRNN with reinforcement learning on rewards computed from the "
            "rendered sketch, and evaluate the result (FID, precision/recall, classifier)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"sketchrl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module(f"sketchrl.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SketchRLError as error:
        print(f"sketchrl {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sketchrl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
