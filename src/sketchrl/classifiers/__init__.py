"""Quick, Draw! classifiers: trained by sketchrl, used by the classifier reward and evaluation."""

from sketchrl.classifiers.config import PAPER_CATEGORIES, SUBSETS, ClassifierConfig
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
    prepare_data,
    split_category,
    subset_indices,
    train_classifier,
)

__all__ = [
    "NETWORKS",
    "PAPER_CATEGORIES",
    "SPLIT_SEED",
    "SUBSETS",
    "ClassifierConfig",
    "QuickDrawClassifier",
    "build_classifier",
    "classify_bitmaps",
    "classify_file",
    "load_classifier",
    "load_input_bitmaps",
    "prepare_data",
    "save_classifier",
    "split_category",
    "subset_indices",
    "train_classifier",
]
