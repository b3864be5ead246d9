"""Evaluate generated sketches (FID, precision/recall/density/coverage, independent classifier,
rewards with bootstrap intervals, sketch statistics) and write the results to a directory."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sketchrl.devices import resolve_device
from sketchrl.errors import ConfigError, DataError
from sketchrl.evaluate.bootstrap import CONFIDENCE, N_RESAMPLES, BootstrapMean
from sketchrl.evaluate.fid import FID
from sketchrl.evaluate.inception import FEATURE_DIM, InceptionFeatureExtractor
from sketchrl.evaluate.prdc_metrics import NEAREST_K, PRDC
from sketchrl.evaluate.reference import (
    FeatureExtractor,
    ink_to_paper,
    parse_reference,
    reference_features,
)
from sketchrl.evaluate.report import format_markdown
from sketchrl.evaluate.stats import sketch_statistics

logger = logging.getLogger(__name__)

#: Below this many samples on either side (the feature dimension) the covariance is
#: rank-deficient: FID is then reported with ``fid_reliable = False``.
FID_RELIABLE_MIN_SAMPLES = FEATURE_DIM
#: Samples drawn for an evaluation unless told otherwise (the paper's n).
DEFAULT_N = 2000
#: How many samples the grid shows.
GRID_COUNT = 64
#: Metric names of the optional rewards.
REWARD_METRIC, CLIP_METRIC = "reward_mean", "clip_score"
_RENDER_BATCH = 256
_SCORE_BATCH = 64


def render_quickdraw(sketches: Sequence[np.ndarray], *, progress: bool = False) -> torch.Tensor:
    """Sketches -> ``(B, 1, 28, 28)`` Quick, Draw!-style bitmaps (ink 1 on 0), in batches."""
    from sketchrl.render import QUICKDRAW_OPTIONS, render

    parts = [
        render(sketches[start : start + _RENDER_BATCH], QUICKDRAW_OPTIONS)
        for start in tqdm(
            range(0, len(sketches), _RENDER_BATCH), desc="render", unit="batch",
            disable=not progress,
        )
    ]
    return torch.cat(parts)


def fid_warnings(
    category: str,
    n_generated: int,
    n_real: int,
    available: int,
    feature_dim: int = FID_RELIABLE_MIN_SAMPLES,
) -> tuple[bool, list[str]]:
    """Whether an FID between these counts is trustworthy (at least ``feature_dim`` samples
    on each side), and warnings saying why not."""
    warnings: list[str] = []
    if available < n_generated:
        warnings.append(
            f"only {available} real {category} drawings exist for {n_generated} generated: "
            f"FID, precision and recall use {n_real} real vs {n_generated} generated"
        )
    reliable = min(n_real, n_generated) >= feature_dim
    if not reliable:
        warnings.append(
            f"FID is unreliable: {n_real} real and {n_generated} generated samples, fewer than "
            f"the {feature_dim} feature dimensions on a side, so the covariance is "
            "rank-deficient and FID is biased upward; compare only FIDs with the same counts"
        )
    return reliable, warnings


def load_evaluation_classifier(
    classifier_dir: str | Path, target: str, device: str | torch.device | None
) -> tuple[Any, int]:
    """The independent classifier and the index of ``target`` among its categories."""
    from sketchrl.classifiers import load_classifier

    classifier = load_classifier(classifier_dir, device=device)
    if target not in classifier.categories:
        raise ConfigError(
            f"category {target!r} is not one of the classifier's categories "
            f"({', '.join(classifier.categories)}); pass --category with one of them"
        )
    return classifier, classifier.categories.index(target)


def classifier_hits(classifier: Any, target_index: int, ink: torch.Tensor) -> np.ndarray:
    """Whether the classifier's argmax is ``target_index``, per ``(B, 1, 28, 28)`` ink bitmap."""
    predictions = [
        classifier.predict_proba(ink[start : start + 512], ink=1).argmax(dim=1).cpu()
        for start in range(0, len(ink), 512)
    ]
    return (torch.cat(predictions) == target_index).numpy()


