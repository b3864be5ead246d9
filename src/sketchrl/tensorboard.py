"""TensorBoard writers without TensorFlow."""

from __future__ import annotations

import sys
import types
from pathlib import Path

#: When this module exists, tensorboard uses its own TensorFlow stub instead of importing an
#: installed TensorFlow (tensorboard.compat.tf checks for it).
NO_TENSORFLOW = "tensorboard.compat.notf"


def summary_writer(log_dir: str | Path):
    """A ``torch.utils.tensorboard.SummaryWriter`` for ``log_dir``.

    When TensorFlow is installed (the ``tf`` extra), tensorboard imports it for file I/O that
    its stub does as well: seconds of start-up, hundreds of MB and CPU-feature notices on stderr
    in every training process. Declaring tensorboard's ``notf`` module keeps TensorFlow out
    (the events are the same).
    """
    sys.modules.setdefault(NO_TENSORFLOW, types.ModuleType(NO_TENSORFLOW))
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))
