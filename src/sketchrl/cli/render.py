"""`sketchrl render`: draw sketches from a file as PNG and SVG files plus a grid."""

from __future__ import annotations

import argparse

#: Largest --size: a 4096 x 4096 image is already 16 M pixels per drawing.
MAX_SIZE = 4096


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        name = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {name}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a non-negative integer")
    return value


def image_size(text: str) -> int:
    """argparse type: an image side in 1..MAX_SIZE pixels."""
    value = positive_int(text)
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"{value} pixels is more than the {MAX_SIZE} allowed")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = float(_number(text, float))
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``render`` subcommand."""
    parser = subparsers.add_parser(
        "render",
        help="draw sketches from a file as PNG + SVG files and a grid",
        description=(
            "Render every drawing of INPUT (a Quick, Draw! .ndjson file, a sketch-rnn .npz or "
            "sketchrl's samples.npz) to OUT/NNNN.png and OUT/NNNN.svg, plus OUT/grid.png of the "
            "first drawings. An existing OUT folder is kept (same-named files are overwritten)."
        ),
    )
    parser.add_argument("input", metavar="INPUT", help=".ndjson, sketch-rnn .npz or samples.npz")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--size", type=image_size, default=256,
        help=f"image side in pixels, at most {MAX_SIZE} (default: 256)",
    )
    parser.add_argument(
        "--line-width",
        type=positive_float,
        default=2.0,
        help="stroke width in output pixels (default: 2.0)",
    )
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="render only the first K drawings"
    )
    parser.add_argument(
        "--split",
        default="test",
        choices=("train", "valid", "test"),
        help="which split of a sketch-rnn .npz to read (default: test; ignored otherwise)",
    )
    parser.add_argument(
        "--grid",
        type=non_negative_int,
        default=64,
        metavar="N",
        help="number of drawings in grid.png (default: 64; 0 for no grid)",
    )
    parser.add_argument(
        "--skip-bad", action="store_true",
        help="skip (and count) bad lines of an .ndjson input instead of stopping at the first",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check --out, read the drawings and write the images."""
    from sketchrl.data import load_sketches, writable_directory
    from sketchrl.render import RenderOptions, export_sketches

    writable_directory(args.out)
    sketches = load_sketches(args.input, split=args.split, skip_bad=args.skip_bad)
    if args.limit is not None:
        sketches = sketches[: args.limit]
    options = RenderOptions(size=args.size, line_width=args.line_width)
    export_sketches(
        sketches, args.out, options, grid_count=args.grid, progress=not args.no_progress
    )
    return 0
