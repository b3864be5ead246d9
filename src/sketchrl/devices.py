"""Torch device names as users write them: ``cpu``, ``cuda[:N]``, or ``auto``."""

from __future__ import annotations

import torch

from sketchrl.errors import ConfigError


def resolve_device(
    device: str | torch.device | None, *, default: str = "cpu"
) -> torch.device:
    """``None`` -> ``default``; ``"auto"`` -> CUDA when available, else CPU; else the device.

    An unknown name is a :class:`ConfigError` that lists the valid forms.
    """
    if isinstance(device, torch.device):
        return device
    name = default if device is None else device
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r} is not a torch device; use cpu, cuda or auto") from None
