"""Import a Magenta ``sketch_rnn`` TensorFlow checkpoint (the model zoo's ``sketch_rnn.zip``).

A zoo folder (e.g. ``owl/lstm``) holds Magenta's ``model_config.json`` (its hparams), a
``checkpoint`` state file and ``vector-<step>.index`` / ``.data-*`` files. Variables live under
``vector_rnn/`` with the scopes of Magenta's ``model.py`` / ``rnn.py``:

- encoder: ``ENC_RNN/fw/<Cell>/...``, ``ENC_RNN/bw/<Cell>/...``, ``ENC_RNN_mu/super_linear_{w,b}``,
  ``ENC_RNN_sigma/super_linear_{w,b}``;
- decoder: ``linear/super_linear_{w,b}`` (z -> initial state), ``RNN/<Cell>/...``,
  ``RNN/output_w``, ``RNN/output_b``;
- ``<Cell>`` is ``LSTMCell`` (``W_xh``, ``W_hh``, ``bias``), ``LayerNormLSTMCell`` (``W_xh``,
  ``W_hh``, ``ln_all/ln_{gamma,beta}``, ``ln_c/ln_{gamma,beta}``) or ``HyperLSTMCell`` (those
  plus ``bias``, ``hyper_<gate><x|h>/{zw,alpha,zb,beta}/super_linear_*`` and its inner
  ``LayerNormLSTMCell``).

sketchrl's cells keep Magenta's layout (``W (in, 4H)``, gates i, j, f, o, forget bias +1 added
in the cell, same state order), so every array is copied unchanged. Training-only variables
(``global_step``, Adam slots, the learning-rate and KL-weight variables) are ignored.
TensorFlow is only needed to read the files: ``pip install sketchrl[tf]``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchrl.errors import ConfigError, DataError
from sketchrl.models.config import SketchRNNConfig
from sketchrl.models.sketch_rnn import SketchRNN

logger = logging.getLogger(__name__)

SCOPE = "vector_rnn"
MAGENTA_CONFIG_FILE = "model_config.json"
TF_INSTALL_HINT = "pip install sketchrl[tf] (or pip install tensorflow-cpu)"

#: ``enc_model`` / ``dec_model`` value -> the TensorFlow scope name of Magenta's cell class.
CELL_SCOPES = {"lstm": "LSTMCell", "layer_norm": "LayerNormLSTMCell", "hyper": "HyperLSTMCell"}
_DENSE = {"weight": "super_linear_w", "bias": "super_linear_b"}
_LAYER_NORM = {
    "ln_all_gamma": "ln_all/ln_gamma", "ln_all_beta": "ln_all/ln_beta",
    "ln_c_gamma": "ln_c/ln_gamma", "ln_c_beta": "ln_c/ln_beta",
}


def import_tensorflow() -> Any:
    """``tensorflow``, imported on first use; ConfigError with the pip line when missing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow
    except ImportError:
        raise ConfigError(
            f"reading Magenta TensorFlow checkpoints needs TensorFlow: {TF_INSTALL_HINT}"
        ) from None
    return tensorflow


def _cell_variable(key: str) -> str:
    """A cell's parameter name (relative to the cell) -> its Magenta variable name."""
    if key in ("W_xh", "W_hh", "bias"):
        return key
    if key in _LAYER_NORM:
        return _LAYER_NORM[key]
    if key.startswith("hyper_cell."):
        return "LayerNormLSTMCell/" + _cell_variable(key.removeprefix("hyper_cell."))
    side, gate, layer, param = key.split(".") if key.count(".") == 3 else ("", "", "", "")
    if side in ("hyper_x", "hyper_h") and param in _DENSE:
        return f"hyper_{gate}{side[-1]}/{layer}/{_DENSE[param]}"
    raise DataError(f"no Magenta variable is known for cell parameter {key!r}")


def magenta_variable_name(key: str, config: SketchRNNConfig) -> str:
    """The Magenta checkpoint variable holding sketchrl parameter ``key`` (a state-dict key)."""
    enc, dec = CELL_SCOPES[config.enc_model], CELL_SCOPES[config.dec_model]
    cells = {
        "encoder.cell_fw.": f"{SCOPE}/ENC_RNN/fw/{enc}/",
        "encoder.cell_bw.": f"{SCOPE}/ENC_RNN/bw/{enc}/",
        "decoder.cell.": f"{SCOPE}/RNN/{dec}/",
    }
    dense = {
        "encoder.mu.": f"{SCOPE}/ENC_RNN_mu/",
        "encoder.presig.": f"{SCOPE}/ENC_RNN_sigma/",
        "decoder.initial_state.": f"{SCOPE}/linear/",
        "decoder.output.": f"{SCOPE}/RNN/output_",
    }
    for prefix, scope in cells.items():
        if key.startswith(prefix):
            return scope + _cell_variable(key.removeprefix(prefix))
    for prefix, scope in dense.items():
        param = key.removeprefix(prefix)
        if key.startswith(prefix) and param in _DENSE:
            return scope + (param[0] if prefix == "decoder.output." else _DENSE[param])
    raise DataError(f"no Magenta variable is known for parameter {key!r}")


