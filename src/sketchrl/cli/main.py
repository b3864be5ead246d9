"""Entry point of the ``sketchrl`` command.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``func(args) -> int | None``. To add a command, add its module name to SUBCOMMAND_MODULES.

Start-up stays fast (``sketchrl --help`` well under a second): this module and every
subcommand module import only the standard library and light sketchrl modules
(``sketchrl.errors``, ``sketchrl.config``, ...) at module level; torch, numpy and the rest are
imported inside each command's ``run``. ``tests/test_reliability.py`` checks it.
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
    "complete",
    "export",
    "interpolate",
    "pretrain",
    "classifier",
    "train",
    "evaluate",
    "reproduce",
)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (what is wrong, where to look)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
        message = " ".join(str(error).split())
        print(f"sketchrl {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sketchrl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
