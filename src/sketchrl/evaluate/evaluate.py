"""Evaluate generated sketches (FID, KID, precision/recall/density/coverage, independent
classifier, rewards with bootstrap intervals, sketch statistics) and write the results to a
directory.

On a CUDA device the 28x28 bitmaps are rendered on the GPU (the ``torch`` rasteriser) and the
Inception network runs there too; on CPU they are rendered with Agg."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sketchrl.devices import resolve_device
from sketchrl.errors import ConfigError, DataError
from sketchrl.evaluate.bootstrap import CONFIDENCE, N_RESAMPLES, BootstrapMean
from sketchrl.evaluate.fid import FID
from sketchrl.evaluate.inception import (
    DEFAULT_PRECISION,
    FEATURE_DIM,
    InceptionFeatureExtractor,
    check_precision,
)
from sketchrl.evaluate.judge import classifier_hits, load_evaluation_classifier
from sketchrl.evaluate.kid import KID, KID_SUBSET_SIZE, KID_SUBSETS
from sketchrl.evaluate.prdc_metrics import NEAREST_K, PRDC
from sketchrl.evaluate.reference import (
    FeatureExtractor,
    ink_to_paper,
    parse_reference,
    reference_features,
)
from sketchrl.evaluate.report import save_evaluation
from sketchrl.evaluate.stats import sketch_statistics
from sketchrl.evaluate.workers import map_batches

if TYPE_CHECKING:
    from sketchrl.models.mixture import Temperature

logger = logging.getLogger(__name__)

#: Below this many samples on either side (the feature dimension) the covariance is
#: rank-deficient: FID is then reported with ``fid_reliable = False``.
FID_RELIABLE_MIN_SAMPLES = FEATURE_DIM
#: Samples drawn for an evaluation unless told otherwise (the paper's n).
DEFAULT_N = 2000
#: Metric names of the optional rewards.
REWARD_METRIC, CLIP_METRIC = "reward_mean", "clip_score"
_RENDER_BATCH = 256
_GPU_RENDER_BATCH = 4096
_SCORE_BATCH = 64


def render_quickdraw(
    sketches: Sequence[np.ndarray],
    *,
    progress: bool = False,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Sketches -> ``(B, 1, 28, 28)`` Quick, Draw!-style bitmaps (ink 1 on 0), in batches.

    On a CUDA ``device`` they are rendered there with the vectorised ``torch`` rasteriser
    (large batches); elsewhere with Agg on CPU.
    """
    from sketchrl.render import QUICKDRAW_OPTIONS, render

    device = resolve_device(device)
    on_gpu = device.type == "cuda"
    batch = _GPU_RENDER_BATCH if on_gpu else _RENDER_BATCH
    parts = [
        render(sketches[start : start + batch], QUICKDRAW_OPTIONS,
               backend="torch" if on_gpu else "agg", device=device if on_gpu else None)
        for start in tqdm(
            range(0, len(sketches), batch), desc="render", unit="batch", disable=not progress,
        )
    ]
    if not parts:
        return torch.zeros((0, 1, QUICKDRAW_OPTIONS.size, QUICKDRAW_OPTIONS.size))
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


def distribution_metrics(
    real: np.ndarray, fake: np.ndarray, nearest_k: int = NEAREST_K, seed: int = 0
) -> dict[str, Any]:
    """FID, KID (subsets drawn with ``seed``) and precision / recall / density / coverage of
    two feature sets (None where a side has too few samples for the metric).

    The three metrics run at once in worker threads, each with a single-threaded BLAS: on a
    few cores this is faster than one metric after the other with a multi-threaded BLAS, and
    much faster when other processes load the CPU.
    """
    from threadpoolctl import threadpool_limits

    metrics: dict[str, Any] = {"fid": None, "kid": None, "kid_std": None,
                               "kid_subsets": KID_SUBSETS,
                               "kid_subset_size": min(KID_SUBSET_SIZE, len(real), len(fake)),
                               "prdc_nearest_k": nearest_k,
                               "precision": None, "recall": None, "density": None,
                               "coverage": None}
    metric_objects: list[Any] = []
    if min(len(real), len(fake)) >= 2:
        metric_objects += [FID(), KID(seed=seed)]
    if min(len(real), len(fake)) >= nearest_k + 2:
        metric_objects.append(PRDC(nearest_k))

    def compute(metric: Any) -> dict[str, Any]:
        metric.update(real=real, fake=fake)
        result = metric.compute()
        return {"fid": result} if isinstance(metric, FID) else result

    with threadpool_limits(1, user_api="blas"):
        for result in map_batches(compute, metric_objects):
            metrics.update(result)
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


