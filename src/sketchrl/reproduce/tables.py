"""A study's tables: one per task (methods) and one per sweep, mean over seeds with intervals.

Markdown shows ``mean [low, high]`` (95% over seeds, see :mod:`sketchrl.reproduce.aggregate`)
and marks each value that differs significantly from the pretrained model's (``*``) and from the
reference method's, the paper's REINFORCE (``†``). The CSV keeps every per-seed value.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sketchrl.reproduce.aggregate import METRICS, SeedSummary, aggregate, differs


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: header, metric key, number format."""

    header: str
    key: str
    fmt: str = "{:.3f}"
    percent: bool = False
    higher_is_better: bool = True

    def value(self, number: float) -> str:
        return f"{100 * number:.1f}" if self.percent else self.fmt.format(number)

    def format(self, summary: SeedSummary | None, marks: str = "") -> str:
        if summary is None:
            return "n/a"
        text = self.value(summary.mean) + ("%" if self.percent else "") + marks
        if summary.high > summary.low:
            text += f" [{self.value(summary.low)}, {self.value(summary.high)}]"
        return text


def columns(reward_header: str) -> list[Column]:
    return [
        Column(reward_header, "reward_score"),
        Column("judge", "classifier_rate", percent=True),
        Column("FID", "fid", "{:.1f}", higher_is_better=False),
        Column("KID x 1000", "kid_x1000", "{:.1f}", higher_is_better=False),
        Column("precision", "precision"),
        Column("recall", "recall"),
        Column("coverage", "coverage"),
        Column("rows", "points_per_sketch_mean", "{:.0f}"),
    ]


def with_derived(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A metrics.json dict plus ``kid_x1000`` (KID scaled for reading)."""
    values = dict(metrics)
    if values.get("kid") is not None:
        values["kid_x1000"] = 1000 * values["kid"]
    return values


@dataclasses.dataclass
class Row:
    label: str
    per_seed: list[dict[str, Any]]  # metrics.json of each seed, in seed order
    summary: dict[str, SeedSummary] = dataclasses.field(default_factory=dict)
    marks: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Table:
    """Rows of methods under a title; the first row is the baseline."""

    name: str
    title: str
    columns: list[Column]
    rows: list[Row]
    reference_row: str | None = None  # label of the method others are tested against
    notes: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        keys = [c.key for c in self.columns]
        for row in self.rows:
            row.summary = aggregate([with_derived(m) for m in row.per_seed], keys)
        baseline = self.rows[0] if self.rows else None
        reference = next((r for r in self.rows if r.label == self.reference_row), None)
        for row in self.rows[1:]:
            for key in keys:
                mark = "*" if differs(row.summary.get(key), baseline.summary.get(key)) else ""
                if reference is not None and row is not reference and differs(
                        row.summary.get(key), reference.summary.get(key)):
                    mark += "†"
                row.marks[key] = mark

    def markdown(self) -> str:
        header = ["method", *(c.header for c in self.columns)]
        lines = [f"### {self.title}", "", "| " + " | ".join(header) + " |",
                 "|" + "---|" * len(header)]
        for row in self.rows:
            cells = [c.format(row.summary.get(c.key), row.marks.get(c.key, ""))
                     for c in self.columns]
            lines.append("| " + " | ".join([row.label, *cells]) + " |")
        lines += ["", *self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def write_csv(self, path: Path) -> None:
        """One line per method and seed (every value), then one per method (mean, interval)."""
        keys = [c.key for c in self.columns]
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["method", "seed", "n", *keys, "fid_reliable"])
            for row in self.rows:
                for metrics in row.per_seed:
                    values = with_derived(metrics)
                    writer.writerow([row.label, metrics.get("train_seed"), metrics.get("n"),
                                     *(values.get(k) for k in keys), metrics.get("fid_reliable")])
            writer.writerow([])
            writer.writerow(["method", "seeds", *(f"{k}_{s}" for k in keys
                                                  for s in ("mean", "low", "high", "marks"))])
            for row in self.rows:
                seeds = max((s.seeds for s in row.summary.values()), default=0)
                cells = []
                for key in keys:
                    summary = row.summary.get(key)
                    cells += [None, None, None] if summary is None else \
                        [summary.mean, summary.low, summary.high]
                    cells.append(row.marks.get(key, ""))
                writer.writerow([row.label, seeds, *cells])


def table_notes(seeds: int, n: int, reference: str | None, fid_unreliable: bool) -> list[str]:
    """What every study table says under it."""
    notes = [
        f"Mean over {seeds} training seed(s) (each evaluated on {n} samples with its own "
        "sampling seed) and, in brackets, the 95% t interval over seeds (a seed-to-seed "
        "interval: training and sampling noise together); with one seed, the bootstrap interval "
        "over samples where there is one.",
        "`*` differs from the pretrained model, "
        + (f"`†` from {reference}, " if reference else "")
        + "by Welch's t test on the per-seed values (p < 0.05).",
        "KID (kernel inception distance, x 1000) is unbiased at these sample sizes; FID is "
        "biased upward when a side has fewer samples than the 2,048 features"
        + (", as here: compare FIDs only within a table." if fid_unreliable else "."),
    ]
    return notes


def build_table(name: str, title: str, rows: Sequence[tuple[str, list[dict[str, Any]]]],
                reward_header: str, reference: str | None, n: int) -> Table:
    """A table from ``(label, per-seed metrics.json dicts)`` rows (the baseline first)."""
    seeds = max((len(per_seed) for _, per_seed in rows), default=0)
    unreliable = any(m.get("fid_reliable") is False for _, ps in rows for m in ps)
    return Table(name, title, columns(reward_header), [Row(label, list(ps)) for label, ps in rows],
                 reference_row=reference, notes=table_notes(seeds, n, reference, unreliable))


__all__ = ["METRICS", "Column", "Row", "Table", "build_table", "columns"]
