"""The decoder's recurrent loops in C++ (``csrc/decoder_loops.cpp``): compiled on first use.

On the CPU a step of a 16-sketch batch costs more in Python and per-op dispatch than in its
matrix products: the draw from the output head alone is a few dozen tiny tensor ops, and the
backward recurrence another handful per step. :func:`native_loops` compiles both loops once
with ``torch.utils.cpp_extension`` (about a minute; cached under ``TORCH_EXTENSIONS_DIR``, by
default ``~/.cache/torch_extensions``): :func:`run_native_steps` samples one noise chunk per
call, and :class:`~sketchrl.models.fused_lstm.LSTMSequence` runs its backward recurrence in
one call. Both do the Python code's arithmetic in the same order (ATen's own exp and tanh), so
the results are the same bit for bit (``tests/test_native.py``). Without a C++ compiler, or
with ``SKETCHRL_NATIVE=0``, everything runs in Python.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from sketchrl.models.mixture import RHO_MARGIN, Temperature
from sketchrl.native import SWITCH as SWITCH  # the switch, re-exported
from sketchrl.native import compile_extension, extension_built, native_enabled

if TYPE_CHECKING:
    from sketchrl.models.sampling import FusedLSTMStepper, StepNoiseSource

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "decoder_loops.cpp"
NAME = "sketchrl_decoder_loops"


@functools.lru_cache(maxsize=1)
def _compiled() -> ModuleType | None:
    return compile_extension(NAME, SOURCE, "C++ decoder loops", "running them in Python",
                             logger, ["-O3", "-ffp-contract=off"], built=_built)


def _built(cpp_extension: ModuleType) -> bool:
    return extension_built(cpp_extension, NAME)


def native_loops() -> ModuleType | None:
    """The compiled loops, or None when switched off or unavailable."""
    return _compiled() if native_enabled() else None


def native_loops_for(device: torch.device, dtype: torch.dtype) -> ModuleType | None:
    """:func:`native_loops` for tensors on ``device`` in ``dtype``: None unless CPU float32/64."""
    usable = device.type == "cpu" and dtype in (torch.float32, torch.float64)
    return native_loops() if usable else None


def run_native_steps(native: ModuleType, stepper: FusedLSTMStepper, noise: StepNoiseSource,
                     start_rows: Tensor, max_len: int, temperature: Temperature,
                     num_mixture: int, progress: bool = False) -> tuple[Tensor, Tensor]:
    """The sampling loop in C++: strokes ``(B, T, 5)`` and the sampled-step mask ``(B, T)``.

    Fills ``stepper`` with the outputs, cell outputs and (when recording) activations and cell
    states of the T steps, as its Python step would.
    """
    from tqdm.auto import tqdm

    batch = stepper.h.shape[0]
    rows = start_rows.contiguous().clone()
    active = torch.ones(batch, dtype=torch.bool)
    h, c = stepper.h.contiguous().clone(), stepper.c.contiguous().clone()
    parts: list[list[Tensor]] = []  # buffers per chunk: memory for the steps run, not max_len
    done, bar = 0, tqdm(total=max_len, desc="sampling", unit="step", disable=not progress,
                        leave=False)
    with torch.no_grad(), bar:
        while done < max_len and (done == 0 or bool(active.any())):
            noise(done)  # the same chunks, drawn in the same order, as the Python loop
            count = min(noise.start + len(noise.gumbel) - done, max_len - done)
            buffers = stepper.allocate_native(count)
            offset = done - noise.start
            ran = native.sample_steps(
                stepper.w_rows, stepper.w_hh, stepper.bias, stepper.w_out, stepper.b_out,
                h, c, rows, active, noise.gumbel[offset:].to(h.dtype),
                noise.normal[offset:].to(h.dtype), temperature.log_sigma_offset, num_mixture,
                RHO_MARGIN, *buffers, stepper.record, count)
            parts.append([buffer[:ran] for buffer in buffers])
            done += ran
            bar.update(ran)
    strokes, mask = stepper.keep_native(parts)[:2]
    return strokes.transpose(0, 1).contiguous(), mask.transpose(0, 1).contiguous()
