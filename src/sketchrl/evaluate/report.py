"""Writing an evaluation's results: ``metrics.json``, the markdown summary ``metrics.md``, the
sample grid and the samples."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sketchrl.evaluate.stats import STAT_NAMES

#: (key, label, format) of the headline metrics, in table order.
HEADLINE = (
    ("fid", "FID (lower is better)", "{:.2f}"),
    ("kid", "KID (lower is better)", "{:.4f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("density", "density", "{:.3f}"),
    ("coverage", "coverage", "{:.3f}"),
    ("classifier_rate", "classifier rate", "{:.1%}"),
)
#: How many samples the grid shows.
GRID_COUNT = 64
SETTINGS = ("model", "samples", "temperature", "max_len", "seed", "prdc_nearest_k", "kid_subsets",
            "kid_subset_size", "inception_precision", "ci_resamples")


def _format(value: Any, pattern: str = "{:.4g}") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return pattern.format(value)
    return str(value)


def _interval(metrics: Mapping[str, Any], key: str, pattern: str) -> str:
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    if low is None or high is None:
        return ""
    return f"[{_format(low, pattern)}, {_format(high, pattern)}]"


def format_markdown(metrics: Mapping[str, Any]) -> str:
    """A readable report: headline table with intervals, sketch statistics, warnings."""
    confidence = metrics.get("ci_confidence", 0.95)
    lines = [
        f"# Evaluation against {metrics.get('reference', '?')}",
        "",
        f"{metrics.get('n', '?')} generated sketches; {metrics.get('n_reference', '?')} real "
        f"drawings used ({metrics.get('reference_available', '?')} available).",
        "",
        f"| metric | value | {confidence:.0%} CI |",
        "|---|---|---|",
    ]
    for key, label, pattern in HEADLINE:
        if key not in metrics:
            continue
        value = _format(metrics[key], pattern)
        if key == "fid" and metrics.get("fid") is not None and not metrics.get("fid_reliable"):
            value += " (unreliable, see warnings)"
        if key == "kid" and metrics.get("kid_std") is not None:
            value += f" ± {_format(metrics['kid_std'], pattern)} (std over subsets)"
        lines.append(f"| {label} | {value} | {_interval(metrics, key, pattern)} |")
    headline_keys = {key for key, _, _ in HEADLINE}
    for key in metrics:
        if key not in headline_keys and f"{key}_ci_low" in metrics:
            name_key = f"{key}_reward_name"
            label = f"{key} ({metrics[name_key]})" if name_key in metrics else key
            value = _format(metrics[key], "{:.4f}")
            lines.append(f"| {label} | {value} | {_interval(metrics, key, '{:.4f}')} |")
    lines += ["", "## Sketch statistics", "", "| statistic | mean | std |", "|---|---|---|"]
    for name in STAT_NAMES:
        if f"{name}_mean" in metrics:
            mean, std = metrics[f"{name}_mean"], metrics[f"{name}_std"]
            lines.append(f"| {name.replace('_', ' ')} | {mean:.2f} | {std:.2f} |")
    settings = [f"{key}={metrics[key]}" for key in SETTINGS if key in metrics]
    if settings:
        lines += ["", "Settings: " + ", ".join(settings) + "."]
    warnings = metrics.get("warnings") or []
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {warning}" for warning in warnings]
    return "\n".join(lines) + "\n"


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
