"""Start-up time of the command line: prints figures (no assertions).

    python benchmarks/bench_cli.py [--runs 7] [--warmup 1]

Times, in fresh subprocesses, ``sketchrl --help`` and ``sketchrl COMMAND --help`` for every
command (what a user waits for before anything happens), next to two yardsticks measured in
the same run: ``python -c pass`` (the interpreter alone) and ``python -c "import torch"`` (what
every command paid before torch was imported lazily). Each figure is the median wall time of
``--runs`` runs after ``--warmup`` uncounted ones; the commands run in turn (A B C A B C ...)
so that a machine whose speed drifts slows them all alike. A load above the core count makes
every figure noisy: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sketchrl.cli.main import SUBCOMMAND_MODULES


def sketchrl_command() -> list[str]:
    """The installed ``sketchrl`` script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("sketchrl")
    if script.is_file():
        return [str(script)]
    found = shutil.which("sketchrl")
    return [found] if found else [sys.executable, "-m", "sketchrl.cli.main"]


def commands() -> dict[str, list[str]]:
    """Label -> argv of everything timed (yardsticks first)."""
    cli = sketchrl_command()
    timed = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "sketchrl --help": [*cli, "--help"],
    }
    for name in SUBCOMMAND_MODULES:
        timed[f"sketchrl {name} --help"] = [*cli, name, "--help"]
    return timed


def time_once(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def measure(timed: dict[str, list[str]], runs: int, warmup: int) -> dict[str, list[float]]:
    """Wall seconds of every command, interleaved round by round."""
    times: dict[str, list[float]] = {label: [] for label in timed}
    for round_index in range(warmup + runs):
        for label, argv in timed.items():
            seconds = time_once(argv)
            if round_index >= warmup:
                times[label].append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="counted runs per command")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted runs first")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} cores, load {load:.2f}; median of {args.runs} runs (min - max)")
    times = measure(commands(), args.runs, args.warmup)
    torch_s = statistics.median(times["python -c 'import torch'"])
    print(f"{'command':<32} {'median s':>9} {'min - max s':>15} {'/ import torch':>15}")
    for label, values in times.items():
        median = statistics.median(values)
        spread = f"{min(values):.3f} - {max(values):.3f}"
        print(f"{label:<32} {median:>9.3f} {spread:>15} {median / torch_s:>15.2f}")


if __name__ == "__main__":
    main()
