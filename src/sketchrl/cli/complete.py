"""`sketchrl complete`: the model finishes a drawing a person started."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sketchrl.cli.sample import add_temperature_options, temperature_from_args

EPILOG = """\
INPUT (the partial drawing; --index picks one, default 0):
  FILE.ndjson     Quick, Draw! raw or simplified drawings (pixels of the 0-255 space), or
                  the asset quickdraw:<category>/simplified (or /raw)
  samples.npz     sketches written by `sketchrl sample` / `complete` (model units)
  FILE.npz        a sketch-rnn dataset file: its test split (pixels)
  FILE.json       stroke-3: one drawing as a list of [dx, dy, pen_lifted] rows, or a list of
                  such drawings; model units unless --prefix-units pixels (pen_lifted = 1 when
                  the pen lifts after the point; the first row is the offset of the first point)
Model units are pixels / the model's scale_factor. The prefix is the whole drawing, or its first
--prefix-fraction of rows. A VAE completes with a fresh prior z per completion.

output (in --out):
  NNNN.png, NNNN.svg   each completion: the prefix in black, the model's continuation in red
  grid.png             all completions (the first --grid)
  samples.npz          the completed drawings (prefix + continuation, model units)

examples:
  sketchrl complete --model sketchrnn:bird --prefix quickdraw:bird/simplified --index 16 \\
      --prefix-fraction 0.4 -n 9 --out done/
  sketchrl complete --model runs/ssim --prefix start.json --prefix-units pixels -n 8 \\
      --temperature 0.25 --temperature-semantics magenta-js --out done/
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``complete`` subcommand."""
    parser = subparsers.add_parser(
        "complete",
        help="finish a partial drawing with a model (PNG + SVG per completion, samples.npz)",
        description="Feed a partial drawing through the model and sample N continuations.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="sketchrnn:<category>, a sketch-rnn-js .json, or a model directory")
    parser.add_argument("--prefix", required=True, type=Path, metavar="INPUT",
                        help="file holding the partial drawing (see below)")
    parser.add_argument("--index", type=int, default=0, help="which drawing of INPUT (default 0)")
    parser.add_argument("--prefix-fraction", type=float, default=1.0, metavar="F",
                        help="give only the first F of the drawing's rows, 0 < F <= 1 (default 1)")
    parser.add_argument("--prefix-units", choices=("auto", "model", "pixels"), default="auto",
                        help="units of INPUT (default auto: pixels for .ndjson and sketch-rnn "
                        ".npz, model units for samples.npz and .json)")
    parser.add_argument("-n", "--num", dest="n", type=int, default=8,
                        help="number of completions (default 8)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    add_temperature_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--max-len", type=int, default=None,
                        help="most rows per completed drawing, prefix included (default: the "
                        "model's max_seq_len)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip malformed lines of an .ndjson INPUT instead of stopping")
    parser.add_argument("--size", type=int, default=256, help="PNG/SVG side in pixels")
    parser.add_argument("--grid", type=int, default=64, help="completions in grid.png")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def check_numbers(args: argparse.Namespace) -> None:
    """One-line errors for counts and fractions out of range."""
    from sketchrl.errors import ConfigError

    if args.n < 1:
        raise ConfigError(f"-n {args.n}: use a positive number of completions")
    if args.index < 0:
        raise ConfigError(f"--index {args.index}: use a drawing number >= 0")
    if not 0 < args.prefix_fraction <= 1:
        raise ConfigError(f"--prefix-fraction {args.prefix_fraction}: use a value in (0, 1]")
    if args.size < 16 or args.grid < 0:
        raise ConfigError("--size must be >= 16 and --grid >= 0")


def write_outputs(out: Path, completion, size: int, grid: int) -> None:
    """NNNN.png + NNNN.svg per completion (two colours), grid.png and samples.npz."""
    from sketchrl.data import save_samples
    from sketchrl.render import RenderOptions, save_grid, save_image
    from sketchrl.render.two_colour import render_two_colour, two_colour_svg

    options = RenderOptions(size=size, channels=3)
    out.mkdir(parents=True, exist_ok=True)
    sketches, starts = completion.sketches, completion.starts
    images = render_two_colour(sketches, starts, options)
    digits = max(4, len(str(len(sketches) - 1)))
    for index, (sketch, start, image) in enumerate(zip(sketches, starts, images, strict=True)):
        stem = out / f"{index:0{digits}d}"
        save_image(image, stem.with_suffix(".png"))
        svg = two_colour_svg(sketch, start, size, options.line_width, options.margin)
        stem.with_suffix(".svg").write_text(svg, encoding="utf-8")
    if grid:
        save_grid(images[:grid], out / "grid.png")
    save_samples(out / "samples.npz", sketches)


def run(args: argparse.Namespace) -> int:
    """Check the output folder, read the drawing, load the model, complete, write the files."""
    from sketchrl.data.common import writable_directory
    from sketchrl.models import load_model
    from sketchrl.models.completion import complete_sketch, load_drawing, prepare_prefix

    check_numbers(args)
    writable_directory(args.out)
    temperature = temperature_from_args(args)
    drawing, units = load_drawing(args.prefix, args.index, skip_bad=args.skip_bad)
    units = units if args.prefix_units == "auto" else args.prefix_units
    model = load_model(args.model)
    prefix = prepare_prefix(drawing, model, units=units, fraction=args.prefix_fraction)
    started = time.perf_counter()
    completion = complete_sketch(model, prefix, args.n, temperature=temperature, seed=args.seed,
                                 max_len=args.max_len, progress=not args.quiet)
    seconds = time.perf_counter() - started
    write_outputs(args.out, completion, args.size, args.grid)
    added = sum(len(rows) for rows in completion.continuations()) / args.n
    vae = ", a prior z each" if model.config.conditional else ""
    print(f"{args.out}: {args.n} completions of drawing {args.index} of {args.prefix} "
          f"({len(prefix)} given rows, {added:.1f} added on average{vae}) by "
          f"{model.config.name} in {seconds:.1f} s (temperature {temperature.describe()}, "
          f"seed {args.seed})")
    return 0
