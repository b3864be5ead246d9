"""Train a Quick, Draw! classifier on ``numpy_bitmap`` drawings and measure it on held-out ones.

Data: every category's bitmaps are shuffled with a fixed seed (``SPLIT_SEED``, independent of
the training seed) and cut into two halves; ``subset="reward"`` uses the first half and
``subset="eval"`` the second, so a reward classifier and the independent evaluation classifier
never share a drawing. Within a subset, the last ``holdout_fraction`` of each category (at
least one bitmap) is held out and never trained on.

Class imbalance (the offline mirror has owl 800, cat 4,000, fish 2,500, bird 3,000, dog 3,000):
the cross-entropy is weighted by inverse class frequency, so every category weighs the same in
the loss and the classifier's implicit prior is uniform (a reward "probability of bird" is not
inflated by birds being common); ``max_per_category`` can also cap the counts. Held-out
results report plain accuracy, balanced accuracy (mean of the per-class accuracies) and each
class's accuracy.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.nn.modules.batchnorm import _BatchNorm
from tqdm.auto import tqdm

from sketchrl.classifiers.config import ClassifierConfig
from sketchrl.classifiers.networks import QuickDrawClassifier, build_classifier
from sketchrl.classifiers.predict import save_classifier
from sketchrl.devices import resolve_device

logger = logging.getLogger(__name__)

#: Seed of the reward/eval halves and of the held-out split; never change it, or a reward and
#: an evaluation classifier trained at different times could share drawings.
SPLIT_SEED = 20_240_611


def subset_indices(count: int, subset: str) -> np.ndarray:
    """Indices (in a fixed shuffled order) of the ``subset`` half of ``count`` bitmaps."""
    order = np.random.default_rng(SPLIT_SEED).permutation(count)
    half = count // 2
    return order[:half] if subset == "reward" else order[half:]


def split_category(
    count: int, subset: str, holdout_fraction: float, max_per_category: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(train, held_out)`` indices of one category's ``count`` bitmaps."""
    indices = subset_indices(count, subset)[:max_per_category]
    if len(indices) < 2:
        raise ValueError(f"{count} bitmaps leave fewer than 2 in the {subset!r} half")
    held_out = min(len(indices) - 1, max(1, round(holdout_fraction * len(indices))))
    return indices[:-held_out], indices[-held_out:]


@dataclasses.dataclass
class ClassifierData:
    """Training and held-out bitmaps (uint8, ``(N, 1, 28, 28)``, ink 255) with labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    held_out_x: torch.Tensor
    held_out_y: torch.Tensor

    def train_counts(self, num_classes: int) -> list[int]:
        return torch.bincount(self.train_y, minlength=num_classes).tolist()


def load_category_bitmaps(category: str, *, progress: bool = False) -> np.ndarray:
    """All ``numpy_bitmap`` drawings of a category, ``(N, 28, 28)`` uint8 (fetched if needed)."""
    from sketchrl.assets import resolve
    from sketchrl.data import load_bitmaps

    return load_bitmaps(resolve(f"quickdraw:{category}/numpy_bitmap", progress=progress))


def prepare_data(config: ClassifierConfig, *, progress: bool = False) -> ClassifierData:
    """Load every category and split it into the subset's training and held-out parts."""
    train_x, train_y, held_x, held_y = [], [], [], []
    for label, category in enumerate(config.categories):
        bitmaps = load_category_bitmaps(category, progress=progress)
        train, held_out = split_category(
            len(bitmaps), config.subset, config.holdout_fraction, config.max_per_category
        )
        train_x.append(torch.from_numpy(bitmaps[np.sort(train)]))
        train_y.append(torch.full((len(train),), label, dtype=torch.long))
        held_x.append(torch.from_numpy(bitmaps[np.sort(held_out)]))
        held_y.append(torch.full((len(held_out),), label, dtype=torch.long))
    return ClassifierData(
        train_x=torch.cat(train_x).unsqueeze(1),
        train_y=torch.cat(train_y),
        held_out_x=torch.cat(held_x).unsqueeze(1),
        held_out_y=torch.cat(held_y),
    )


def inverse_frequency_weights(counts: Sequence[int]) -> torch.Tensor:
    """Loss weights ``mean(counts) / count_c``: every class contributes equally."""
    counts_tensor = torch.tensor(counts, dtype=torch.float32).clamp(min=1)
    return counts_tensor.mean() / counts_tensor


