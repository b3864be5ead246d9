"""Freed memory kept for reuse (``sketchrl.memory``) against glibc's own settings, over many
batches of one training process each.

    python benchmarks/bench_memory.py [--algorithm grpo] [--batches 60] [--rounds 1]

Runs ``--batches`` batches of the paper's REINFORCE or of GRPO (4 groups of 16, 2 epochs x 2
minibatches, kl_beta 0.05; sparse SSIM) in a fresh process with ``SKETCHRL_MALLOC=0`` and in one
without, in turns, and prints for each the median batch time (after 3 warm-up batches), the
minor page faults per batch and the resident memory after the first and the last batch. Figures
only, no assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

SETTINGS = {"reinforce": {},
            "grpo": {"algorithm": "grpo", "batch_size": 64, "group_size": 16, "epochs": 2,
                     "minibatches": 2, "kl_beta": 0.05}}


def resident_mb() -> int:
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) // 1024


def child(algorithm: str, batches: int) -> None:
    """One process: the batches, then a JSON line of its figures."""
    import torch
    from bench_rl import SSIM, make_trainer, reinforce_batch

    torch.set_num_threads(2)
    trainer = make_trainer("sketchrnn:bird", "ssim", SSIM, **SETTINGS[algorithm])
    seconds, faults, resident = [], [], []
    for k in range(batches):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        started = time.perf_counter()
        reinforce_batch(trainer, 100 + k, reference=algorithm == "grpo")
        seconds.append(time.perf_counter() - started)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        resident.append(resident_mb())
    print(json.dumps({"seconds": statistics.median(seconds[3:]),
                      "faults": statistics.median(faults[3:]), "first_mb": resident[0],
                      "last_mb": resident[-1]}))


def run(algorithm: str, batches: int, kept: bool) -> dict:
    env = dict(os.environ, SKETCHRL_MALLOC="1" if kept else "0")
    out = subprocess.run([sys.executable, __file__, "--child", "--algorithm", algorithm,
                          "--batches", str(batches)], env=env, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithm", choices=tuple(SETTINGS), default="grpo")
    parser.add_argument("--batches", type=int, default=60, help="batches per process")
    parser.add_argument("--rounds", type=int, default=1, help="pairs of processes")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.algorithm, args.batches)
        return
    print(f"{args.algorithm}, {args.batches} batches per process, 2 torch threads")
    for _ in range(args.rounds):
        without, kept = run(args.algorithm, args.batches, False), run(args.algorithm,
                                                                        args.batches, True)
        for name, figures in (("glibc's settings", without), ("freed memory kept", kept)):
            print(f"  {name:<18} median batch {figures['seconds'] * 1e3:7.1f} ms, "
                  f"{figures['faults']:7.0f} page faults per batch, resident "
                  f"{figures['first_mb']} -> {figures['last_mb']} MB")
        print(f"  kept / glibc's: {without['seconds'] / kept['seconds']:.2f}x faster")


if __name__ == "__main__":
    main()
