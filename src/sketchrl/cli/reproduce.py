"""`sketchrl reproduce`: train and evaluate every method of a preset, write tables and report."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
presets:
  offline  the real Magenta bird decoder; SSIM and Quick, Draw! classifier rewards (sparse,
           dense, discount ablation); FID / precision / recall vs real Quick, Draw! birds;
           an independent ResNet18. Runs here without network in about 30 minutes.
  paper    the paper as published: owl model, CLIP ViT-B/32 rewards, n = 2,000 / 500. Needs
           the owl model (sketchrnn:owl) and CLIP weights (downloaded by open_clip, or
           --clip-weights FILE).

Re-running the same command skips finished steps and resumes an interrupted run.

examples:
  sketchrl reproduce --preset offline --out runs/offline
  sketchrl reproduce --preset offline --quick --out /tmp/smoke
  sketchrl reproduce --preset paper --clip-weights ViT-B-32-openai.bin --out runs/paper
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="run the paper's study (or the offline one) end to end",
        description=(
            "Train the reward and evaluation classifiers, fine-tune every method of the preset, "
            "evaluate the baseline and each method, run the discount ablation, and write "
            "table1.md, table2.md (and CSV), samples.png, reward_curves.png and report.html."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", choices=("offline", "paper"), default="offline",
                        help="which study (default: offline)")
    parser.add_argument("--out", type=Path, required=True, help="output folder of the study")
    parser.add_argument("--quick", action="store_true",
                        help="toy sizes: the same pipeline in a few minutes (smoke test)")
    parser.add_argument("--episodes", type=int, help="episodes per fine-tuning run")
    parser.add_argument("--n", dest="n_eval", type=int, help="samples per Table 1 evaluation")
    parser.add_argument("--n-ablation", type=int, help="samples per Table 2 evaluation")
    parser.add_argument("--model", help="pretrained model to fine-tune (name or folder)")
    parser.add_argument("--clip-weights", help="local open_clip weights file for CLIP")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sketchrl.reproduce import get_preset, reproduce

    preset = get_preset(
        args.preset, quick=args.quick, training={"episodes": args.episodes},
        n_eval=args.n_eval, n_ablation=args.n_ablation, model=args.model,
    )
    report = reproduce(preset, args.out, device=args.device, progress=not args.quiet,
                       clip_weights=args.clip_weights)
    print((report.parent / "table1.md").read_text())
    print((report.parent / "table2.md").read_text())
    print(f"report: {report}")
    return 0
