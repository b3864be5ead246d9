"""`sketchrl sample`: draw sketches from a model; write a grid, SVGs and samples.npz."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from sketchrl.data import save_samples
from sketchrl.devices import resolve_device
from sketchrl.errors import ConfigError
from sketchrl.models import load_model, sample_sketches
from sketchrl.models.mixture import SIGMA_SCALES
from sketchrl.render import RenderOptions, render, save_grid, sketch_to_svg

logger = logging.getLogger(__name__)

GRID_OPTIONS = RenderOptions(size=128, line_width=1.5, margin=0.08)

EPILOG = """\
MODEL is one of:
  sketchrnn:<category>     a pretrained sketch-rnn-js decoder (e.g. sketchrnn:bird), read from
                           SKETCHRL_ASSET_URL (a mirror) or downloaded once into the cache
  PATH.json                a sketch-rnn-js JSON model file
  DIR                      a directory with model.safetensors + model_config.json
                           (e.g. a `sketchrl train` or `sketchrl pretrain` output directory)

output (in --out):
  grid.png                 the first --grid sketches, rendered
  NNNN.svg                 one SVG per sketch
  samples.npz              strokes (all stroke-3 rows, float32, model units) + lengths

examples:
  sketchrl sample --model sketchrnn:bird -n 64 --out samples/bird
  sketchrl sample --model runs/ssim -n 2000 --temperature 0.5 --seed 1 --out samples/ssim
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sample`` subcommand."""
    parser = subparsers.add_parser(
        "sample",
        help="sample sketches from a model (grid.png, SVGs, samples.npz)",
        description=(
            "Sample sketches from a SketchRNN (batched, seeded) and write a grid image, one "
            "SVG per sketch and samples.npz. Temperature follows the SketchRNN paper: pi and "
            "pen logits / T, sigma * sqrt(T)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="sketchrnn:<category>, a sketch-rnn-js .json, or a model directory")
    parser.add_argument("-n", "--num", dest="n", type=int, default=64,
                        help="number of sketches (default 64)")
    parser.add_argument("--temperature", type=float, default=0.5,
                        help="sampling temperature tau > 0 (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output directory (created; same-named files are overwritten)")
    parser.add_argument("--max-len", type=int, default=None,
                        help="most steps per sketch (default: the model's max_seq_len)")
    parser.add_argument("--batch-size", type=int, default=500,
                        help="sketches sampled together per batch (default 500)")
    parser.add_argument("--sigma-scale", choices=sorted(SIGMA_SCALES), default="sqrt",
                        help="sigma at temperature T: sqrt = sigma*sqrt(T) (paper, default), "
                        "linear = sigma*T (Magenta's TF sampler)")
    parser.add_argument("--grid", type=int, default=64,
                        help="sketches shown in grid.png (default 64)")
    parser.add_argument("--device", default="auto",
                        help="torch device, e.g. cpu or cuda (default auto: CUDA if available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice; 1 is often "
                        "fastest on a busy machine)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the model, sample, and write grid.png, NNNN.svg and samples.npz."""
    if args.grid < 0:
        raise ConfigError(f"--grid {args.grid}: use 0 (no grid) or a positive count")
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads {args.threads}: use a positive count")
        torch.set_num_threads(args.threads)
    model = load_model(args.model, device=resolve_device(args.device))
    generator = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    sketches = sample_sketches(
        model, args.n, temperature=args.temperature, max_len=args.max_len,
        batch_size=args.batch_size, generator=generator, sigma_scale=args.sigma_scale,
        progress=not args.quiet,
    )
    seconds = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    save_samples(args.out / "samples.npz", sketches)
    digits = max(4, len(str(len(sketches) - 1)))
    for index, sketch in enumerate(sketches):
        (args.out / f"{index:0{digits}d}.svg").write_text(sketch_to_svg(sketch), encoding="utf-8")
    if args.grid:
        save_grid(render(sketches[: args.grid], GRID_OPTIONS), args.out / "grid.png")
    print(f"{args.out}: {len(sketches)} sketches from {model.config.name} in {seconds:.1f} s "
          f"(temperature {args.temperature}, seed {args.seed})")
    return 0
