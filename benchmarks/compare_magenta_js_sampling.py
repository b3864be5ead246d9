"""Do sketchrl's magenta-js temperature and @magenta/sketch sample the same distribution?

    python benchmarks/compare_magenta_js_sampling.py [--model sketchrnn:bird] [-n 2000]
        [--temperature 0.65] [--max-len 250] [--seed 0] [--jobs 1]

Exports MODEL for @magenta/sketch, then samples N sketches three ways and prints the mean
length (rows per sketch) of each with its standard error, and each one's relative difference
to @magenta/sketch's:
- ``@magenta/sketch``: its default sample loop under Node (tests/js/magenta_sample.js: zeroState,
  update(zeroInput), then getPDF(state, T) / sample / update until the end row or --max-len
  rows), from the exported file;
- ``sketchrl sample --temperature-semantics magenta-js`` on the same file (the target: the
  mean within 3%);
- ``sketchrl sample --temperature-semantics paper`` (the SketchRNN paper's temperature, for
  contrast: sharper pen logits at T < 1).
Needs Node.js and ``npm ci`` in tests/js. About 5 ms per sampled row under Node (1,000 bird
sketches take about 10 minutes on one core); ``--jobs`` splits the Node side across processes.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sketchrl.data import load_samples
from sketchrl.models import load_model
from sketchrl.models.sketch_rnn_js import export_magenta_js

JS_DIR = Path(__file__).resolve().parents[1] / "tests" / "js"


def magenta_js_lengths(model_file: Path, n: int, temperature: float, max_len: int, seed: int,
                       jobs: int, work: Path) -> np.ndarray:
    """Rows per sketch sampled by @magenta/sketch, ``jobs`` Node processes in parallel."""
    if not (JS_DIR / "node_modules" / "@magenta" / "sketch").is_dir():
        sys.exit(f"{JS_DIR}/node_modules is missing: run `npm ci` in tests/js")
    counts = [n // jobs + (job < n % jobs) for job in range(jobs)]
    processes = []
    for job, count in enumerate(counts):
        request, answer = work / f"js{job}.in.json", work / f"js{job}.out.json"
        request.write_text(json.dumps({"model": str(model_file), "n": count, "seed": seed * 1000
                                       + job, "temperature": temperature, "max_len": max_len}))
        command = ["node", str(JS_DIR / "magenta_sample.js"), str(request), str(answer)]
        processes.append((subprocess.Popen(command, cwd=JS_DIR, stdout=subprocess.DEVNULL),
                          answer))
    lengths = []
    for process, answer in processes:
        if process.wait() != 0:
            sys.exit("the Node sampler failed (see its messages above)")
        lengths += json.loads(answer.read_text())["lengths"]
    return np.asarray(lengths, dtype=np.float64)


def sketchrl_lengths(model_file: Path, n: int, temperature: float, semantics: str, max_len: int,
                     seed: int, work: Path) -> np.ndarray:
    """Rows per sketch written by ``sketchrl sample`` (the command, run as a subprocess)."""
    out = work / f"sketchrl-{semantics}"
    command = [sys.executable, "-m", "sketchrl.cli.main", "sample", "--model", str(model_file),
               "-n", str(n), "--temperature", str(temperature), "--temperature-semantics",
               semantics, "--max-len", str(max_len), "--seed", str(seed), "--grid", "0",
               "--quiet", "--out", str(out)]
    print("$", " ".join(command[2:]).replace("sketchrl.cli.main", "sketchrl"), flush=True)
    subprocess.run(command, check=True)
    return np.asarray([len(s) for s in load_samples(out / "samples.npz")], dtype=np.float64)


def describe(name: str, lengths: np.ndarray, reference: np.ndarray | None, max_len: int) -> str:
    mean, se = lengths.mean(), lengths.std(ddof=1) / math.sqrt(len(lengths))
    line = (f"{name:<52} n={len(lengths):<6} mean rows {mean:7.2f} +- {se:.2f} (SE)   "
            f"at the cap {np.mean(lengths >= max_len):6.1%}")
    if reference is not None:
        ref, ref_se = reference.mean(), reference.std(ddof=1) / math.sqrt(len(reference))
        relative = mean / ref - 1.0
        relative_se = math.sqrt((se / ref) ** 2 + (mean * ref_se / ref**2) ** 2)
        line += f"   vs @magenta/sketch {relative:+.2%} +- {relative_se:.2%} (SE)"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sketchrnn:bird")
    parser.add_argument("-n", type=int, default=2000, help="sketches per sampler")
    parser.add_argument("--temperature", type=float, default=0.65,
                        help="T (default 0.65, getPDF's default)")
    parser.add_argument("--max-len", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="Node processes (default 1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model_file = work / "model.gen.json"
        export_magenta_js(load_model(args.model), model_file)
        started = time.perf_counter()
        reference = magenta_js_lengths(model_file, args.n, args.temperature, args.max_len,
                                       args.seed, args.jobs, work)
        print(f"@magenta/sketch: {args.n} sketches in {time.perf_counter() - started:.0f} s")
        rows = [(f"@magenta/sketch 0.2.0 getPDF(T={args.temperature:g})", reference, None)]
        for semantics in ("magenta-js", "paper"):
            lengths = sketchrl_lengths(model_file, args.n, args.temperature, semantics,
                                       args.max_len, args.seed, work)
            rows.append((f"sketchrl sample --temperature-semantics {semantics}", lengths,
                         reference))
    print(f"\n{args.model}, T = {args.temperature:g}, at most {args.max_len} rows")
    for name, lengths, compared in rows:
        print(describe(name, lengths, compared, args.max_len))


if __name__ == "__main__":
    main()