@contextlib.contextmanager
def _timed(stage: str, count: int) -> Iterator[None]:
    """Log how long a stage of the evaluation took."""
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    logger.info("%s: %.2f s (%.1f items/s)", stage, seconds, count / max(seconds, 1e-9))


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
    precision: str = DEFAULT_PRECISION,
) -> dict[str, Any]:
    """All metrics of ``sketches`` (stroke-3, model units) against ``quickdraw:<category>``.

    Args:
        reference: ``quickdraw:<category>``: real 28x28 bitmaps for FID / precision / recall.
        classifier_dir: a ``load_classifier`` directory (the ``eval`` subset model) for
            ``classifier_rate``; skipped when None.
        target_category: the class counted by the classifier (default: the reference's).
        rewards: metric name -> ``Reward``; each gives ``<name>`` (mean) with std and a
            bootstrap interval (e.g. ``{"reward_mean": ..., "clip_score": ...}``).
        seed: seed of the bootstrap resampling and of KID's subsets.
        device: where rendering (CUDA only), Inception and the classifier run (None = CPU,
            "auto" = cuda if any).
        extractor: ``images (B, 3, H, W) in [0, 1] -> (B, D)`` features; default the FID
            Inception (tests pass something cheaper).
        precision: arithmetic of the networks, ``"bf16"`` (default) or ``"fp32"``: the
            Inception network's (unless ``extractor`` is given) and the classifier's.
    """
    if len(sketches) == 0:
        raise DataError("there are no sketches to evaluate; sample some first")
    category = parse_reference(reference)
    check_precision(precision)
    device = resolve_device(device)
    classifier = None
    if classifier_dir is not None:  # checked before the slow part
        classifier, target_index = load_evaluation_classifier(
            classifier_dir, target_category or category, device
        )
    extractor = extractor or InceptionFeatureExtractor(device, precision=precision)
    n = len(sketches)
    metrics: dict[str, Any] = {"n": n, "reference": reference, "seed": seed,
                               "inception_precision": getattr(extractor, "precision", None)}

    with _timed("render", n):
        ink = render_quickdraw(sketches, progress=progress, device=device)
    real = reference_features(reference, n, extractor, progress=progress)
    with _timed("features", n):
        fake = np.asarray(extractor(ink_to_paper(ink), progress=progress), dtype=np.float64)
    reliable, warnings = fid_warnings(
        category, n, real.count, real.available, feature_dim=fake.shape[1]
    )
    with _timed("FID, KID, prdc", n):
        distribution = distribution_metrics(real.features, fake, nearest_k, seed)
    metrics.update(fid=distribution.pop("fid"), fid_reliable=reliable, n_reference=real.count,
                   reference_available=real.available, **distribution)
    if metrics["precision"] is None:
        warnings.append(f"precision/recall need at least {nearest_k + 2} samples on each side")

    if classifier is not None:
        with _timed("classifier", n):
            hits = classifier_hits(classifier, target_index, ink, precision)
        metrics.update(_with_interval("classifier_rate", hits, seed, n_resamples))
        metrics.update(classifier_dir=str(classifier_dir),
                       classifier_target=classifier.categories[target_index],
                       classifier_precision=precision)
    metrics.update(_reward_metrics(rewards or {}, sketches, seed, n_resamples, progress))
    metrics.update(sketch_statistics(sketches))
    metrics.update(ci_confidence=CONFIDENCE, ci_resamples=n_resamples, warnings=warnings)
    for warning in warnings:
        logger.warning(warning)
    return metrics


def _reward_metrics(rewards: Mapping[str, Any], sketches: Sequence[np.ndarray], seed: int,
                    n_resamples: int, progress: bool) -> dict[str, Any]:
    """Each reward's mean, spread and bootstrap interval, and the reward's registry name."""
    metrics: dict[str, Any] = {}
    for name, reward in rewards.items():
        values = reward_values(reward, sketches, progress=progress)
        metrics.update(_with_interval(name, values, seed, n_resamples))
        metrics[f"{name}_reward_name"] = getattr(reward, "name", type(reward).__name__)
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
    temperature: float | Temperature = 0.5,
    seed: int = 0,
    max_len: int | None = None,
    batch_size: int = 500,
    device: str | torch.device | None = None,
    progress: bool = False,
    precision: str = DEFAULT_PRECISION,
    **evaluate_options: Any,
) -> dict[str, Any]:
    """Sample ``n`` sketches from ``load_model(spec)`` (seeded, in batches) and evaluate them.

    ``temperature`` is a tau (the paper's semantics) or a ``Temperature``; metrics.json records
    its value, pen temperature and semantics. ``precision`` is the networks' (``"bf16"`` or
    ``"fp32"``, see :func:`evaluate_sketches`); ``evaluate_options``
    go to :func:`evaluate_sketches` (classifier_dir, target_category, rewards, extractor, ...).
    With ``out_dir`` the results are written by :func:`save_evaluation`.
    """
    from sketchrl.models import load_model, sample_sketches
    from sketchrl.models.io import weights_digest
    from sketchrl.models.mixture import as_temperature

    parse_reference(reference)  # fail before sampling
    check_precision(precision)
    device = resolve_device(device)
    model = load_model(str(spec), device=device)
    sketches = sample_sketches(
        model, n, temperature=temperature, max_len=max_len, batch_size=batch_size,
        generator=torch.Generator().manual_seed(seed), progress=progress,
    )
    fields = as_temperature(temperature)
    metrics: dict[str, Any] = {
        "model": str(spec), "model_digest": weights_digest(spec),
        "temperature": fields.value, "pen_temperature": fields.pen,
        "temperature_semantics": fields.semantics, "sigma_scale": fields.sigma_scale,
        "max_len": max_len,
    }
    metrics.update(
        evaluate_sketches(
            sketches, reference=reference, seed=seed, device=device, progress=progress,
            precision=precision, **evaluate_options,
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
    skip_bad: bool = False,
    **evaluate_options: Any,
) -> dict[str, Any]:
    """Evaluate the first ``n`` (default all) sketches of a file ``load_sketches`` reads
    (``samples.npz``, ndjson, sketch-rnn npz; ``skip_bad`` skips bad ndjson lines); with
    ``out_dir``, write the results."""
    from sketchrl.data import load_sketches

    parse_reference(reference)
    sketches = load_sketches(path, skip_bad=skip_bad)
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
