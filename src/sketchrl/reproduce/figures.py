"""A study's figures: samples per method, reward curves, and the Pareto plot (matplotlib, Agg).

The Pareto plot is the picture of "better without collapse": for each task, the independent
judge's rate against recall (diversity kept) and against FID (closeness to real drawings), one
point per method and seed, the pretrained model marked, a sweep drawn as a line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sketchrl.reproduce.pipeline import Study

SAMPLES_PER_ROW = 8
MARKERS = "osD^vP<>"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _metrics(study: Study, task: str, method: str, seed: int) -> dict | None:
    path = study.paths.evaluation(task, method, seed) / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else None


def plot_samples(study: Study, path: Path) -> Path:
    """A row of samples (first seed) per task and method, the pretrained model first."""
    from sketchrl.data import load_samples
    from sketchrl.render import RenderOptions, make_grid, render
    from sketchrl.reproduce.pipeline import BASELINE

    plt = _pyplot()
    rows = [(f"{task.name}: {label}", task.name, name) for task in study.preset.tasks
            for label, name in [("pretrained", BASELINE)]
            + [(m.label_for(task.name), m.name) for m in study.preset.methods]]
    seed = study.seeds()[0]
    figure, axes = plt.subplots(len(rows), 1, figsize=(SAMPLES_PER_ROW * 1.1, 1.35 * len(rows)))
    for axis, (label, task, name) in zip(np.atleast_1d(axes), rows, strict=True):
        sketches = load_samples(study.paths.evaluation(task, name, seed) / "samples.npz")
        images = render(sketches[:SAMPLES_PER_ROW], RenderOptions(size=96, line_width=1.5))
        axis.imshow(make_grid(images, ncol=SAMPLES_PER_ROW)[0].numpy(), cmap="gray",
                    vmin=0.0, vmax=1.0)
        axis.set_title(label, fontsize=9, loc="left")
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_reward_curves(study: Study, path: Path) -> Path:
    """Per task and trained method: the per-batch mean reward of every seed (smoothed)."""
    from sketchrl.rl import read_metrics

    plt = _pyplot()
    panels = [(t, m) for t in study.preset.tasks for m in study.preset.trained_methods]
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows),
                                squeeze=False)
    for axis, (task, method) in zip(axes.flat, panels, strict=False):
        for k, seed in enumerate(study.seeds()):
            records = read_metrics(study.paths.run(task.name, method.name, seed) / "metrics.csv")
            episodes = np.array([float(r["episodes"]) for r in records])
            reward = np.array([float(r["reward_mean"]) for r in records])
            window = max(1, len(reward) // 10)
            smooth = np.convolve(reward, np.ones(window) / window, mode="valid")
            axis.plot(episodes[window - 1:], smooth, color=f"C{k}", label=f"seed {seed}")
        axis.set_title(f"{task.name}: {method.label_for(task.name)}", fontsize=9)
        axis.set_xlabel("episodes", fontsize=8)
        axis.set_ylabel("mean return (smoothed)", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_pareto(study: Study, path: Path) -> Path:
    """Judge's rate against recall and against FID, per task (see the module docstring)."""
    from sketchrl.reproduce.pipeline import BASELINE

    plt = _pyplot()
    tasks = study.preset.tasks
    figure, axes = plt.subplots(len(tasks), 2, figsize=(10, 4.2 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks, strict=True):
        for axis, key, name in ((row[0], "recall", "recall"), (row[1], "fid", "FID")):
            _pareto_panel(study, axis, task.name, key)
            axis.set_xlabel(f"{name} vs real {task.target}s" + (" (lower is better)"
                                                                 if key == "fid" else ""))
            axis.set_ylabel(f"judge: {task.target} rate")
            axis.set_title(f"{task.name}", fontsize=10)
            axis.grid(alpha=0.3)
        baseline = [_metrics(study, task.name, BASELINE, s) for s in study.seeds()]
        for axis, key in ((row[0], "recall"), (row[1], "fid")):
            points = [(m[key], m["classifier_rate"]) for m in baseline
                      if m and m.get(key) is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                axis.scatter(xs, ys, marker="*", s=160, color="black", label="pretrained",
                             zorder=3)
            axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _pareto_panel(study: Study, axis, task: str, key: str) -> None:
    """Every method's seeds as points, every sweep as a line through its mean points."""
    preset = study.preset
    for k, method in enumerate(preset.methods):
        points = [m for s in study.seeds() if (m := _metrics(study, task, method.name, s))]
        points = [(m[key], m["classifier_rate"]) for m in points if m.get(key) is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            axis.scatter(xs, ys, marker=MARKERS[k % len(MARKERS)], color=f"C{k}", alpha=0.8,
                         label=method.label_for(task))
    for j, sweep in enumerate(preset.sweeps):
        line = []
        for value, method in preset.sweep_methods(sweep, task):
            seeds = [m for s in study.seeds(sweep.seeds)
                     if (m := _metrics(study, task, method.name, s))]
            if seeds and all(m.get(key) is not None for m in seeds):
                line.append((np.mean([m[key] for m in seeds]),
                             np.mean([m["classifier_rate"] for m in seeds]), value))
        if line:
            xs, ys, values = zip(*line, strict=True)
            axis.plot(xs, ys, "--", color=f"C{len(preset.methods) + j}", marker=".",
                      label=sweep.label)
            for x, y, value in line:
                axis.annotate(f"{value:g}", (x, y), fontsize=6, xytext=(3, 3),
                              textcoords="offset points")