def augment(
    images: torch.Tensor, generator: torch.Generator, *, max_shift: float = 2.0,
    scale_range: tuple[float, float] = (0.85, 1.1),
) -> torch.Tensor:
    """Random per-image scale and shift (``max_shift`` pixels) of an ink-1 float batch."""
    batch, _, height, _ = images.shape
    scale = torch.empty(batch).uniform_(*scale_range, generator=generator)
    shift = (torch.rand(batch, 2, generator=generator) * 2 - 1) * (2 * max_shift / height)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = 1 / scale
    theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = shift
    theta = theta.to(images.device)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def recalibrate_batch_norm(
    classifier: QuickDrawClassifier, images: torch.Tensor, *, batch_size: int = 256,
    max_images: int = 4096,
) -> None:
    """Set batch-norm running statistics to exact averages over (up to ``max_images``) bitmaps.

    The running averages of a short training run still remember their initial values, which
    makes eval-mode predictions poor; one forward pass without gradient fixes that.
    """
    norms = [m for m in classifier.modules() if isinstance(m, _BatchNorm)]
    if not norms:
        return
    was_training = classifier.training
    saved_momentum = [m.momentum for m in norms]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # cumulative average
    classifier.train()
    with torch.no_grad():
        for start in range(0, min(len(images), max_images), batch_size):
            batch = images[start : start + batch_size].to(classifier.device).float() / 255.0
            if len(batch) > 1:
                classifier(batch)
    for module, momentum in zip(norms, saved_momentum, strict=True):
        module.momentum = momentum
    classifier.train(was_training)


def held_out_metrics(
    classifier: QuickDrawClassifier, images: torch.Tensor, labels: torch.Tensor,
    batch_size: int = 512,
) -> dict:
    """Accuracy, balanced accuracy and per-class accuracy of uint8 bitmaps."""
    predictions = torch.cat(
        [
            classifier.predict_proba(images[start : start + batch_size]).argmax(1).cpu()
            for start in range(0, len(images), batch_size)
        ]
    )
    correct = predictions == labels
    per_class = {
        category: float(correct[labels == label].float().mean())
        for label, category in enumerate(classifier.categories)
    }
    return {
        "held_out_accuracy": float(correct.float().mean()),
        "held_out_balanced_accuracy": float(np.mean(list(per_class.values()))),
        "held_out_per_class_accuracy": per_class,
        "held_out_count": len(labels),
    }


def _fit(classifier: torch.nn.Module, data: ClassifierData, loss_weights: torch.Tensor,
         config: ClassifierConfig, generator: torch.Generator, progress: bool) -> None:
    """``config.epochs`` of AdamW under a one-cycle schedule, class-weighted cross-entropy."""
    device = loss_weights.device
    steps_per_epoch = math.ceil(len(data.train_y) / config.batch_size)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=config.lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    bar = tqdm(total=config.epochs * steps_per_epoch, disable=not progress, desc="classifier")
    classifier.train()
    for epoch in range(config.epochs):
        order = torch.randperm(len(data.train_y), generator=generator)
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            if len(batch) < 2:  # batch norm cannot train on a single bitmap
                schedule.step()
                bar.update()
                continue
            images = data.train_x[batch].to(device).float() / 255.0
            if config.augment:
                images = augment(images, generator)
            loss = F.cross_entropy(classifier(images), data.train_y[batch].to(device), loss_weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    bar.close()


def train_classifier(
    config: ClassifierConfig, out_dir: str | Path, progress: bool = True
) -> dict:
    """Train, measure on the held-out bitmaps and save to ``out_dir``; returns the metrics.

    Writes ``classifier.safetensors``, ``classifier_config.json`` and ``metrics.json``
    (existing files of those names are replaced; nothing else is touched). The folder and the
    device are checked before any work.
    """
    from sketchrl.data.common import writable_directory

    started = time.perf_counter()
    writable_directory(out_dir)
    device = resolve_device(config.device, default="auto")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    data = prepare_data(config, progress=progress)
    num_classes = len(config.categories)
    classifier = build_classifier(config.arch, config.categories).to(device)
    counts = data.train_counts(num_classes)
    logger.info("training %s on %d bitmaps (%s)", config.arch, len(data.train_y), counts)
    _fit(classifier, data, inverse_frequency_weights(counts).to(device), config, generator,
         progress)
    shuffled = data.train_x[torch.randperm(len(data.train_y), generator=generator)]
    recalibrate_batch_norm(classifier, shuffled)
    metrics = held_out_metrics(classifier, data.held_out_x, data.held_out_y)
    metrics.update(
        arch=config.arch,
        subset=config.subset,
        categories=list(config.categories),
        train_count=len(data.train_y),
        train_per_class=dict(zip(config.categories, counts, strict=True)),
        epochs=config.epochs,
        train_seconds=round(time.perf_counter() - started, 2),
        device=str(device),
    )
    save_classifier(classifier, config, out_dir, metrics=metrics)
    logger.info("held-out accuracy %.4f", metrics["held_out_accuracy"])
    return metrics
