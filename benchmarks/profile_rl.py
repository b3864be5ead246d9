"""Where the time of a REINFORCE batch goes: its matrix products, in place, against the roofline.

    python benchmarks/profile_rl.py [--batches 5] [--threads 2] [--model sketchrnn:bird]

Runs the paper's REINFORCE batch of ``bench_rl.py`` (16 episodes, sparse SSIM) under
``torch.profiler`` and splits each stage's CPU time into the matrix products (``aten::mm``,
``addmm``, ``addmm_``) and everything else. The products' FLOPs (from their shapes) over their
time give the rate they reach inside the batch, next to the rate of the same shapes repeated on
their own, which the roofline uses. The floor of this design is a batch that did nothing but its
matrix products at their in-batch rates, plus render, reward and optimiser: how close to the
roofline removing every other cost could bring it. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from bench_rl import SSIM, make_trainer, prepare, reinforce_batch
from roofline import best_rates, measure_rates, roofline_seconds
from torch.profiler import ProfilerActivity, profile

MATRIX_OPS = {"aten::mm": (0, 1), "aten::addmm": (1, 2), "aten::addmm_": (1, 2)}
STAGES = ("sampling", "render", "reward", "loss", "backward", "optimiser")


def product_flops(name: str, shapes: list) -> int:
    """FLOPs of one matrix product from its recorded input shapes."""
    left, right = (shapes[k] for k in MATRIX_OPS[name])
    return 2 * left[0] * left[1] * right[1]


def stage_of(event) -> str | None:
    """The bench_rl stage (its ``record_function`` range) an op ran in, if any."""
    parent = event.cpu_parent
    while parent is not None and parent.name not in STAGES:
        parent = parent.cpu_parent
    return None if parent is None else parent.name


def split_batch(trainer, batch_index: int) -> tuple[dict, int]:
    """One profiled batch: per stage, wall seconds, product seconds and product FLOPs."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        stages, steps = reinforce_batch(trainer, batch_index)
    split = {name: {"wall": seconds, "products": 0.0, "flops": 0}
             for name, seconds in stages.seconds.items()}
    for event in prof.events():
        if event.name in MATRIX_OPS and (stage := stage_of(event)) in split:
            split[stage]["products"] += event.self_cpu_time_total / 1e6
            split[stage]["flops"] += product_flops(event.name, event.input_shapes)
    return split, steps


def report(batches: list[tuple[dict, int]], roofs: list[float]) -> None:
    def median(stage: str, key: str) -> float:
        return statistics.median(split[stage][key] for split, _ in batches)

    print(f"{'stage':<12} {'wall ms':>8} {'products ms':>12} {'GFLOP/s':>8} {'other ms':>9}")
    for stage in batches[0][0]:
        wall, products = median(stage, "wall"), median(stage, "products")
        rate = median(stage, "flops") / products / 1e9 if products else 0.0
        print(f"{stage:<12} {wall * 1e3:8.1f} {products * 1e3:12.1f} "
              f"{rate:8.0f} {(wall - products) * 1e3:9.1f}")
    totals = [sum(s["wall"] for s in split.values()) for split, _ in batches]
    floors = [sum(s["products"] for s in split.values())
              + sum(split[name]["wall"] for name in ("render", "reward", "optimiser"))
              for split, _ in batches]
    print(f"\nbatch {statistics.median(totals) * 1e3:.1f} ms (profiled), roofline "
          f"{statistics.median(roofs) * 1e3:.1f} ms: "
          f"{statistics.median(t / r for t, r in zip(totals, roofs, strict=True)):.2f}x")
    print(f"floor of this design (its products at their in-batch rates + render, reward, "
          f"optimiser) {statistics.median(floors) * 1e3:.1f} ms: "
          f"{statistics.median(f / r for f, r in zip(floors, roofs, strict=True)):.2f}x the "
          "roofline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=5, help="profiled batches")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--model", default="sketchrnn:bird")
    args = parser.parse_args()
    prepare(args.model, args.threads)
    trainer = make_trainer(args.model, "ssim", SSIM)
    hidden, out = trainer.policy.config.dec_rnn_size, trainer.policy.config.output_size
    device = torch.device("cpu")
    for k in range(2):  # warm-up: first-use allocations and the profiler's own start-up
        split_batch(trainer, 90 + k)
    before = measure_rates(16, hidden, out, 160, device)
    batches = [split_batch(trainer, 100 + k) for k in range(args.batches)]
    rates = best_rates(before, measure_rates(16, hidden, out,
                                             int(statistics.median(s for _, s in batches)),
                                             device))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; the same shapes "
          "repeated alone (GFLOP/s): " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()))
    report(batches, [roofline_seconds(16, steps, hidden, out, rates) for _, steps in batches])


if __name__ == "__main__":
    main()