def find_checkpoint(checkpoint_dir: str | Path) -> Path:
    """The checkpoint prefix (``.../vector-<step>``) of a zoo folder, or of a prefix given.

    Uses the ``checkpoint`` state file's latest entry (its folder part is ignored: zoo files
    name the authors' machines), else the ``*.index`` file with the highest step.
    """
    path = Path(checkpoint_dir).expanduser()
    if path.with_name(path.name + ".index").is_file():
        return path
    if not path.is_dir():
        raise DataError(f"Magenta checkpoint folder {path} does not exist; unzip "
                        "sketch_rnn.zip and pass a model folder such as owl/lstm")
    state = path / "checkpoint"
    if state.is_file():
        match = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', state.read_text(), re.M)
        if match:
            prefix = path / Path(match.group(1).replace("\\", "/")).name
            if prefix.with_name(prefix.name + ".index").is_file():
                return prefix
    indexes = sorted(path.glob("*.index"), key=lambda p: _step_of(p.stem))
    if not indexes:
        raise DataError(f"{path} holds no TensorFlow checkpoint (no *.index file); pass a zoo "
                        "model folder such as owl/lstm")
    return indexes[-1].with_suffix("")


def _step_of(stem: str) -> int:
    tail = stem.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def read_magenta_config(checkpoint_dir: str | Path, **extra: Any) -> SketchRNNConfig:
    """The folder's Magenta ``model_config.json`` as a :class:`SketchRNNConfig`.

    ``name`` defaults to the stem of the first ``data_set`` entry; keys that sketchrl does not
    know are logged and dropped; ``extra`` (e.g. ``scale_factor``) overrides.
    """
    path = Path(checkpoint_dir) / MAGENTA_CONFIG_FILE
    try:
        hparams = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} is missing; a Magenta model folder has it beside the "
                        "checkpoint files") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    data_set = hparams.get("data_set") or []
    data_set = [data_set] if isinstance(data_set, str) else data_set
    if data_set:
        extra.setdefault("name", Path(str(data_set[0])).stem)
    known = set(SketchRNNConfig.field_names()) | {"data_set", "num_steps", "save_every",
                                                  "is_training"}
    unknown = sorted(set(hparams) - known)
    if unknown:
        logger.warning("%s: ignoring hparams sketchrl does not use: %s", path, ", ".join(unknown))
    return SketchRNNConfig.from_magenta({k: v for k, v in hparams.items() if k in known}, **extra)


def read_checkpoint_arrays(prefix: str | Path, names: list[str]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of a TensorFlow checkpoint (DataError listing any missing)."""
    tf = import_tensorflow()
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except Exception as error:  # TF raises several internal error types for a bad file
        raise DataError(f"{prefix}: not a readable TensorFlow checkpoint ({error})") from None
    available = reader.get_variable_to_shape_map()
    missing = [name for name in names if name not in available]
    if missing:
        found = sorted(n for n in available if n.startswith(SCOPE))[:6]
        raise DataError(f"{prefix} lacks {len(missing)} variable(s) the model_config.json "
                        f"implies, e.g. {missing[:3]}; it has {found}...")
    return {name: np.asarray(reader.get_tensor(name), dtype=np.float32) for name in names}


def load_magenta_checkpoint(checkpoint_dir: str | Path, *, scale_factor: float = 1.0,
                            name: str | None = None,
                            device: str | torch.device | None = None) -> SketchRNN:
    """A Magenta zoo model (VAE or decoder-only, any cell) as a :class:`SketchRNN` in eval mode.

    Magenta does not store the data's normalising ``scale_factor`` (pixels per model unit);
    pass it when known (default 1.0).
    """
    folder = Path(checkpoint_dir).expanduser()
    prefix = find_checkpoint(folder)
    import_tensorflow()  # fail before building the model when TensorFlow is missing
    extra: dict[str, Any] = {"scale_factor": scale_factor}
    if name is not None:
        extra["name"] = name
    config = read_magenta_config(folder if folder.is_dir() else folder.parent, **extra)
    model = SketchRNN(config)
    state = model.state_dict()
    names = {key: magenta_variable_name(key, config) for key in state}
    arrays = read_checkpoint_arrays(prefix, list(names.values()))
    for key, variable in names.items():
        if arrays[variable].shape != tuple(state[key].shape):
            raise DataError(f"{prefix}: {variable} has shape {arrays[variable].shape}, but "
                            f"model_config.json implies {tuple(state[key].shape)}")
        state[key] = torch.from_numpy(arrays[variable])
    model.load_state_dict(state)
    logger.info("imported Magenta checkpoint %s (%s)", prefix, config.name)
    return model.to(device if device is not None else "cpu").eval()
