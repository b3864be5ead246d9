"""The paper's Table 1 (methods) and Table 2 (discount ablation), from evaluation results."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: header, metric key in ``metrics.json``, number format."""

    header: str
    key: str
    fmt: str = "{:.3f}"
    percent: bool = False

    def format(self, metrics: dict[str, Any]) -> str:
        value = metrics.get(self.key)
        if value is None:
            return "n/a"
        text = f"{100 * value:.1f}%" if self.percent else self.fmt.format(value)
        if self.key == "fid" and metrics.get("fid_reliable") is False:
            text += "*"
        return text


DISTRIBUTION_COLUMNS = (
    Column("FID", "fid", "{:.2f}"),
    Column("precision", "precision"),
    Column("recall", "recall"),
    Column("density", "density"),
    Column("coverage", "coverage"),
)
SCORE_HEADERS = {
    "clip_score": "CLIP",
    "reward_classifier_score": "P(target) reward clf",
    "ssim_score": "SSIM to target",
}


def columns_for(metric_names: Sequence[str]) -> list[Column]:
    """Score columns (CLIP first, as the paper), the distribution metrics, the classifier."""
    ordered = sorted(metric_names, key=lambda name: (name != "clip_score", name))
    scores = [Column(SCORE_HEADERS.get(name, name), name) for name in ordered]
    return [*scores, *DISTRIBUTION_COLUMNS, Column("classifier", "classifier_rate", percent=True)]


@dataclasses.dataclass
class Table:
    """Rows of (label, metrics) under a title."""

    title: str
    columns: list[Column]
    rows: list[tuple[str, dict[str, Any]]]

    def header(self) -> list[str]:
        return ["method", *(column.header for column in self.columns)]

    def cells(self) -> list[list[str]]:
        return [[label, *(c.format(metrics) for c in self.columns)] for label, metrics in self.rows]

    def markdown(self) -> str:
        header = self.header()
        lines = [f"### {self.title}", "", "| " + " | ".join(header) + " |",
                 "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in self.cells()]
        if any(m.get("fid_reliable") is False for _, m in self.rows):
            lines += ["", "\\* FID from fewer samples than the 2,048 feature dimensions on a "
                      "side: biased upward; compare only within a table."]
        return "\n".join(lines) + "\n"

    def write_csv(self, path: Path) -> None:
        """Raw values with bootstrap intervals (the markdown rounds them)."""
        keys = [c.key for c in self.columns]
        extra = [f"{k}_{s}" for k in keys for s in ("ci_low", "ci_high")]
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["method", "n", *keys, "fid_reliable", *extra])
            for label, metrics in self.rows:
                writer.writerow(
                    [label, metrics.get("n"), *(metrics.get(k) for k in keys),
                     metrics.get("fid_reliable"), *(metrics.get(k) for k in extra)]
                )


def load_metrics(path: Path) -> dict[str, Any]:
    return json.loads((path / "metrics.json").read_text())


def build_table(title: str, rows: list[tuple[str, Path]], metric_names: Sequence[str]) -> Table:
    """A table from evaluation folders (label, folder with ``metrics.json``)."""
    return Table(title, columns_for(metric_names), [(label, load_metrics(p)) for label, p in rows])
