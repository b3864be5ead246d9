"""Sketch data files: Quick, Draw! ndjson and bitmaps, sketch-rnn npz, samples, datasets."""

from sketchrl.data.bitmaps import load_bitmaps
from sketchrl.data.dataset import StrokeDataset
from sketchrl.data.ndjson import NdjsonDrawings, iter_ndjson, load_ndjson, load_ndjson_stroke3
from sketchrl.data.npz import RestrictedUnpickler, load_sketchrnn_npz, read_npz_member
from sketchrl.data.samples import load_samples, save_samples
from sketchrl.data.sketches import load_sketches

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
]
