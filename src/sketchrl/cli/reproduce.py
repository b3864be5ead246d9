"""`sketchrl reproduce`: run a whole study (tasks x methods x seeds) locally or on Ray."""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchrl.errors import ConfigError

PRESET_NAMES = ("offline", "offline-full", "offline-paper", "paper")

EPILOG = """\
presets:
  offline        the main job (21-30 min on a 2-core CPU with 2 workers): the real Magenta
                 bird decoder on two tasks, recognize (reward P(bird)) and steer (reward
                 P(owl)), with the paper's REINFORCE, GRPO, PPO and a soup of each seed's
                 GRPO and PPO runs, 3 seeds, 2,000 episodes per run; judge, FID, KID,
                 precision/recall; Pareto plot.
  offline-full   offline at the paper's budget (5,000 episodes per run) with 5 seeds, plus
                 GRPO's KL weight swept over 0, each task's own and 0.2 (one seed each);
                 about 2 hours on a 2-core CPU.
  offline-paper  the paper's Table 1/2 offline: SSIM and classifier rewards, sparse and dense,
                 and the discount ablation, on the bird decoder.
  paper          the paper as published: owl model, CLIP ViT-B/32 rewards, n = 2,000 / 500.
                 Needs the owl model (sketchrnn:owl) and CLIP weights (downloaded by
                 open_clip, or --clip-weights FILE).

Every step (a classifier, a fine-tuning run, an evaluation) writes into its own folder under
--out and is skipped when done; re-running the same command finishes an interrupted study.
After a preset or option changes, --update resumes the study: it keeps what still matches,
redoes the evaluations whose model or settings changed, and stops at finished runs and soups
made with other settings, naming them (delete those folders to make them again).
The same command with the same seeds on the same machine gives identical tables; results
depend on --threads (fixed per step and recorded in environment.json).

executors:
  --executor local [--workers N]   steps in this process or in N processes (default: cores /
                                   --threads), never more threads than cores
  --executor ray [--address ADDR]  steps as Ray tasks: a local Ray instance, or the cluster at
                                   ADDR; --out must be a path every node reaches (shared
                                   filesystem); needs pip install "sketchrl[ray]"

examples:
  sketchrl reproduce --preset offline --out runs/offline
  sketchrl reproduce --preset offline --quick --seeds 2 --out /tmp/smoke
  sketchrl reproduce --preset offline --executor ray --address 10.0.0.1:6379 --out /shared/study
  sketchrl reproduce --preset paper --clip-weights ViT-B-32-openai.bin --out runs/paper
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="run a whole study (offline tasks, or the paper's) end to end",
        description=(
            "Train the reward and evaluation classifiers, fine-tune every method of the preset "
            "with every seed (a soup method mixes two methods' runs instead), evaluate the "
            "pretrained model and each run, and write tables.md "
            "(and one CSV per table with every seed's values), samples.png, reward_curves.png, "
            "pareto.png and report.html."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", choices=PRESET_NAMES, default="offline",
                        help="which study (default: offline)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder of the study (with Ray: a path every node reaches)")
    parser.add_argument("--quick", action="store_true",
                        help="toy sizes: the same pipeline in a few minutes (smoke test)")
    parser.add_argument("--seeds", type=int, help="training seeds per method (preset default)")
    parser.add_argument("--episodes", type=int, help="episodes per fine-tuning run")
    parser.add_argument("--n", dest="n_eval", type=int, help="samples per evaluation")
    parser.add_argument("--n-sweep", type=int, help="samples per evaluation of a sweep")
    parser.add_argument("--model", help="pretrained model to fine-tune (name or folder)")
    parser.add_argument("--clip-weights", help="local open_clip weights file for CLIP")
    parser.add_argument("--executor", default="local",
                        help="local (default) or ray: where the steps run")
    parser.add_argument("--workers", type=int,
                        help="local executor: steps run in parallel (default: cores / threads)")
    parser.add_argument("--address", help="ray executor: address of an existing Ray cluster "
                        "(default: start a local Ray instance)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per step (default 1; recorded: results depend on it)")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16",
                        help="arithmetic of the FID Inception network (default bf16)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--update", action="store_true",
                        help="resume a study in --out whose preset or options changed since "
                        "(see below)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sketchrl.reproduce import Study, get_preset

    if args.seeds is not None and args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: use at least 1")
    if args.workers is not None and args.executor != "local":
        raise ConfigError("--workers is an option of the local executor (Ray places the steps)")
    if args.address is not None and args.executor != "ray":
        raise ConfigError("--address is an option of the ray executor: add --executor ray")
    preset = get_preset(
        args.preset, quick=args.quick, training={"episodes": args.episodes},
        n_eval=args.n_eval, n_sweep=args.n_sweep, model=args.model, seeds=args.seeds,
    )
    study = Study(preset, args.out, device=args.device, progress=not args.quiet,
                  clip_weights=args.clip_weights, executor=args.executor, workers=args.workers,
                  address=args.address, threads=args.threads, precision=args.precision,
                  update=args.update)
    report = study.run()
    print((report.parent / "tables.md").read_text())
    print(f"report: {report}")
    return 0
