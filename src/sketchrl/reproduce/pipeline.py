"""Run a whole study: classifiers -> fine-tuning runs -> evaluations -> tables, figures, report.

Every step writes into its own folder under the output directory and is skipped when its
result is already there, so re-running finishes an interrupted study (a fine-tuning run
resumes from its last checkpoint).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

from sketchrl.errors import ConfigError
from sketchrl.reproduce.presets import REWARD_CLASSIFIER, Method, Preset

logger = logging.getLogger(__name__)

BASELINE = "baseline"


@dataclasses.dataclass
class StudyPaths:
    """Where each step of a study writes."""

    root: Path

    def classifier(self, role: str) -> Path:
        return self.root / "classifiers" / role

    def run(self, method: str) -> Path:
        return self.root / "runs" / method

    def evaluation(self, table: str, method: str) -> Path:
        return self.root / f"eval_{table}" / method


class Study:
    """One preset's study in one output directory."""

    def __init__(
        self,
        preset: Preset,
        out_dir: str | Path,
        *,
        device: str = "auto",
        progress: bool = True,
        clip_weights: str | None = None,
    ) -> None:
        self.preset = preset
        self.paths = StudyPaths(Path(out_dir))
        self.device = device
        self.progress = progress
        self.clip_weights = clip_weights
        self.timings: dict[str, float] = {}
        self._timings_file = self.paths.root / "timings.json"

    # -- steps ------------------------------------------------------------------------------
    def run(self) -> Path:
        """All steps; returns the path of ``report.html``."""
        from sketchrl.reproduce.report import write_report

        self.paths.root.mkdir(parents=True, exist_ok=True)
        self._save_preset()
        if self._timings_file.exists():
            self.timings = json.loads(self._timings_file.read_text())
        if self.preset.needs_reward_classifier:
            self._timed("classifier reward", self.train_classifier, "reward",
                        self.preset.reward_classifier_arch, self.preset.reward_classifier_epochs)
        self._timed("classifier eval", self.train_classifier, "eval",
                    self.preset.eval_classifier_arch, self.preset.eval_classifier_epochs)
        for method in self.training_methods():
            self._timed(f"train {method.name}", self.train_method, method)
        for name, spec in self.table1_models():
            self._timed(f"evaluate table1 {name}", self.evaluate, "table1", name, spec,
                        self.preset.n_eval)
        for method in self.preset.ablation_methods():
            self._timed(f"evaluate table2 {method.name}", self.evaluate, "table2", method.name,
                        str(self.paths.run(method.name)), self.preset.n_ablation)
        return write_report(self)

    def training_methods(self) -> list[Method]:
        """Table 1's methods, then the ablation runs that Table 1 has not already trained."""
        methods = list(self.preset.methods)
        names = {m.name for m in methods}
        methods += [m for m in self.preset.ablation_methods() if m.name not in names]
        return methods

    def table1_models(self) -> list[tuple[str, str]]:
        rows = [(BASELINE, self.preset.model)]
        rows += [(m.name, str(self.paths.run(m.name))) for m in self.preset.methods]
        return rows

    def train_classifier(self, role: str, arch: str, epochs: int | None) -> None:
        from sketchrl.classifiers import ClassifierConfig, train_classifier

        out = self.paths.classifier(role)
        if (out / "metrics.json").exists():
            return
        settings: dict[str, Any] = {
            "categories": list(self.preset.classifier_categories), "arch": arch, "subset": role,
            "seed": self.preset.seed, "device": self.device,
            "max_per_category": self.preset.classifier_max_per_category,
        }
        if epochs is not None:
            settings["epochs"] = epochs
        train_classifier(ClassifierConfig(**settings), out, progress=self.progress)

    def rl_config(self, method: Method | None = None):
        """The fine-tuning config of ``method`` (without one: the settings all runs share)."""
        from sketchrl.rl import RLConfig

        settings = method.rl_settings() if method is not None else {}
        if "reward_options" in settings:
            settings["reward_options"] = self.resolve_options(settings["reward_options"])
        preset = self.preset
        return RLConfig(model=preset.model, seed=preset.seed, device=self.device,
                        **{**preset.training, **settings})

    def train_method(self, method: Method) -> None:
        from sketchrl.rl import train

        train(self.rl_config(method), self.paths.run(method.name), resume=True,
              progress=self.progress)

    def evaluate(self, table: str, name: str, model: str, n: int) -> None:
        from sketchrl.evaluate import evaluate_model

        out = self.paths.evaluation(table, name)
        if (out / "metrics.json").exists():
            return
        preset, training = self.preset, self.rl_config()
        evaluate_model(
            model, n, reference=preset.reference, out_dir=out, temperature=training.temperature,
            seed=preset.seed + 1, max_len=training.max_len, batch_size=preset.eval_batch_size,
            device=self.device, progress=self.progress,
            classifier_dir=self.paths.classifier("eval"), target_category=preset.category,
            rewards=self.evaluation_rewards,
        )

    # -- helpers ----------------------------------------------------------------------------
    @functools.cached_property
    def evaluation_rewards(self) -> dict[str, Any]:
        """Metric name -> reward, built once and reused by every evaluation."""
        from sketchrl.rewards import build_reward

        rewards = {
            metric: build_reward(reward, self.resolve_options(dict(options)), self.device)
            for metric, reward, options in self.preset.scores
        }
        if self.preset.clip_score:
            clip = self.resolve_options(dict(self.preset.ablation.reward_options))
            rewards["clip_score"] = build_reward("clip", clip, self.device)
        return rewards

    def resolve_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Fill in the reward classifier's folder and the CLIP weights file."""
        options = dict(options)
        if options.get("model") == REWARD_CLASSIFIER:
            options["model"] = str(self.paths.classifier("reward"))
        if "pretrained" in options and self.clip_weights:
            options["weights"] = self.clip_weights
        return options

    def _timed(self, step: str, function, *args) -> None:
        started = time.perf_counter()
        function(*args)
        self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - started
        self._timings_file.write_text(json.dumps(self.timings, indent=2) + "\n")

    def _save_preset(self) -> None:
        path = self.paths.root / "preset.json"
        current = json.loads(json.dumps(dataclasses.asdict(self.preset)))
        if path.exists():
            saved = json.loads(path.read_text())
            if saved != current:
                differing = sorted(k for k in current if saved.get(k) != current.get(k))
                raise ConfigError(
                    f"{self.paths.root} holds a study with other settings "
                    f"({', '.join(differing)}); use another --out, or the same preset and "
                    "options to resume it"
                )
        path.write_text(json.dumps(current, indent=2) + "\n")


def reproduce(preset: Preset, out_dir: str | Path, **options: Any) -> Path:
    """Run (or finish) ``preset``'s study in ``out_dir``; returns the report's path."""
    return Study(preset, out_dir, **options).run()
