"""Evaluation of generated sketches: FID and KID on the FID Inception's pool features, precision /
recall / density / coverage (prdc), an independent classifier's rate, rewards with bootstrap
confidence intervals, and sketch statistics."""

from sketchrl.evaluate.bootstrap import BootstrapMean, ConfidenceInterval, bootstrap_mean_ci
from sketchrl.evaluate.evaluate import (
    DEFAULT_N,
    FID_RELIABLE_MIN_SAMPLES,
    build_evaluation_rewards,
    evaluate_model,
    evaluate_samples_file,
    evaluate_sketches,
    fid_warnings,
    render_quickdraw,
)
from sketchrl.evaluate.fid import FID, GaussianStatistics, frechet_distance
from sketchrl.evaluate.inception import (
    DEFAULT_PRECISION,
    FEATURE_DIM,
    INCEPTION_PIPELINE,
    PRECISIONS,
    InceptionFeatureExtractor,
    inception_weights_path,
    preprocess,
)
from sketchrl.evaluate.kid import KID, kernel_inception_distance
from sketchrl.evaluate.prdc_metrics import PRDC, precision_recall_density_coverage
from sketchrl.evaluate.reference import (
    ReferenceFeatures,
    bitmaps_to_ink,
    ink_to_paper,
    parse_reference,
    reference_features,
)
from sketchrl.evaluate.report import format_markdown, save_evaluation
from sketchrl.evaluate.stats import per_sketch_statistics, sketch_statistics

__all__ = [
    "DEFAULT_N",
    "DEFAULT_PRECISION",
    "FEATURE_DIM",
    "FID",
    "FID_RELIABLE_MIN_SAMPLES",
    "INCEPTION_PIPELINE",
    "KID",
    "PRDC",
    "PRECISIONS",
    "BootstrapMean",
    "ConfidenceInterval",
    "GaussianStatistics",
    "InceptionFeatureExtractor",
    "ReferenceFeatures",
    "bitmaps_to_ink",
    "bootstrap_mean_ci",
    "build_evaluation_rewards",
    "evaluate_model",
    "evaluate_samples_file",
    "evaluate_sketches",
    "fid_warnings",
    "format_markdown",
    "frechet_distance",
    "inception_weights_path",
    "kernel_inception_distance",
    "ink_to_paper",
    "parse_reference",
    "per_sketch_statistics",
    "precision_recall_density_coverage",
    "preprocess",
    "reference_features",
    "render_quickdraw",
    "save_evaluation",
    "sketch_statistics",
]
