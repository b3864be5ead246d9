"""`sketchrl fetch`: download assets into the cache and print their local paths."""

from __future__ import annotations

import argparse

from sketchrl import assets

DESCRIPTION = """\
Fetch sketch-rnn models and Quick, Draw! data by name into the local cache and print the
local path of each (one per line, in the order given).

Asset names:
  sketchrnn:<category>                pretrained sketch-rnn-js decoder (.gen.json from
                                      quickdraw-models/sketchRNN/large_models/, else models/)
  quickdraw:<category>/numpy_bitmap   28x28 bitmaps (.npy)
  quickdraw:<category>/simplified     simplified strokes (.ndjson)
  quickdraw:<category>/raw            raw strokes with timing (.ndjson)
  quickdraw:<category>/sketchrnn      sketch-rnn stroke-3 train/valid/test data (.npz)
A category may be written with spaces or underscores ("palm tree" or palm_tree).
"""

EPILOG = f"""\
Environment:
  {assets.ASSET_URL_ENV}   where assets come from: an http(s) URL or a local directory
                       (also file://) laid out like the official server; a local
                       directory is read in place (nothing copied).
                       Default: {assets.OFFICIAL_BASE}
  {assets.HOME_ENV}        sketchrl's data folder; downloads go to $SKETCHRL_HOME/assets/
                       (default: the user's cache dir, e.g. ~/.cache/sketchrl).

Examples:
  sketchrl fetch sketchrnn:bird quickdraw:bird/numpy_bitmap
  sketchrl fetch "quickdraw:palm tree/simplified" --quiet
  sketchrl fetch sketchrnn:bird --asset-url http://127.0.0.1:8000/
  {assets.ASSET_URL_ENV}=/data/mirror sketchrl fetch sketchrnn:bird
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fetch`` subcommand."""
    parser = subparsers.add_parser(
        "fetch",
        help="download models and data by name into the cache and print their paths",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help="asset name, e.g. sketchrnn:bird or quickdraw:bird/numpy_bitmap",
    )
    parser.add_argument(
        "--asset-url",
        metavar="URL_OR_DIR",
        default=None,
        help=f"http(s) URL or local directory (or file:// URL) to read assets from; "
        f"overrides {assets.ASSET_URL_ENV}",
    )
    parser.add_argument("--quiet", action="store_true", help="no download progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resolve every name (all checked before any download) and print its local path."""
    for name in args.names:
        assets.parse_asset_name(name)
    for name in args.names:
        path = assets.resolve(name, base=args.asset_url, progress=not args.quiet)
        print(path, flush=True)
    return 0
