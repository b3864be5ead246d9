"""Sketch data files: Quick, Draw! ndjson and bitmaps, sketch-rnn npz, samples, datasets.

Names are imported on first use (PEP 562), so ``import sketchrl.data`` (or
``sketchrl.data.common``) does not import numpy or torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sketchrl.data.bitmaps import load_bitmaps
    from sketchrl.data.common import writable_directory
    from sketchrl.data.dataset import StrokeDataset
    from sketchrl.data.ndjson import (
        NdjsonDrawings,
        iter_ndjson,
        load_ndjson,
        load_ndjson_stroke3,
    )
    from sketchrl.data.npz import RestrictedUnpickler, load_sketchrnn_npz, read_npz_member
    from sketchrl.data.samples import load_samples, save_samples
    from sketchrl.data.sketches import load_sketches

_WHERE = {
    "load_bitmaps": "bitmaps",
    "writable_directory": "common",
    "StrokeDataset": "dataset",
    "NdjsonDrawings": "ndjson",
    "iter_ndjson": "ndjson",
    "load_ndjson": "ndjson",
    "load_ndjson_stroke3": "ndjson",
    "RestrictedUnpickler": "npz",
    "load_sketchrnn_npz": "npz",
    "read_npz_member": "npz",
    "load_samples": "samples",
    "save_samples": "samples",
    "load_sketches": "sketches",
}

__all__ = [
    "NdjsonDrawings",
    "RestrictedUnpickler",
    "StrokeDataset",
    "iter_ndjson",
    "load_bitmaps",
    "load_ndjson",
    "load_ndjson_stroke3",
    "load_samples",
    "load_sketches",
    "load_sketchrnn_npz",
    "read_npz_member",
    "save_samples",
    "writable_directory",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
