"""bf16 Inception features keep FID within 1% of fp32 on real Quick, Draw! birds.

This is the condition for bf16 being the default precision of evaluation: the same images
through the same preprocessing, only the network's arithmetic differs. Two comparisons where
FID is clearly non-zero: real birds against 150 other real birds (FID from the sampling
spread alone) and against 150 other birds with 5% of their pixels flipped.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from sketchrl.data import load_bitmaps
from sketchrl.evaluate import FID, InceptionFeatureExtractor, bitmaps_to_ink, ink_to_paper

COUNT = 150
MAX_RELATIVE_DIFFERENCE = 0.01


@pytest.fixture
def all_cores():
    """This test runs ~450 images twice through Inception: use every core, then restore."""
    threads = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(max(1, cores or 1))
    yield
    torch.set_num_threads(threads)


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    metric = FID()
    metric.update(real=real, fake=fake)
    return metric.compute()


@pytest.mark.slow
def test_bf16_fid_is_within_one_percent_of_fp32(shared_assets, all_cores):
    birds = load_bitmaps(shared_assets / "quickdraw_dataset/full/numpy_bitmap/bird.npy")
    real, other = birds[:COUNT], birds[COUNT : 2 * COUNT]
    flips = np.random.default_rng(0).random(other.shape) < 0.05
    corrupted = np.where(flips, 255 - other, other)
    images = ink_to_paper(bitmaps_to_ink(np.concatenate([real, other, corrupted])))
    distances = {}
    for precision in ("fp32", "bf16"):
        features = InceptionFeatureExtractor(precision=precision)(images)
        reference, same, worse = np.split(features, 3)
        distances[precision] = np.array([fid(reference, same), fid(reference, worse)])
    fp32, bf16 = distances["fp32"], distances["bf16"]
    assert fp32[0] > 10 and fp32[1] > 2 * fp32[0], fp32  # clearly non-zero, and ordered
    relative = np.abs(bf16 - fp32) / fp32
    assert relative.max() <= MAX_RELATIVE_DIFFERENCE, (fp32, bf16, relative)
