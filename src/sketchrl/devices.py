"""Torch device names as users write them: ``cpu``, ``cuda[:N]``, or ``auto``.

torch is imported when a device is resolved, not when this module is (the CLI imports it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sketchrl.errors import ConfigError

if TYPE_CHECKING:
    import torch

NO_CUDA_HINT = "use --device cpu (or auto: CUDA when there is one)"


def resolve_device(
    device: str | torch.device | None, *, default: str = "cpu"
) -> torch.device:
    """``None`` -> ``default``; ``"auto"`` -> CUDA when available, else CPU; else the device.

    An unknown name, or ``cuda[:N]`` where torch sees no such CUDA device, is a
    :class:`ConfigError` that says what to use instead.
    """
    import torch

    if isinstance(device, torch.device):
        return device
    name = default if device is None else str(device).strip()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r} is not a torch device; use cpu, cuda or auto") from None
    if resolved.type == "cuda":
        check_cuda(resolved)
    return resolved


def check_cuda(device: torch.device) -> None:
    """ConfigError unless torch can use the CUDA device ``device``."""
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"device {str(device)!r}: no CUDA device is available; {NO_CUDA_HINT}")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ConfigError(
            f"device {str(device)!r}: there are only {count} CUDA device(s) (cuda:0 to "
            f"cuda:{count - 1}); {NO_CUDA_HINT}"
        )
