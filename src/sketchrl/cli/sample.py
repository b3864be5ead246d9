"""`sketchrl sample`: draw sketches from a model; write a grid, SVGs and samples.npz."""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sketchrl.cli.render import positive_int
from sketchrl.errors import ConfigError

if TYPE_CHECKING:
    from sketchrl.models.mixture import Temperature

#: Most sketches one run makes (-n); more would take hours and write as many SVG files.
MAX_SKETCHES = 100_000
#: Written last into --out: the settings and the files this command wrote there.
MANIFEST = "sample.json"
#: Names the command writes itself; only such files are ever removed from --out.
OWN_FILES = re.compile(r"\d{4,}\.svg|grid\.png")
#: Kept in step with sketchrl.models.mixture (TEMPERATURE_SEMANTICS, SIGMA_SCALES); the
#: parser cannot import that module without torch. tests/test_cli_sample.py checks them.
TEMPERATURE_SEMANTICS = ("paper", "magenta-js")
SIGMA_SCALES = ("sqrt", "linear")

EPILOG = f"""\
MODEL is one of:
  sketchrnn:<category>     a pretrained sketch-rnn-js decoder (e.g. sketchrnn:bird), read from
                           SKETCHRL_ASSET_URL (a mirror) or downloaded once into the cache
  PATH.json                a sketch-rnn-js JSON model file
  DIR                      a directory with model.safetensors + model_config.json
                           (e.g. a `sketchrl train` or `sketchrl pretrain` output directory)

temperature semantics (--temperature-semantics):
  paper        the SketchRNN paper and sketchrl's default (training uses it too): pen and
               mixture-weight logits / T, sigma * sqrt(T)
  magenta-js   what @magenta/sketch (sketch-rnn-js) does by default: logits / (0.5 + 0.5 T),
               sigma * sqrt(T); at T = 0.25 the logits are divided by 0.625, not 0.25
  --pen-temperature P divides the logits by P under either semantics; --sigma-scale linear
  multiplies sigma by T instead (Magenta's TF sampler).

output (in --out):
  grid.png                 the first --grid sketches, rendered
  NNNN.svg                 one SVG per sketch
  samples.npz              strokes (all stroke-3 rows, float32, model units) + lengths
  {MANIFEST}              the settings (temperature semantics included) and files written
A rerun into the same --out removes the NNNN.svg / grid.png files an earlier run wrote there
(listed in its {MANIFEST}) that this run does not write again; nothing else is removed.
-n is at most {MAX_SKETCHES:,} a run: for more, run again with another --seed and --out.

examples:
  sketchrl sample --model sketchrnn:bird -n 64 --out samples/bird
  sketchrl sample --model runs/ssim -n 2000 --temperature 0.5 --seed 1 --out samples/ssim
  sketchrl sample --model sketchrnn:cat --temperature 0.25 --temperature-semantics magenta-js \\
      --out samples/cat-like-the-web-demo
"""


def sketch_count(text: str) -> int:
    """argparse type: a number of sketches in 1..MAX_SKETCHES."""
    value = positive_int(text)
    if value > MAX_SKETCHES:
        raise argparse.ArgumentTypeError(
            f"{value:,} sketches is more than the {MAX_SKETCHES:,} one run makes; run several "
            "times with different --seed (and --out) instead"
        )
    return value


