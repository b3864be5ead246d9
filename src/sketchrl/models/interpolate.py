"""Weight interpolation between a starting model and its fine-tune (WiSE-FT; WARP's
interpolation towards the initialisation): a knob between the two that needs no retraining.

``weight = 0`` gives the starting model, ``1`` the fine-tune, values in between a model whose
every floating-point tensor is ``start + weight * (tuned - start)``; values above 1 extrapolate
past the fine-tune (as ExPO does).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from sketchrl.errors import ConfigError
from sketchrl.models.sketch_rnn import SketchRNN, tensor_mismatch

#: What a written mix records beside its weights: the two models and the weight.
RECORD_FILE = "interpolation.json"


def check_weight(weight: float) -> None:
    """ConfigError unless ``weight`` is a finite number."""
    if not math.isfinite(weight):
        raise ConfigError(f"weight {weight} must be a finite number (0 = start, 1 = fine-tune)")


def interpolate_weights(start: SketchRNN, tuned: SketchRNN, weight: float) -> SketchRNN:
    """A new model (``tuned``'s config, on CPU, in eval mode) with weights ``start + weight *
    (tuned - start)``; non-float tensors are ``tuned``'s. ConfigError if the two do not share
    an architecture (the same tensors with the same shapes) or ``weight`` is not finite."""
    check_weight(weight)
    start_state, tuned_state = start.state_dict(), tuned.state_dict()
    missing, unexpected, wrong = tensor_mismatch(start_state, tuned_state)
    if missing or unexpected:
        differing = sorted(missing + unexpected)
        raise ConfigError(f"the two models have different architectures (tensors "
                          f"{', '.join(differing[:3])} are in only one of them)")
    if wrong:
        name = wrong[0]
        raise ConfigError(f"the two models have different architectures ({name}: "
                          f"{tuple(start_state[name].shape)} against "
                          f"{tuple(tuned_state[name].shape)})")
    mixed: dict[str, torch.Tensor] = {}
    for name, tuned_tensor in tuned_state.items():
        start_tensor = start_state[name].to(tuned_tensor.device)
        if tuned_tensor.is_floating_point():
            start_tensor = start_tensor.to(tuned_tensor.dtype)
            tuned_tensor = torch.lerp(start_tensor, tuned_tensor, weight)
        mixed[name] = tuned_tensor.detach().cpu()
    model = SketchRNN(tuned.config)
    model.load_state_dict(mixed)
    return model.eval()


def changed_tensors(start: SketchRNN, tuned: SketchRNN) -> int:
    """How many of the tensors the two models share differ (what a fine-tune moved)."""
    start_state = start.state_dict()
    return sum(not torch.equal(tensor.cpu(), start_state[name].cpu())
               for name, tensor in tuned.state_dict().items() if name in start_state)


def write_interpolation(tuned_spec: str, start_spec: str, weight: float, out: str | Path
                        ) -> tuple[SketchRNN, SketchRNN]:
    """Load both models, write their mix (:func:`interpolate_weights`) into ``out`` with
    :data:`RECORD_FILE`; returns ``(start, tuned)``."""
    from sketchrl.models.io import load_model, save_model

    tuned, start = load_model(tuned_spec), load_model(start_spec)
    save_model(interpolate_weights(start, tuned, weight), out)
    record = {"model": str(tuned_spec), "base": str(start_spec), "weight": weight}
    (Path(out) / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return start, tuned
