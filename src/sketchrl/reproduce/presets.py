"""The studies ``sketchrl reproduce`` runs: the paper's, and its offline counterpart.

A preset names the model, the rewards of each method, the evaluation, and the sizes. ``quick``
shrinks any preset to toy sizes that exercise the same pipeline in a few minutes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sketchrl.errors import ConfigError

#: The classifier classes of the paper (the same five as its CLIP prompts).
PAPER_CATEGORIES = ("owl", "cat", "dog", "bird", "fish")
#: The discount factors of the paper's Table 2.
ABLATION_GAMMAS = (1.0, 0.95, 0.9, 0.75, 0.5, 0.25)
#: Placeholder in reward options for the reward classifier trained by the pipeline.
REWARD_CLASSIFIER = "{reward_classifier}"


@dataclasses.dataclass(frozen=True)
class Method:
    """One fine-tuning method: a reward and its sparse or dense form."""

    name: str  # folder name, e.g. "classifier_dense"
    label: str  # row label in the tables, e.g. "classifier (dense)"
    reward: str
    reward_options: dict[str, Any]
    dense_every: int = 0
    gamma: float = 1.0

    def rl_settings(self) -> dict[str, Any]:
        return {"reward": self.reward, "reward_options": dict(self.reward_options),
                "dense_every": self.dense_every, "gamma": self.gamma}


@dataclasses.dataclass(frozen=True)
class Preset:
    """A whole study: baseline + methods (Table 1), then the discount ablation (Table 2)."""

    name: str
    description: str
    model: str  # the pretrained policy
    category: str  # the target category
    methods: tuple[Method, ...]  # Table 1 rows after the baseline
    ablation: Method  # the dense method whose gamma Table 2 varies
    gammas: tuple[float, ...] = ABLATION_GAMMAS
    # Fine-tuning settings that differ from RLConfig's defaults (the paper's values).
    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Evaluation.
    n_eval: int = 2000
    n_ablation: int = 500
    eval_batch_size: int = 250
    clip_score: bool = False  # measure the CLIP score (needs CLIP weights)
    # Metric name -> (reward, options) measured on every method's samples.
    scores: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...] = ()
    # Classifiers: the reward one (if a method uses it) and the independent evaluation one.
    classifier_categories: tuple[str, ...] = PAPER_CATEGORIES
    reward_classifier_arch: str = "cnn"
    eval_classifier_arch: str = "resnet18"
    reward_classifier_epochs: int | None = None  # None: ClassifierConfig's default
    eval_classifier_epochs: int | None = None
    classifier_max_per_category: int | None = None
    seed: int = 0

    @property
    def reference(self) -> str:
        return f"quickdraw:{self.category}"

    @property
    def score_metrics(self) -> list[str]:
        """Names of the reward metrics every evaluation measures (CLIP last when measured)."""
        return [name for name, _, _ in self.scores] + (["clip_score"] if self.clip_score else [])

    @property
    def needs_reward_classifier(self) -> bool:
        uses = [m.reward_options.get("model") for m in (*self.methods, self.ablation)]
        uses += [dict(options).get("model") for _, _, options in self.scores]
        return REWARD_CLASSIFIER in uses

    def ablation_methods(self) -> list[Method]:
        """One dense method per gamma; the one equal to Table 1's dense run reuses that run."""
        methods = []
        for gamma in self.gammas:
            method = dataclasses.replace(
                self.ablation, name=f"{self.ablation.name}_gamma_{gamma:g}",
                label=f"{self.ablation.label}, gamma={gamma:g}", gamma=gamma,
            )
            methods.append(self.table1_twin(method) or method)
        return methods

    def table1_twin(self, method: Method) -> Method | None:
        """The Table 1 method that is the same training run as ``method``, if any."""
        for candidate in self.methods:
            if candidate.rl_settings() == method.rl_settings():
                return dataclasses.replace(candidate, label=method.label)
        return None


