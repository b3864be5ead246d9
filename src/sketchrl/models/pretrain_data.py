"""The data of pretraining: train / valid splits of stroke-3 files, datasets and batches."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from sketchrl.data import StrokeDataset, load_ndjson_stroke3, load_sketchrnn_npz
from sketchrl.errors import ConfigError, DataError
from sketchrl.models.config import SketchRNNConfig


@dataclasses.dataclass
class Splits:
    """Stroke-3 training and validation sketches (pixels, before normalisation)."""

    train: list[np.ndarray]
    valid: list[np.ndarray]


def _resolve_data(spec: str) -> Path:
    path = Path(spec).expanduser()
    if path.exists():
        return path
    if ":" in spec:
        from sketchrl.assets import resolve

        return resolve(spec)
    raise DataError(f"data {spec!r} is neither an existing file nor an asset name "
                    "(e.g. quickdraw:bird/simplified)")


def _read_npz(path: Path) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    splits = load_sketchrnn_npz(path)
    return splits["train"], splits["valid"]


def _read_ndjson(path: Path) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    return load_ndjson_stroke3(path), None


#: file suffix -> reader returning (train sketches, valid sketches or None when there is none)
DATA_READERS = {".npz": _read_npz, ".ndjson": _read_ndjson}


def load_splits(specs: Sequence[str], valid_fraction: float, seed: int = 0) -> Splits:
    """Train / valid sketches of every file (all are kept, in order); files without a valid
    split (ndjson) give ``valid_fraction`` of their drawings, chosen at random, to valid."""
    if not specs:
        raise ConfigError("no training data: pass --data FILE_OR_ASSET (e.g. quickdraw:owl/raw)")
    rng = np.random.default_rng(seed)
    splits = Splits([], [])
    for spec in specs:
        path = _resolve_data(spec)
        reader = DATA_READERS.get(path.suffix.lower())
        if reader is None:
            raise DataError(f"{path}: cannot train on '{path.suffix}' files; use one of "
                            f"{', '.join(DATA_READERS)}")
        train, valid = reader(path)
        if valid is None:
            order = rng.permutation(len(train))
            held_out = int(round(valid_fraction * len(train)))
            valid = [train[i] for i in order[:held_out]]
            train = [train[i] for i in sorted(order[held_out:])]
        splits.train.extend(train)
        splits.valid.extend(valid)
    return splits


def fit_max_seq_len(splits: Splits, cap: int) -> int:
    """Magenta's ``max_seq_len``: the longest sketch, but at most ``cap`` (longer ones drop)."""
    lengths = [len(s) for s in splits.train + splits.valid if len(s) <= cap]
    if not lengths:
        raise DataError(f"every training sketch is longer than max_seq_len={cap}; "
                        "raise it with --set max_seq_len=N")
    return max(lengths)


def make_datasets(splits: Splits, hparams: SketchRNNConfig, *, scale_factor: float | None,
                  seed: int) -> tuple[StrokeDataset, StrokeDataset | None]:
    """Augmented training set (its scale factor from the data unless given) and a plain
    validation set normalised with the same factor (None when there is no valid sketch)."""
    train = StrokeDataset(splits.train, hparams.max_seq_len, scale_factor=scale_factor,
                          random_scale_factor=hparams.random_scale_factor,
                          augment_stroke_prob=hparams.augment_stroke_prob, seed=seed)
    valid_sketches = [s for s in splits.valid if len(s) <= hparams.max_seq_len]
    valid = (StrokeDataset(valid_sketches, hparams.max_seq_len, scale_factor=train.scale_factor)
             if valid_sketches else None)
    return train, valid


def endless_batches(dataset: StrokeDataset, batch_size: int, generator: torch.Generator,
                    num_workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled ``(strokes5 (B, T, 5), lengths (B,))`` batches, epoch after epoch."""
    sampler = RandomSampler(dataset, generator=generator)
    loader = DataLoader(dataset, batch_size=min(batch_size, len(dataset)), sampler=sampler,
                        num_workers=num_workers)
    while True:
        yield from loader
