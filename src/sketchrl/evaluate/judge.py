"""The independent judge: the evaluation classifier's rate of the target category."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchrl.errors import ConfigError
from sketchrl.evaluate.inception import check_precision
from sketchrl.evaluate.workers import map_batches

_CLASSIFIER_BATCH = 128  # per CPU worker thread
_GPU_CLASSIFIER_BATCH = 1024


def load_evaluation_classifier(
    classifier_dir: str | Path, target: str, device: str | torch.device | None
) -> tuple[Any, int]:
    """The independent classifier and the index of ``target`` among its categories."""
    from sketchrl.classifiers import load_classifier

    classifier = load_classifier(classifier_dir, device=device)
    if target not in classifier.categories:
        raise ConfigError(
            f"category {target!r} is not one of the classifier's categories "
            f"({', '.join(classifier.categories)}); pass --category with one of them"
        )
    return classifier, classifier.categories.index(target)


def classifier_hits(
    classifier: Any, target_index: int, ink: torch.Tensor, precision: str = "fp32"
) -> np.ndarray:
    """Whether the classifier's argmax is ``target_index``, per ``(B, 1, 28, 28)`` ink bitmap.

    ``precision="bf16"`` runs it under bf16 autocast (AMX / tensor cores), channels-last. On
    CPU, batches run in worker threads (:func:`~sketchrl.evaluate.workers.map_batches`).
    """
    check_precision(precision)
    device = classifier.device
    fast = precision == "bf16" and device.type in ("cpu", "cuda")
    if fast:
        classifier.to(memory_format=torch.channels_last)

    def predict(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=fast):
            return classifier.predict_proba(batch, ink=1).argmax(dim=1).cpu()

    size = _CLASSIFIER_BATCH if device.type == "cpu" else _GPU_CLASSIFIER_BATCH
    batches = [ink[start : start + size] for start in range(0, len(ink), size)]
    workers = None if device.type == "cpu" else 1
    predictions = list(map_batches(predict, batches, workers))
    if not predictions:
        return np.zeros(0, dtype=bool)
    return (torch.cat(predictions) == target_index).numpy()
