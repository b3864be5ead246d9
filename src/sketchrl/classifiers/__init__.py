"""Quick, Draw! classifiers: trained by sketchrl, used by the classifier reward and evaluation.

Names are imported on first use (PEP 562): ``sketchrl.classifiers.config`` (categories,
subsets, architecture names, :class:`ClassifierConfig`) needs no torch, so the command line
can build its parser without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sketchrl.classifiers.config import (
        ARCHITECTURES,
        PAPER_CATEGORIES,
        SUBSETS,
        ClassifierConfig,
    )
    from sketchrl.classifiers.networks import NETWORKS, QuickDrawClassifier, build_classifier
    from sketchrl.classifiers.predict import (
        classify_bitmaps,
        classify_file,
        load_classifier,
        load_input_bitmaps,
        save_classifier,
    )
    from sketchrl.classifiers.training import (
        SPLIT_SEED,
        load_category_bitmaps,
        prepare_data,
        split_category,
        subset_indices,
        train_classifier,
    )

_WHERE = {
    "ARCHITECTURES": "config",
    "PAPER_CATEGORIES": "config",
    "SUBSETS": "config",
    "ClassifierConfig": "config",
    "NETWORKS": "networks",
    "QuickDrawClassifier": "networks",
    "build_classifier": "networks",
    "classify_bitmaps": "predict",
    "classify_file": "predict",
    "load_classifier": "predict",
    "load_input_bitmaps": "predict",
    "save_classifier": "predict",
    "SPLIT_SEED": "training",
    "load_category_bitmaps": "training",
    "prepare_data": "training",
    "split_category": "training",
    "subset_indices": "training",
    "train_classifier": "training",
}

__all__ = [
    "ARCHITECTURES",
    "ClassifierConfig",
    "NETWORKS",
    "PAPER_CATEGORIES",
    "QuickDrawClassifier",
    "SPLIT_SEED",
    "SUBSETS",
    "build_classifier",
    "classify_bitmaps",
    "classify_file",
    "load_category_bitmaps",
    "load_classifier",
    "load_input_bitmaps",
    "prepare_data",
    "save_classifier",
    "split_category",
    "subset_indices",
    "train_classifier",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
