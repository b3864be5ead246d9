"""Tables, figures and ``report.html`` of a finished study."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sketchrl.reproduce.tables import Table, build_table

if TYPE_CHECKING:
    from sketchrl.reproduce.pipeline import Study

SAMPLES_PER_ROW = 8


def study_tables(study: Study) -> tuple[Table, Table]:
    preset, paths = study.preset, study.paths
    metrics = preset.score_metrics
    labels = {m.name: m.label for m in preset.methods}
    table1_rows = [("baseline (pretrained)", paths.evaluation("table1", "baseline"))]
    table1_rows += [(labels[m.name], paths.evaluation("table1", m.name)) for m in preset.methods]
    table1 = build_table(
        f"Table 1: methods ({preset.category}, n = {preset.n_eval})", table1_rows, metrics
    )
    table2_rows = [(f"gamma = {m.gamma:g}", paths.evaluation("table2", m.name))
                   for m in preset.ablation_methods()]
    table2 = build_table(
        f"Table 2: discount ablation of {preset.ablation.label} (n = {preset.n_ablation})",
        table2_rows, metrics,
    )
    return table1, table2


def plot_reward_curves(study: Study, path: Path) -> Path:
    """Per-batch mean reward of every fine-tuning run, one panel each."""
    from sketchrl.rl.plots import save_reward_curves

    runs = [(study.paths.run(m.name), m.label) for m in study.training_methods()]
    return save_reward_curves(runs, path)


def plot_samples(study: Study, path: Path) -> Path:
    """The paper's Figure 2: a row of samples per Table 1 method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sketchrl.data import load_samples
    from sketchrl.render import RenderOptions, make_grid, render

    rows = [("baseline (pretrained)", "baseline")]
    rows += [(m.label, m.name) for m in study.preset.methods]
    figure, axes = plt.subplots(len(rows), 1, figsize=(SAMPLES_PER_ROW * 1.1, 1.35 * len(rows)))
    for axis, (label, name) in zip(np.atleast_1d(axes), rows, strict=True):
        sketches = load_samples(study.paths.evaluation("table1", name) / "samples.npz")
        images = render(sketches[:SAMPLES_PER_ROW], RenderOptions(size=96, line_width=1.5))
        grid = make_grid(images, ncol=SAMPLES_PER_ROW)
        axis.imshow(grid[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0)
        axis.set_title(label, fontsize=9, loc="left")
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_report(study: Study) -> Path:
    """``table1.md/.csv``, ``table2.md/.csv``, ``samples.png``, ``reward_curves.png`` and
    ``report.html`` in the study's folder; returns the report's path."""
    root = study.paths.root
    table1, table2 = study_tables(study)
    for name, table in (("table1", table1), ("table2", table2)):
        (root / f"{name}.md").write_text(table.markdown())
        table.write_csv(root / f"{name}.csv")
    plot_samples(study, root / "samples.png")
    plot_reward_curves(study, root / "reward_curves.png")
    report = root / "report.html"
    report.write_text(render_html(study, table1, table2))
    return report


def html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header())
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in table.cells()
    )
    return f"<h2>{html.escape(table.title)}</h2><table><tr>{head}</tr>{body}</table>"


def render_html(study: Study, table1: Table, table2: Table) -> str:
    preset, root, rl = study.preset, study.paths.root, study.rl_config()
    warnings = sorted({w for _, m in table1.rows + table2.rows for w in m.get("warnings", [])})
    grids = "".join(
        f"<figure><img src='eval_table1/{html.escape(name)}/grid.png' width='320'>"
        f"<figcaption>{html.escape(label)}</figcaption></figure>"
        for label, name in [("baseline", "baseline")] + [(m.label, m.name) for m in preset.methods]
    )
    timings_file = root / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    timing_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.0f} s</td></tr>"
                          for k, v in timings.items())
    total = sum(timings.values())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>sketchrl: {html.escape(preset.name)} study</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: 0.5em; }}
.warning {{ color: #8a4b00; }}
</style></head><body>
<h1>sketchrl reproduce: preset <code>{html.escape(preset.name)}</code></h1>
<p>{html.escape(preset.description)}</p>
<p>Model <code>{html.escape(preset.model)}</code>; {rl.episodes} episodes per run, batch
{rl.batch_size}, lr {rl.lr:g}, temperature {rl.temperature}, max {rl.max_len}
steps, {rl.warmup_batches} warm-up batches; evaluation n = {preset.n_eval} (Table 1) and
{preset.n_ablation} (Table 2) at temperature {rl.temperature}. Total time {total / 60:.1f}
minutes.</p>
{html_table(table1)}
{html_table(table2)}
{"".join(f"<p class='warning'>{html.escape(w)}</p>" for w in warnings)}
<h2>Samples</h2><img src="samples.png" width="900">
<div>{grids}</div>
<h2>Reward curves</h2><img src="reward_curves.png" width="1000">
<h2>Time per step</h2><table>{timing_rows}</table>
<p>Raw values with 95% bootstrap intervals: <a href="table1.csv">table1.csv</a>,
<a href="table2.csv">table2.csv</a>; every evaluation's <code>metrics.json</code> is in
<code>eval_table1/</code> and <code>eval_table2/</code>.</p>
</body></html>
"""
