"""Tables, figures and ``report.html`` of a finished study."""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sketchrl.reproduce.figures import plot_pareto, plot_reward_curves, plot_samples
from sketchrl.reproduce.tables import Table, build_table

if TYPE_CHECKING:
    from sketchrl.reproduce.pipeline import Study
    from sketchrl.reproduce.presets import Method

REWARD_HEADERS = {"classifier": "P(target) reward clf", "clip": "CLIP", "ssim": "SSIM"}

logger = logging.getLogger(__name__)


def load_seed_metrics(study: Study, task: str, method: str, seeds: list[int]) -> list[dict]:
    """The ``metrics.json`` of each seed's evaluation, with its training seed added."""
    result = []
    for seed in seeds:
        path = study.paths.evaluation(task, method, seed) / "metrics.json"
        metrics: dict[str, Any] = json.loads(path.read_text())
        metrics["train_seed"] = seed
        result.append(metrics)
    return result


def study_tables(study: Study) -> list[Table]:
    """One table per task (baseline + methods), then one per task and sweep."""
    from sketchrl.reproduce.pipeline import BASELINE

    preset, tables = study.preset, []
    for task in preset.tasks:
        header = REWARD_HEADERS.get(task.reward, task.reward)
        reference = next((m.label_for(task.name) for m in preset.methods
                          if m.name == preset.reference_method), None)
        rows = [("pretrained", load_seed_metrics(study, task.name, BASELINE, study.seeds()))]
        rows += [(m.label_for(task.name), load_seed_metrics(study, task.name, m.name,
                                                            study.seeds()))
                 for m in preset.methods]
        tables.append(build_table(
            f"{task.name}", f"{task.label}: target {task.target}, n = {preset.n_eval} per seed",
            rows, header, reference, preset.n_eval))
        for sweep in preset.sweeps:
            seeds = study.seeds(sweep.seeds)
            rows = [("pretrained", load_seed_metrics(study, task.name, BASELINE, seeds))]
            rows += [(f"{sweep.key} = {value:g}" if isinstance(value, float)
                      else f"{sweep.key} = {value}",
                      load_seed_metrics(study, task.name, method.name, seeds))
                     for value, method in preset.sweep_methods(sweep, task.name)]
            tables.append(build_table(
                f"{task.name}_{sweep.name}", f"{task.name}: {sweep.label}, n = {preset.n_sweep}",
                rows, header, None, preset.n_sweep))
    return tables


def write_report(study: Study) -> Path:
    """``tables.md``, ``<table>.csv``, ``samples.png``, ``reward_curves.png``, ``pareto.png``
    and ``report.html`` in the study's folder; returns the report's path."""
    root = study.paths.root
    tables = study_tables(study)
    (root / "tables.md").write_text("\n".join(table.markdown() for table in tables))
    for table in tables:
        table.write_csv(root / f"{table.name}.csv")
    plot_samples(study, root / "samples.png")
    plot_reward_curves(study, root / "reward_curves.png")
    plot_pareto(study, root / "pareto.png")
    write_live_pages(study)
    report = root / "report.html"
    report.write_text(render_html(study, tables))
    return report


def html_table(table: Table) -> str:
    header = ["method", *(c.header for c in table.columns)]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr><td>" + html.escape(row.label) + "</td>"
        + "".join(f"<td>{html.escape(c.format(row.summary.get(c.key), row.marks.get(c.key, '')))}"
                  "</td>" for c in table.columns) + "</tr>"
        for row in table.rows
    )
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in table.notes)
    return (f"<h2>{html.escape(table.title)}</h2><table><tr>{head}</tr>{body}</table>{notes}"
            f"<p><a href='{html.escape(table.name)}.csv'>{html.escape(table.name)}.csv</a> "
            "(every seed's values)</p>")


def write_live_pages(study: Study) -> None:
    """A live page (``sketchrl export --html``) in the first seed's run of every method."""
    from sketchrl.errors import SketchRLError
    from sketchrl.models import load_model
    from sketchrl.web import write_live_page

    base = None
    for task in study.preset.tasks:
        for method in study.preset.methods:
            run = study.paths.run(task.name, method.name, study.seeds()[0])
            if not (run / "model.safetensors").exists() or (run / "page").exists():
                continue
            if base is None:
                base = load_model(study.preset.model)
            try:
                write_live_page(load_model(run), run / "page", base=base,
                                base_name=study.preset.model, warn=False)
            except SketchRLError as error:  # e.g. a VAE, which the JS library cannot load
                logger.warning("no live page for %s: %s", run, error)


def page_links(study: Study) -> str:
    """Links to the live page of each fine-tuned model that has one."""
    links = []
    for task in study.preset.tasks:
        for method in study.preset.methods:
            page = study.paths.run(task.name, method.name, study.seeds()[0]) / "page" / \
                "index.html"
            if page.exists():
                href = page.relative_to(study.paths.root).as_posix()
                links.append(f"<li><a href='{html.escape(href)}'>{html.escape(task.name)}: "
                             f"{html.escape(method.label_for(task.name))}</a></li>")
    if not links:
        return ""
    return ("<h2>Draw with the fine-tuned models</h2><p>Each page draws with the model in the "
            "browser (@magenta/sketch); serve the study folder over HTTP to open them.</p>"
            f"<ul>{''.join(links)}</ul>")


def method_summary(method: Method) -> str:
    """A method's settings, or for a soup what it mixes."""
    if method.soup is not None:
        soup = method.soup
        return (f"each seed's {soup.base} run + W x ({soup.other} run - {soup.base} run), "
                f"W = {soup.describe()}, no training of its own")
    return json.dumps(dict(method.settings))


def render_html(study: Study, tables: list[Table]) -> str:
    preset, root = study.preset, study.paths.root
    shared = study.rl_config(preset.tasks[0])
    warnings = sorted({w for t in tables for r in t.rows for m in r.per_seed
                       for w in m.get("warnings", [])})
    timings = study.load_timings()
    timing_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.0f} s</td></tr>"
                          for k, v in timings.items())
    environment = (root / "environment.json").read_text() if (root / "environment.json").exists() \
        else "{}"
    methods = "".join(f"<li><b>{html.escape(m.label_for())}</b>: "
                      f"{html.escape(method_summary(m))}</li>" for m in preset.methods)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>sketchrl: {html.escape(preset.name)} study</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
.note {{ color: #555; font-size: 0.9em; }} .warning {{ color: #8a4b00; }}
</style></head><body>
<h1>sketchrl reproduce: preset <code>{html.escape(preset.name)}</code></h1>
<p>{html.escape(preset.description)}</p>
<p>Model <code>{html.escape(preset.model)}</code>; {preset.seeds} training seed(s) per method;
shared settings {html.escape(json.dumps(preset.training_settings))} on top of the paper's
(temperature {shared.temperature}, max {shared.max_len} steps); evaluation n = {preset.n_eval}
per seed. Total step time {sum(timings.values()) / 60:.1f} minutes.</p>
<ul>{methods}</ul>
{"".join(html_table(t) for t in tables)}
{"".join(f"<p class='warning'>{html.escape(w)}</p>" for w in warnings)}
<h2>Better without collapse?</h2><img src="pareto.png" width="1000">
<h2>Samples</h2><img src="samples.png" width="1000">
<h2>Reward curves</h2><img src="reward_curves.png" width="1000">
{page_links(study)}
<h2>Time per step</h2><table>{timing_rows}</table>
<h2>What the numbers depend on</h2><pre>{html.escape(environment)}</pre>
</body></html>
"""