def offline_preset() -> Preset:
    """The paper with bird for owl: runs here, without network or CLIP weights."""
    ssim_options = {"target": "quickdraw:bird/simplified", "target_index": 0}
    classifier_options = {"model": REWARD_CLASSIFIER, "category": "bird"}
    dense = Method("classifier_dense", "classifier (dense)", "classifier", classifier_options,
                   dense_every=25)
    return Preset(
        name="offline",
        description=(
            "The real pretrained Magenta bird decoder fine-tuned with SSIM to a real bird "
            "drawing and with P(bird) under a Quick, Draw! classifier (owl/cat/dog/bird/fish: the "
            "offline stand-in for CLIP's five prompts), sparse and dense; FID / precision / "
            "recall against real Quick, Draw! birds; an independent ResNet18 classifier."
        ),
        model="sketchrnn:bird",
        category="bird",
        methods=(
            Method("ssim_sparse", "SSIM (sparse)", "ssim", ssim_options),
            Method("classifier_sparse", "classifier (sparse)", "classifier", classifier_options),
            dense,
        ),
        ablation=dense,
        # Sized so that the whole preset finishes in about 30 minutes on 2 CPU cores: 100
        # batches per run instead of 312, with a 3x larger step to compensate.
        training={"episodes": 1600, "lr": 3e-5},
        n_eval=500,
        n_ablation=250,
        scores=(
            ("reward_classifier_score", "classifier",
             (("model", REWARD_CLASSIFIER), ("category", "bird"))),
            ("ssim_score", "ssim", tuple(ssim_options.items())),
        ),
        # ResNet18 trains slowly on a CPU: 2 epochs reach about 0.80 held-out accuracy.
        eval_classifier_epochs=2,
    )


def paper_preset() -> Preset:
    """The paper as published: owl model, CLIP rewards, n = 2,000 / 500 (needs CLIP weights)."""
    clip_options = {"model_name": "ViT-B-32", "pretrained": "openai", "category": "owl",
                    "negatives": ["cat", "dog", "bird", "fish"]}
    dense = Method("clip_dense", "CLIP (dense)", "clip", clip_options, dense_every=25)
    return Preset(
        name="paper",
        description=(
            "SketchRL as published: the Magenta owl model fine-tuned with SSIM to one owl "
            "drawing and with CLIP ViT-B/32 (P('a sketch of an owl') against cat/dog/bird/fish), "
            "sparse and dense; FID / precision / recall against real Quick, Draw! owls."
        ),
        model="sketchrnn:owl",
        category="owl",
        methods=(
            Method("clip_sparse", "CLIP (sparse)", "clip", clip_options),
            Method("ssim_sparse", "SSIM (sparse)", "ssim",
                   {"target": "quickdraw:owl/simplified", "target_index": 0}),
            dense,
        ),
        ablation=dense,
        clip_score=True,
    )


PRESETS = {"offline": offline_preset, "paper": paper_preset}


def get_preset(
    name: str, *, quick: bool = False, training: dict[str, Any] | None = None, **changes: Any
) -> Preset:
    """A preset by name, shrunk to toy sizes with ``quick``, with ``training`` settings (RLConfig
    keys) and field ``changes`` applied (None values are ignored)."""
    try:
        preset = PRESETS[name]()
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}") from None
    if quick:
        toy = {"episodes": 3 * 4, "batch_size": 4, "warmup_batches": 1, "max_len": 40, "lr": 1e-4}
        preset = dataclasses.replace(
            preset, training={**preset.training, **toy}, n_eval=24, n_ablation=16,
            eval_batch_size=24, reward_classifier_epochs=1, eval_classifier_epochs=1,
            classifier_max_per_category=120, eval_classifier_arch="cnn",
        )
    changes = {key: value for key, value in changes.items() if value is not None}
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(Preset)})
    if unknown:
        raise ConfigError(f"unknown preset setting(s) {', '.join(unknown)}")
    training = {key: value for key, value in (training or {}).items() if value is not None}
    return dataclasses.replace(preset, training={**preset.training, **training}, **changes)
