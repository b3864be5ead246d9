"""Configuration of a Quick, Draw! classifier training run."""

from __future__ import annotations

import dataclasses

from sketchrl.config import Config
from sketchrl.errors import ConfigError

#: The paper's five classes: CLIP's positive prompt (owl) and its four negatives.
PAPER_CATEGORIES = ("owl", "cat", "dog", "bird", "fish")
#: Disjoint halves of every category's bitmaps: the reward classifier and the independent
#: evaluation classifier never see the same drawing.
SUBSETS = ("reward", "eval")
#: Names of the networks (``sketchrl.classifiers.networks.NETWORKS`` has a factory for each);
#: kept here so that the config and the command line need no torch.
ARCHITECTURES = ("resnet18", "cnn")


@dataclasses.dataclass
class ClassifierConfig(Config):
    """Everything that defines a classifier training run (saved as ``classifier_config.json``)."""

    # Categories, in the order of the classifier's outputs; each needs a
    # `quickdraw:<category>/numpy_bitmap` asset.
    categories: list[str] = dataclasses.field(default_factory=lambda: list(PAPER_CATEGORIES))
    # "cnn" (a small network: about 10 s per epoch of the offline mirror's data on 2 CPU
    # cores) or "resnet18" (torchvision ResNet18 adapted to 1x28x28, the paper's evaluation
    # classifier: about 150 s per epoch there; use a GPU or fewer epochs).
    arch: str = "cnn"
    # Which half of each category's bitmaps to use: "reward" or "eval" (disjoint).
    subset: str = "reward"
    # Fraction of the subset (per category) held out to measure accuracy; never trained on.
    holdout_fraction: float = 0.1
    # Passes over the training bitmaps (cnn on the offline mirror, held-out accuracy:
    # 3 epochs 0.81, 6 epochs 0.83, 12 epochs 0.84).
    epochs: int = 10
    # Bitmaps per optimiser step.
    batch_size: int = 128
    # Peak learning rate of AdamW (one-cycle schedule).
    lr: float = 2e-3
    # Seed of weight initialisation, batch order and augmentation (not of the data split).
    seed: int = 0
    # Use at most this many bitmaps of each category (training + held-out); None = all.
    max_per_category: int | None = None
    # Random shifts and scales of the training bitmaps.
    augment: bool = True
    # Torch device: "cpu", "cuda[:N]" or "auto" (cuda when available).
    device: str = "auto"

    def __post_init__(self) -> None:
        self.categories = [str(c).strip() for c in self.categories]
        if len(self.categories) < 2 or any(not c for c in self.categories):
            raise ConfigError(
                f"categories={self.categories!r}: give at least two non-empty category names, "
                "e.g. owl,cat,dog,bird,fish"
            )
        if len(set(self.categories)) != len(self.categories):
            raise ConfigError(f"categories={self.categories!r}: each category only once")
        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"unknown arch {self.arch!r}; valid: {', '.join(ARCHITECTURES)}")
        if self.subset not in SUBSETS:
            raise ConfigError(f"unknown subset {self.subset!r}; valid: {', '.join(SUBSETS)}")
        checks = [
            (0 < self.holdout_fraction < 0.5, "holdout_fraction must be in (0, 0.5)"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 2, "batch_size must be >= 2 (batch norm needs two bitmaps)"),
            (self.lr > 0, "lr must be > 0"),
            (
                self.max_per_category is None or self.max_per_category >= 4,
                "max_per_category must be >= 4 (or None for all bitmaps)",
            ),
            (
                self.device in ("auto", "cpu") or self.device.startswith("cuda"),
                "device must be auto, cpu or cuda[:N]",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"ClassifierConfig: {message}")