def seed_value(text: str) -> int:
    """argparse type: a seed torch and numpy both accept (0 <= seed < 2**63)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{text} is not a seed in 0 .. 2**63 - 1")
    return value


def add_temperature_options(parser: argparse.ArgumentParser) -> None:
    """--temperature, --pen-temperature, --temperature-semantics and --sigma-scale (all None
    unless given: see :func:`temperature_from_args`)."""
    parser.add_argument("--temperature", type=float, default=None, metavar="T",
                        help="sampling temperature T > 0 (default 0.5)")
    parser.add_argument("--pen-temperature", type=float, default=None, metavar="P",
                        help="divisor of the pen and mixture-weight logits (default: derived "
                        "from T by --temperature-semantics)")
    parser.add_argument("--temperature-semantics", choices=TEMPERATURE_SEMANTICS, default=None,
                        help="paper (default): logits / T, sigma * sqrt(T), as the SketchRNN "
                        "paper; magenta-js: logits / (0.5 + 0.5 T), sigma * sqrt(T), as "
                        "@magenta/sketch does by default")
    parser.add_argument("--sigma-scale", choices=SIGMA_SCALES, default=None,
                        help="sigma at temperature T: sqrt = sigma*sqrt(T) (paper, default), "
                        "linear = sigma*T (Magenta's TF sampler)")


def temperature_options_given(args: argparse.Namespace) -> list[str]:
    """The temperature options given on the command line."""
    names = ("temperature", "pen_temperature", "temperature_semantics", "sigma_scale")
    return ["--" + name.replace("_", "-") for name in names if getattr(args, name) is not None]


def temperature_from_args(args: argparse.Namespace) -> Temperature:
    """The :class:`Temperature` the options ask for (ConfigError on a bad value)."""
    from sketchrl.models.mixture import Temperature

    value = 0.5 if args.temperature is None else args.temperature
    try:
        return Temperature(value, args.pen_temperature, args.temperature_semantics or "paper",
                           args.sigma_scale or "sqrt")
    except ConfigError as error:
        raise ConfigError(f"{error} (--temperature / --pen-temperature)") from None


def temperature_record(temperature: Temperature) -> dict[str, Any]:
    """The temperature fields written into the outputs."""
    return {"temperature": temperature.value, "pen_temperature": temperature.pen,
            "temperature_semantics": temperature.semantics,
            "logit_divisor": temperature.logit_divisor, "sigma_scale": temperature.sigma_scale}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sample`` subcommand."""
    parser = subparsers.add_parser(
        "sample",
        help="sample sketches from a model (grid.png, SVGs, samples.npz)",
        description=(
            "Sample sketches from a SketchRNN (batched, seeded) and write a grid image, one "
            "SVG per sketch and samples.npz. Temperature follows the SketchRNN paper unless "
            "told otherwise: pi and pen logits / T, sigma * sqrt(T)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="sketchrnn:<category>, a sketch-rnn-js .json, or a model directory")
    parser.add_argument("-n", "--num", dest="n", type=sketch_count, default=64,
                        help=f"number of sketches, at most {MAX_SKETCHES:,} (default 64)")
    add_temperature_options(parser)
    parser.add_argument("--seed", type=seed_value, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output directory (created; see below for what a rerun replaces)")
    parser.add_argument("--max-len", type=positive_int, default=None,
                        help="most steps per sketch (default: the model's max_seq_len)")
    parser.add_argument("--batch-size", type=positive_int, default=500,
                        help="sketches sampled together per batch (default 500)")
    parser.add_argument("--grid", type=int, default=64,
                        help="sketches shown in grid.png (default 64)")
    parser.add_argument("--device", default="auto",
                        help="torch device, e.g. cpu or cuda (default auto: CUDA if available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice; 1 is often "
                        "fastest on a busy machine)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (and no ETA)")
    parser.set_defaults(func=run)


def check_threads(threads: int | None) -> None:
    """A --threads option's value: None (torch's choice) or a positive count."""
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads {threads}: use a positive count")


def run(args: argparse.Namespace) -> int:
    """Check the options and --out, load the model, sample, and write the files."""
    if args.grid < 0:
        raise ConfigError(f"--grid {args.grid}: use 0 (no grid) or a positive count")
    check_threads(args.threads)
    temperature = temperature_from_args(args)
    from sketchrl.data.common import writable_directory

    writable_directory(args.out)
    import torch

    from sketchrl.devices import resolve_device
    from sketchrl.models import load_model, sample_sketches

    device = resolve_device(args.device, default="auto")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, device=device)
    started = time.perf_counter()
    sketches = sample_sketches(
        model, args.n, temperature=temperature, max_len=args.max_len,
        batch_size=args.batch_size, generator=torch.Generator().manual_seed(args.seed),
        progress=not args.quiet,
    )
    seconds = time.perf_counter() - started
    settings = {"model": args.model, "n": len(sketches), "seed": args.seed,
                "max_len": args.max_len, **temperature_record(temperature)}
    write_outputs(args.out, sketches, settings, grid=args.grid)
    print(f"{args.out}: {len(sketches)} sketches from {model.config.name} in {seconds:.1f} s "
          f"(temperature {temperature.describe()}, seed {args.seed})")
    return 0


def write_outputs(out: Path, sketches: list, settings: dict[str, Any], *, grid: int) -> None:
    """samples.npz, NNNN.svg, grid.png, then the manifest; stale files of an earlier run go."""
    from sketchrl.data import save_samples
    from sketchrl.render import RenderOptions, render, save_grid, sketch_to_svg

    previous = _manifest_files(out / MANIFEST)
    out.mkdir(parents=True, exist_ok=True)
    save_samples(out / "samples.npz", sketches)
    digits = max(4, len(str(len(sketches) - 1)))
    written = []
    for index, sketch in enumerate(sketches):
        name = f"{index:0{digits}d}.svg"
        (out / name).write_text(sketch_to_svg(sketch), encoding="utf-8")
        written.append(name)
    if grid:
        options = RenderOptions(size=128, line_width=1.5, margin=0.08)
        save_grid(render(sketches[:grid], options), out / "grid.png")
        written.append("grid.png")
    for name in sorted(set(previous) - set(written)):
        (out / name).unlink(missing_ok=True)
    manifest = {**settings, "files": written}
    temporary = out / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, out / MANIFEST)


def _manifest_files(path: Path) -> list[str]:
    """Files an earlier run listed in its manifest (only names this command writes)."""
    try:
        files = json.loads(path.read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [name for name in files if isinstance(name, str) and OWN_FILES.fullmatch(name)]
