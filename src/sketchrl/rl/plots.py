"""Reward curves of fine-tuning runs (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sketchrl.rl.run_files import METRICS_FILE, read_metrics


def plot_reward_curve(run_dir: str | Path, axis, title: str | None = None) -> None:
    """Per-batch mean return of one run (grey) and its moving average (blue) on ``axis``."""
    records = read_metrics(Path(run_dir) / METRICS_FILE)
    episodes = np.array([float(r["episodes"]) for r in records])
    reward = np.array([float(r["reward_mean"]) for r in records])
    axis.plot(episodes, reward, color="0.75", linewidth=0.8, label="batch mean")
    window = max(1, len(reward) // 10)
    if len(reward) >= window:
        smooth = np.convolve(reward, np.ones(window) / window, mode="valid")
        axis.plot(episodes[window - 1:], smooth, color="C0", label=f"mean of {window} batches")
    axis.set_title(title or Path(run_dir).name, fontsize=9)
    axis.set_xlabel("episodes", fontsize=8)
    axis.set_ylabel("return", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=7)


def save_reward_curves(runs: list[tuple[str | Path, str]], path: str | Path) -> Path:
    """One panel per ``(run_dir, title)``, three to a row, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(runs))
    rows = -(-len(runs) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for axis, (run_dir, title) in zip(axes.flat, runs, strict=False):
        plot_reward_curve(run_dir, axis, title)
    for axis in list(axes.flat)[len(runs):]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)
