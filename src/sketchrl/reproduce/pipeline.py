"""Run a whole study: a graph of steps (classifiers -> fine-tuning runs -> evaluations) handed to
an executor, then tables, figures and the report.

Every step writes into its own folder under the output directory and is skipped when its result
is already there, so re-running finishes an interrupted study (a fine-tuning run resumes from its
last checkpoint); nothing that finished is recomputed, whichever executor runs the steps.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from pathlib import Path
from typing import Any

from sketchrl.errors import ConfigError
from sketchrl.reproduce import steps as study_steps
from sketchrl.reproduce.environment import write_environment
from sketchrl.reproduce.preflight import preflight
from sketchrl.reproduce.presets import REWARD_CLASSIFIER, TARGET, Method, Preset, Task

logger = logging.getLogger(__name__)

BASELINE = "baseline"
#: Offset of the evaluation sampling seeds from the training seeds (never the same numbers).
EVAL_SEED_OFFSET = 1000


#: Preset fields the classifiers are made from: ``--update`` cannot change them.
CLASSIFIER_SETTINGS = {"classifier_categories", "reward_classifier_arch", "eval_classifier_arch",
                       "reward_classifier_epochs", "eval_classifier_epochs",
                       "classifier_max_per_category", "seed"}


@dataclasses.dataclass
class StudyPaths:
    """Where each step writes (absolute: Ray workers on other nodes have another cwd)."""

    root: Path

    def classifier(self, role: str) -> Path:
        return self.root / "classifiers" / role

    def run(self, task: str, method: str, seed: int) -> Path:
        return self.root / "runs" / task / method / f"seed{seed}"

    def evaluation(self, task: str, method: str, seed: int) -> Path:
        return self.root / "evals" / task / method / f"seed{seed}"


class Study:
    """One preset's study in one output directory.

    Args:
        executor: ``local`` or ``ray`` (see :mod:`sketchrl.reproduce.executors`).
        workers: parallel steps of the local executor (default: cores // threads).
        address: the Ray cluster (None: a local Ray instance).
        threads: torch threads of every step (fixed and recorded: results depend on it).
        precision: Inception precision of the evaluations (``bf16`` or ``fp32``).
        update: resume a study whose preset changed (:meth:`check_out_dir`): finished runs
            must still hold what the study asks (:meth:`check_finished_runs`); evaluations
            are always redone when their model or settings changed.
    """

    def __init__(self, preset: Preset, out_dir: str | Path, *, device: str = "cpu",
                 progress: bool = True, clip_weights: str | None = None,
                 executor: str = "local", workers: int | None = None,
                 address: str | None = None, threads: int = 1,
                 precision: str = "bf16", update: bool = False) -> None:
        if threads < 1:
            raise ConfigError(f"--threads {threads}: use at least 1")
        self.preset = preset
        self.paths = StudyPaths(Path(out_dir).resolve())
        self.device, self.progress, self.clip_weights = device, progress, clip_weights
        self.executor_name, self.workers, self.address = executor, workers, address
        self.threads, self.precision, self.update = threads, precision, update

    # -- what the study runs ----------------------------------------------------------------
    def seeds(self, count: int | None = None) -> list[int]:
        return [self.preset.seed + k for k in range(count or self.preset.seeds)]

    def runs(self) -> list[tuple[Task, Method, int]]:
        """Every fine-tuning run: task x method x seed, then the sweeps' own runs."""
        preset, runs = self.preset, []
        for task in preset.tasks:
            runs += [(task, m, s) for m in preset.trained_methods for s in self.seeds()]
            for sweep in preset.sweeps:
                for _, method in preset.sweep_methods(sweep, task.name):
                    runs += [(task, method, s) for s in self.seeds(sweep.seeds)
                             if (task, method, s) not in runs]
        return runs

    def soups(self) -> list[tuple[Task, Method, int]]:
        """Every soup: task x soup method x seed (each mixes two runs of its seed)."""
        return [(task, method, seed) for task in self.preset.tasks
                for method in self.preset.methods if method.soup is not None
                for seed in self.seeds()]

    def rl_config(self, task: Task, method: Method | None = None, seed: int | None = None):
        """The fine-tuning config of ``method`` on ``task`` (without one: the shared settings)."""
        from sketchrl.rl import RLConfig

        settings: dict[str, Any] = {"reward": task.reward,
                                    "reward_options": dict(task.reward_options)}
        settings.update(self.preset.training_settings)
        if method is not None:
            settings.update(method.settings_for(task.name))
        settings["reward_options"] = self.resolve_options(dict(settings["reward_options"]), task)
        return RLConfig(model=self.preset.model,
                        seed=self.preset.seed if seed is None else seed,
                        device=self.device, **settings)

    def resolve_options(self, options: dict[str, Any], task: Task) -> dict[str, Any]:
        """Fill in the reward classifier's folder, the task's target, the CLIP weights."""
        options = {key: (task.target if value == TARGET else value)
                   for key, value in options.items()}
        if options.get("model") == REWARD_CLASSIFIER:
            options["model"] = str(self.paths.classifier("reward"))
        if "pretrained" in options and self.clip_weights:
            options["weights"] = self.clip_weights
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in options.items()}

    def evaluation_rewards(self, task: Task) -> list[tuple[str, str, dict[str, Any]]]:
        """``(metric, reward, options)`` of every evaluation of ``task``: the task's own reward
        (``reward_score``), the preset's scores and CLIP when measured."""
        rewards = [("reward_score", task.reward, self.resolve_options(dict(task.reward_options),
                                                                       task))]
        rewards += [(metric, name, self.resolve_options(dict(options), task))
                    for metric, name, options in self.preset.scores]
        if self.preset.clip_score and task.reward != "clip":
            raise ConfigError("clip_score needs a task whose reward is clip")
        return rewards

    # -- the steps ----------------------------------------------------------------------------
    def steps(self) -> list:
        """The study as a list of executor steps."""
        from sketchrl.reproduce.executors import Step

        preset, single = self.preset, self.effective_workers() == 1
        progress = self.progress and single and self.executor_name == "local"
        common = {"threads": self.threads, "progress": progress}
        result, classifier_keys = [], []
        for role, arch, epochs in (("reward", preset.reward_classifier_arch,
                                    preset.reward_classifier_epochs),
                                   ("eval", preset.eval_classifier_arch,
                                    preset.eval_classifier_epochs)):
            if role == "reward" and not preset.needs_reward_classifier:
                continue
            out = self.paths.classifier(role)
            settings = {"categories": list(preset.classifier_categories), "arch": arch,
                        "subset": role, "seed": preset.seed, "device": self.device,
                        "max_per_category": preset.classifier_max_per_category}
            if epochs is not None:
                settings["epochs"] = epochs
            result.append(Step(f"classifier-{role}", study_steps.train_classifier_step,
                               {"out": str(out), "settings": settings, **common},
                               done=out / "metrics.json", cpus=self.threads))
            classifier_keys.append(f"classifier-{role}")
        reward_deps = ["classifier-reward"] if "classifier-reward" in classifier_keys else []
        for task, method, seed in self.runs():
            out = self.paths.run(task.name, method.name, seed)
            config = self.rl_config(task, method, seed).to_dict()
            result.append(Step(f"train-{task.name}-{method.name}-s{seed}", study_steps.train_step,
                               {"out": str(out), "config": config, **common},
                               done=out / "DONE", deps=reward_deps, cpus=self.threads))
        for task, method, seed in self.soups():
            result.append(self.soup_step(task, method, seed, common))
        pending = {step.key for step in result if not step.is_done()}
        for task, name, seed, model, n, deps in self.evaluations():
            deps = [*classifier_keys, *deps]
            result.append(self.evaluation_step(task, name, seed, model, n, deps, common,
                                               redo=bool(pending.intersection(deps))))
        return result

    def soup_step(self, task: Task, method: Method, seed: int, common: dict[str, Any]):
        """The step that mixes ``method``'s two runs of ``seed`` on ``task``."""
        from sketchrl.reproduce.executors import Step

        soup = method.soup
        out = self.paths.run(task.name, method.name, seed)
        kwargs = {"out": str(out), "weight": soup.weight_for(task.name),
                  "base": str(self.paths.run(task.name, soup.base, seed)),
                  "other": str(self.paths.run(task.name, soup.other, seed)),
                  "threads": common["threads"]}
        return Step(f"train-{task.name}-{method.name}-s{seed}", study_steps.soup_step, kwargs,
                    done=out / "DONE", cpus=self.threads,
                    deps=[f"train-{task.name}-{name}-s{seed}" for name in (soup.base,
                                                                             soup.other)])

    def evaluations(self) -> list[tuple[Task, str, int, str, int, list[str]]]:
        """``(task, method name, seed, model, n, deps)`` of every evaluation (the baseline with
        every seed's sampling seed, then each run)."""
        preset, result = self.preset, []
        sweep_runs = {(t.name, m.name, s) for t, m, s in self.runs()} - {
            (t.name, m.name, s) for t in preset.tasks for m in preset.methods for s in self.seeds()}
        for task in preset.tasks:
            result += [(task, BASELINE, s, preset.model, preset.n_eval, [])
                       for s in self.seeds()]
            for t, method, seed in self.runs() + self.soups():
                if t != task:
                    continue
                n = preset.n_sweep if (task.name, method.name, seed) in sweep_runs \
                    else preset.n_eval
                result.append((task, method.name, seed,
                               str(self.paths.run(task.name, method.name, seed)), n,
                               [f"train-{task.name}-{method.name}-s{seed}"]))
        return result

    def evaluation_step(self, task: Task, name: str, seed: int, model: str, n: int,
                        deps: list[str], common: dict[str, Any], redo: bool = False):
        """The evaluation of ``model``; ``redo`` when what it evaluates is (re)made in this
        invocation (an existing evaluation of it is stale)."""
        from sketchrl.reproduce.executors import Step

        shared = self.rl_config(task)
        out = self.paths.evaluation(task.name, name, seed)
        temperature = {"value": shared.temperature, "pen": shared.pen_temperature,
                       "semantics": shared.temperature_semantics}
        kwargs = {
            "out": str(out), "model": model, "n": n, "reference": task.reference,
            "temperature": temperature, "max_len": shared.max_len,
            "seed": EVAL_SEED_OFFSET + seed, "batch_size": self.preset.eval_batch_size,
            "classifier_dir": str(self.paths.classifier("eval")), "target": task.target,
            "rewards": self.evaluation_rewards(task), "device": self.device,
            "precision": self.precision, "redo": redo, **common,
        }
        # Done when it evaluated this very model with these settings.
        done = None if redo else functools.partial(
            study_steps.evaluation_is_current, str(out), model, n, task.reference,
            kwargs["seed"], shared.max_len)
        return Step(f"eval-{task.name}-{name}-s{seed}", study_steps.evaluate_step, kwargs,
                    done=done, deps=deps, cpus=self.threads)

    # -- running ----------------------------------------------------------------------------
    def effective_workers(self) -> int:
        from sketchrl.reproduce.executors.base import available_cores

        if self.executor_name != "local":
            return 1
        return self.workers or max(1, available_cores() // self.threads)

    def executor(self):
        from sketchrl.reproduce.executors import get_executor

        options: dict[str, Any] = {"progress": self.progress}
        if self.executor_name == "local":
            options["workers"] = self.effective_workers()
        elif self.address is not None:
            options["address"] = self.address
        return get_executor(self.executor_name, **options)

    def run(self) -> Path:
        """Check everything, run every step that is not done, write the report; returns the
        path of ``report.html``. Bad input fails before anything is written."""
        from sketchrl.reproduce.report import write_report

        steps = self.steps()
        self.check_out_dir()
        if self.update:
            self.check_finished_runs(steps)
        preflight(self)
        with self.executor() as executor:
            self.paths.root.mkdir(parents=True, exist_ok=True)
            self.save_preset()
            write_environment(self.paths.root, self)
            timings = fresh_timings(self.load_timings(), steps)

            def record(key: str, seconds: float) -> None:
                timings[key] = timings.get(key, 0.0) + seconds
                (self.paths.root / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")

            executor.run(steps, on_step_done=record)
        return write_report(self)

    def load_timings(self) -> dict[str, float]:
        path = self.paths.root / "timings.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def preset_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self.preset)))

    def check_out_dir(self) -> None:
        """The output folder is new, or holds this very study (same preset and options)."""
        path = self.paths.root / "preset.json"
        if self.paths.root.exists() and not self.paths.root.is_dir():
            raise ConfigError(f"--out {self.paths.root} is a file; choose a folder")
        if path.exists():
            saved, current = json.loads(path.read_text()), self.preset_json()
            differing = sorted(k for k in current if saved.get(k) != current.get(k))
            if differing and not self.update:
                raise ConfigError(
                    f"{self.paths.root} holds a study with other settings "
                    f"({', '.join(differing)}); use another --out, the same preset and "
                    "options to resume it, or --update to redo only what changed"
                )
            classifiers = sorted(set(differing) & CLASSIFIER_SETTINGS)
            if classifiers:
                raise ConfigError(f"--update: the classifiers' settings changed "
                                  f"({', '.join(classifiers)}), and every step depends on "
                                  "them; use another --out")
        elif self.paths.root.exists() and any(self.paths.root.iterdir()):
            raise ConfigError(f"--out {self.paths.root} is not empty and holds no sketchrl "
                              "study; choose an empty or new folder")

    def check_finished_runs(self, steps: list) -> None:
        """With ``update``: every finished run and soup still holds what its step asks."""
        stale = []
        for step in steps:
            if step.fn is study_steps.train_step:
                differing = study_steps.run_differences(step.kwargs["out"], step.kwargs["config"])
            elif step.fn is study_steps.soup_step:
                differing = study_steps.soup_differences(**step.kwargs)
            else:
                continue
            if differing:
                stale.append(f"{step.kwargs['out']} ({', '.join(differing)})")
        if stale:
            raise ConfigError(f"--update: {len(stale)} finished run(s) differ from what the "
                              f"study asks now: {'; '.join(stale)}; delete them to make them "
                              "again (their evaluations follow), or use another --out")

    def save_preset(self) -> None:
        path = self.paths.root / "preset.json"
        path.write_text(json.dumps(self.preset_json(), indent=2) + "\n")


def fresh_timings(timings: dict[str, float], steps: list) -> dict[str, float]:
    """The recorded step times, less those of steps that start again from nothing (their output
    folder removed, or an evaluation to redo): a resumed step adds to its time, a recomputed
    one starts from zero."""
    starting_over = {step.key for step in steps if "out" in step.kwargs and not step.is_done()
                     and (not Path(step.kwargs["out"]).exists()
                          or step.fn is study_steps.evaluate_step)}
    return {key: seconds for key, seconds in timings.items() if key not in starting_over}


def reproduce(preset: Preset, out_dir: str | Path, **options: Any) -> Path:
    """Run (or finish) ``preset``'s study in ``out_dir``; returns the report's path."""
    return Study(preset, out_dir, **options).run()
