"""``load_sketches``: read stroke-3 sketches from any supported file, chosen by its contents."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from sketchrl.data.common import PathLike, existing_file
from sketchrl.data.ndjson import load_ndjson_stroke3
from sketchrl.data.npz import SPLITS, load_sketchrnn_npz, npz_member_names
from sketchrl.data.samples import load_samples
from sketchrl.errors import ConfigError, DataError

__all__ = ["load_sketches"]


def _load_ndjson(path: Path, split: str, skip_bad: bool) -> list[np.ndarray]:
    return load_ndjson_stroke3(path, skip_bad=skip_bad)


def _load_npz(path: Path, split: str, skip_bad: bool) -> list[np.ndarray]:
    names = set(npz_member_names(path))
    if {"strokes", "lengths"} <= names:
        return load_samples(path)
    if set(SPLITS) <= names:
        return load_sketchrnn_npz(path)[split]
    raise DataError(
        f"{path} holds {sorted(names)}: neither a samples file ('strokes', 'lengths') nor a "
        "sketch-rnn .npz ('train', 'valid', 'test')"
    )


_LOADERS: dict[str, Callable[[Path, str, bool], list[np.ndarray]]] = {
    ".ndjson": _load_ndjson,
    ".npz": _load_npz,
}


def load_sketches(
    path: PathLike, *, split: str = "test", skip_bad: bool = False
) -> list[np.ndarray]:
    """Float32 stroke-3 sketches from an ``.ndjson`` (raw or simplified Quick, Draw!), a
    ``samples.npz`` or a sketch-rnn ``.npz`` (its ``split``: train, valid or test).

    ``skip_bad=True`` skips (and logs the count of) bad ndjson lines instead of raising.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    path = existing_file(path)
    loader = _LOADERS.get(path.suffix.lower())
    if loader is None:
        raise DataError(
            f"{path}: cannot read sketches from a '{path.suffix}' file; expected one of "
            f"{sorted(_LOADERS)}"
        )
    return loader(path, split, skip_bad)