def distribution_metrics(
    real: np.ndarray, fake: np.ndarray, nearest_k: int = NEAREST_K
) -> dict[str, Any]:
    """FID and precision / recall / density / coverage of two feature sets (None where a side
    has too few samples for the metric)."""
    metrics: dict[str, Any] = {"fid": None, "prdc_nearest_k": nearest_k}
    if min(len(real), len(fake)) >= 2:
        fid = FID()
        fid.update(real=real, fake=fake)
        metrics["fid"] = fid.compute()
    if min(len(real), len(fake)) >= nearest_k + 2:
        prdc = PRDC(nearest_k)
        prdc.update(real=real, fake=fake)
        metrics.update(prdc.compute())
    else:
        metrics.update(precision=None, recall=None, density=None, coverage=None)
    return metrics


def reward_values(reward: Any, sketches: Sequence[np.ndarray], *, progress: bool) -> np.ndarray:
    """``reward.score`` over all sketches in batches, as float64."""
    values = [
        reward.score(list(sketches[start : start + _SCORE_BATCH])).detach().double().cpu()
        for start in tqdm(
            range(0, len(sketches), _SCORE_BATCH), desc=f"reward {reward.name}", unit="batch",
            disable=not progress,
        )
    ]
    return torch.cat(values).numpy()


def _with_interval(name: str, values: np.ndarray, seed: int, n_resamples: int) -> dict[str, float]:
    metric = BootstrapMean(n_resamples=n_resamples, seed=seed)
    metric.update(values)
    result = metric.compute()
    return {
        name: result["mean"],
        f"{name}_std": result["std"],
        f"{name}_ci_low": result["ci_low"],
        f"{name}_ci_high": result["ci_high"],
    }


def evaluate_sketches(
    sketches: Sequence[np.ndarray],
    *,
    reference: str,
    classifier_dir: str | Path | None = None,
    target_category: str | None = None,
    rewards: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = False,
    extractor: FeatureExtractor | None = None,
    n_resamples: int = N_RESAMPLES,
    nearest_k: int = NEAREST_K,
) -> dict[str, Any]:
    """All metrics of ``sketches`` (stroke-3, model units) against ``quickdraw:<category>``.

    Args:
        reference: ``quickdraw:<category>``: real 28x28 bitmaps for FID / precision / recall.
        classifier_dir: a ``load_classifier`` directory (the ``eval`` subset model) for
            ``classifier_rate``; skipped when None.
        target_category: the class counted by the classifier (default: the reference's).
        rewards: metric name -> ``Reward``; each gives ``<name>`` (mean) with std and a
            bootstrap interval (e.g. ``{"reward_mean": ..., "clip_score": ...}``).
        seed: seed of the bootstrap resampling.
        device: where Inception and the classifier run (None = CPU, "auto" = cuda if any).
        extractor: ``images (B, 3, H, W) in [0, 1] -> (B, D)`` features; default the FID
            Inception (tests pass something cheaper).
    """
    if len(sketches) == 0:
        raise DataError("there are no sketches to evaluate; sample some first")
    category = parse_reference(reference)
    device = resolve_device(device)
    classifier = None
    if classifier_dir is not None:  # checked before the slow part
        classifier, target_index = load_evaluation_classifier(
            classifier_dir, target_category or category, device
        )
    extractor = extractor or InceptionFeatureExtractor(device)
    n = len(sketches)
    metrics: dict[str, Any] = {"n": n, "reference": reference, "seed": seed}

    ink = render_quickdraw(sketches, progress=progress)
    real = reference_features(reference, n, extractor, progress=progress)
    started = time.perf_counter()
    fake = np.asarray(extractor(ink_to_paper(ink), progress=progress), dtype=np.float64)
    logger.info("features: %.1f images/s", n / max(time.perf_counter() - started, 1e-9))
    reliable, warnings = fid_warnings(
        category, n, real.count, real.available, feature_dim=fake.shape[1]
    )
    distribution = distribution_metrics(real.features, fake, nearest_k)
    metrics.update(fid=distribution.pop("fid"), fid_reliable=reliable, n_reference=real.count,
                   reference_available=real.available, **distribution)
    if metrics["precision"] is None:
        warnings.append(f"precision/recall need at least {nearest_k + 2} samples on each side")

    if classifier is not None:
        hits = classifier_hits(classifier, target_index, ink)
        metrics.update(_with_interval("classifier_rate", hits, seed, n_resamples))
        metrics.update(classifier_dir=str(classifier_dir),
                       classifier_target=classifier.categories[target_index])
    for name, reward in (rewards or {}).items():
        values = reward_values(reward, sketches, progress=progress)
        metrics.update(_with_interval(name, values, seed, n_resamples))
        metrics[f"{name}_reward_name"] = getattr(reward, "name", type(reward).__name__)
    metrics.update(sketch_statistics(sketches))
    metrics.update(ci_confidence=CONFIDENCE, ci_resamples=n_resamples, warnings=warnings)
    for warning in warnings:
        logger.warning(warning)
    return metrics


