"""`sketchrl export`: a model as a sketch-rnn-js file for @magenta/sketch, or a live web page."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sketchrl.models import SketchRNN

RL_CONFIG = "rl_config.json"

EPILOG = """\
MODEL is anything `sketchrl sample --model` accepts: sketchrnn:<category>, a sketch-rnn-js
.json file, or a model directory (e.g. a `sketchrl train` output directory).

@magenta/sketch 0.2.0 runs decoder-only models with plain LSTM cells and 20 mixture components;
anything else (a VAE in particular: the library has no encoder and no z input) is refused with
one line. Weights are stored as 16-bit integers (steps of 10/32767 = 3.1e-4): the export counts
the stored values that differ from the starting model's (read from a training directory's
rl_config.json, or --base) and warns on stderr when fewer than 1% do, i.e. when the fine-tune is
(nearly) lost in the rounding.

output:
  --out FILE.json          the model in the sketch-rnn-js format
  --html DIR               DIR/index.html + model.json + sketch.js: a page that draws with the
                           model in the browser ("draw" from scratch, or start a drawing with
                           the mouse and "finish" it); serve DIR over HTTP, e.g.
                           python -m http.server -d DIR 8000, then open http://127.0.0.1:8000/

examples:
  sketchrl export runs/ssim --out bird_ssim.gen.json
  sketchrl export runs/ssim --html page/ && python -m http.server -d page/ 8000
  sketchrl export runs/ssim --html page/ --js node_modules/@magenta/sketch/dist/magentasketch.js
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export",
        help="export a model for @magenta/sketch (sketch-rnn-js JSON) or as a live web page",
        description=(
            "Write MODEL in the sketch-rnn-js JSON format that @magenta/sketch 0.2.0 loads,\n"
            "and/or a static web page that draws with it in the browser. Prints one summary\n"
            "line per output, with how many stored values differ from the starting model."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="the model to export")
    parser.add_argument("--out", type=Path, metavar="FILE.json", help="sketch-rnn-js file")
    parser.add_argument("--html", type=Path, metavar="DIR", help="folder for the live page")
    parser.add_argument("--base", metavar="MODEL",
                        help="the model the fine-tune started from (default: the `model` of "
                        f"MODEL/{RL_CONFIG} for a training directory)")
    parser.add_argument("--js", type=Path, metavar="PATH",
                        help="a local copy of @magenta/sketch's dist/magentasketch.js to copy "
                        "next to the page (default: load it from the jsDelivr CDN)")
    parser.add_argument("--temperature", type=float, default=0.5,
                        help="the page's initial temperature (magenta-js semantics; default 0.5)")
    parser.set_defaults(func=run)


def base_spec(model: str, base: str | None) -> tuple[str | None, bool]:
    """The starting model's spec and whether the user named it (False: from rl_config.json)."""
    if base is not None:
        return base, True
    config = Path(model).expanduser() / RL_CONFIG
    if not config.is_file():
        return None, False
    try:
        spec = json.loads(config.read_text(encoding="utf-8")).get("model")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None, False
    return (str(spec), False) if spec else (None, False)


def check_outputs(args: argparse.Namespace) -> None:
    """One-line errors before any work: no output, a folder in the way, a missing --js."""
    from sketchrl.errors import ConfigError, DataError

    if args.out is None and args.html is None:
        raise ConfigError("nothing to write: give --out FILE.json and/or --html DIR")
    from sketchrl.data.common import writable_directory

    if args.out is not None:
        if args.out.is_dir():
            raise ConfigError(f"--out {args.out} is a folder; give a file name such as model.json")
        writable_directory(args.out.absolute().parent, "--out")
    if args.html is not None:
        writable_directory(args.html, "--html")
    if args.js is not None:
        if args.html is None:
            raise ConfigError("--js only applies to --html DIR")
        if not args.js.is_file():
            raise DataError(f"--js {args.js} does not exist; give the path of "
                            "@magenta/sketch's dist/magentasketch.js")


def load_base(spec: str | None, named: bool, model_spec: str) -> SketchRNN | None:
    """The starting model, or None (with a warning) when rl_config.json's cannot be loaded."""
    from sketchrl.errors import SketchRLError
    from sketchrl.models import load_model

    if spec is None:
        return None
    if named:
        return load_model(spec)
    try:
        return load_model(spec)
    except SketchRLError as error:
        print(f"sketchrl export: warning: cannot load the starting model {spec!r} named in "
              f"{Path(model_spec) / RL_CONFIG} ({error}); pass --base MODEL to check the "
              "rounding", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    """Load the model (and its starting model), write the requested outputs, print summaries."""
    from sketchrl.models import load_model
    from sketchrl.models.sketch_rnn_js import check_magenta_js, export_magenta_js

    check_outputs(args)
    model = load_model(args.model)
    check_magenta_js(model)
    spec, named = base_spec(args.model, args.base)
    base = load_base(spec, named, args.model)
    reports = []
    if args.out is not None:
        report = export_magenta_js(model, args.out, base=base, base_name=str(spec), warn=False)
        reports.append(report)
        print(report.summary())
    if args.html is not None:
        from sketchrl.web import write_live_page

        page = write_live_page(model, args.html, js=args.js, base=base, base_name=str(spec),
                               temperature=args.temperature, warn=False)
        reports.append(page.export)
        print(page.summary())
    rounding = reports[0].rounding
    if rounding is not None and rounding.lost:
        print(f"sketchrl export: warning: {rounding.warning()}", file=sys.stderr)
    return 0
