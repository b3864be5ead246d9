"""TensorBoard writers without TensorFlow's start-up chatter."""

from __future__ import annotations

import os
from pathlib import Path


def summary_writer(log_dir: str | Path):
    """A ``torch.utils.tensorboard.SummaryWriter`` for ``log_dir``.

    When TensorFlow is installed (the ``tf`` extra), tensorboard imports it, and TensorFlow logs
    CPU-feature notices to stderr; ``TF_CPP_MIN_LOG_LEVEL`` (unless the user set it) keeps
    those out of the progress output.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))