def build_evaluation_rewards(
    reward: str | None = None,
    reward_options: Mapping[str, Any] | None = None,
    *,
    clip: bool = False,
    clip_options: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Metric name -> reward: ``reward_mean`` for ``reward`` (built by ``build_reward``),
    ``clip_score`` for CLIP (``clip_options`` e.g. ``{"weights": PATH, "category": "owl"}``)."""
    from sketchrl.rewards import build_reward

    rewards: dict[str, Any] = {}
    if reward is not None:
        rewards[REWARD_METRIC] = build_reward(reward, dict(reward_options or {}), device)
    if clip:
        rewards[CLIP_METRIC] = build_reward("clip", dict(clip_options or {}), device)
    return rewards


def evaluate_model(
    spec: str | Path,
    n: int = DEFAULT_N,
    *,
    reference: str,
    out_dir: str | Path | None = None,
    temperature: float = 0.5,
    seed: int = 0,
    max_len: int | None = None,
    batch_size: int = 500,
    device: str | torch.device | None = None,
    progress: bool = False,
    **evaluate_options: Any,
) -> dict[str, Any]:
    """Sample ``n`` sketches from ``load_model(spec)`` (seeded, in batches) and evaluate them.

    ``evaluate_options`` go to :func:`evaluate_sketches` (classifier_dir, target_category,
    rewards, extractor, ...). With ``out_dir`` the results are written by
    :func:`save_evaluation`.
    """
    from sketchrl.models import load_model, sample_sketches

    parse_reference(reference)  # fail before sampling
    device = resolve_device(device)
    model = load_model(str(spec), device=device)
    sketches = sample_sketches(
        model, n, temperature=temperature, max_len=max_len, batch_size=batch_size,
        generator=torch.Generator().manual_seed(seed), progress=progress,
    )
    metrics: dict[str, Any] = {"model": str(spec), "temperature": temperature, "max_len": max_len}
    metrics.update(
        evaluate_sketches(
            sketches, reference=reference, seed=seed, device=device, progress=progress,
            **evaluate_options,
        )
    )
    if out_dir is not None:
        save_evaluation(out_dir, sketches, metrics)
    return metrics


def evaluate_samples_file(
    path: str | Path,
    n: int | None = None,
    *,
    reference: str,
    out_dir: str | Path | None = None,
    **evaluate_options: Any,
) -> dict[str, Any]:
    """Evaluate the first ``n`` (default all) sketches of a file ``load_sketches`` reads
    (``samples.npz``, ndjson, sketch-rnn npz); with ``out_dir``, write the results."""
    from sketchrl.data import load_sketches

    parse_reference(reference)
    sketches = load_sketches(path)
    if n is not None:
        if n < 1:
            raise ConfigError(f"n={n}: evaluate at least one sketch")
        if n > len(sketches):
            logger.warning("%s holds only %d sketches; evaluating all of them", path, len(sketches))
        sketches = sketches[:n]
    metrics: dict[str, Any] = {"samples": str(path)}
    metrics.update(evaluate_sketches(sketches, reference=reference, **evaluate_options))
    if out_dir is not None:
        save_evaluation(out_dir, sketches, metrics)
    return metrics


def json_ready(value: Any) -> Any:
    """Metrics -> plain JSON values (numpy scalars to Python, NaN/inf to None)."""
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_evaluation(
    out_dir: str | Path, sketches: Sequence[np.ndarray], metrics: Mapping[str, Any]
) -> Path:
    """Write ``metrics.json``, ``metrics.md``, ``grid.png`` (first 64) and ``samples.npz``."""
    from sketchrl.data import save_samples
    from sketchrl.render import RenderOptions, render, save_grid

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(json_ready(metrics), indent=2) + "\n")
    (out / "metrics.md").write_text(format_markdown(metrics))
    shown = list(sketches[:GRID_COUNT])
    if shown:
        save_grid(render(shown, RenderOptions(size=128, line_width=2.0)), out / "grid.png")
    save_samples(out / "samples.npz", list(sketches))
    return out
