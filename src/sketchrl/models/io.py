"""Save and load SketchRNN models: ``model.safetensors`` + ``model_config.json`` directories,
sketch-rnn-js ``.json`` files, and ``sketchrnn:<category>`` asset names."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sketchrl.errors import ConfigError, DataError
from sketchrl.models.config import SketchRNNConfig
from sketchrl.models.sketch_rnn import SketchRNN, tensor_mismatch
from sketchrl.models.sketch_rnn_js import load_sketch_rnn_js

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model_config.json"
ASSET_PREFIX = "sketchrnn:"
MODEL_FORMS = (
    f"use {ASSET_PREFIX}<category> (e.g. {ASSET_PREFIX}bird), a sketch-rnn-js .json file, or a "
    f"directory with {WEIGHTS_FILE} + {CONFIG_FILE}"
)


def cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights as contiguous CPU tensors (what checkpoints store)."""
    return {key: value.detach().to("cpu").contiguous()
            for key, value in model.state_dict().items()}


def save_model(model: SketchRNN, directory: str | Path) -> Path:
    """Write ``model.safetensors`` and ``model_config.json`` into ``directory`` (created)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = cpu_state_dict(model)
    temporary = directory / f"{WEIGHTS_FILE}.tmp"  # atomic: a kill never leaves half a file
    save_file(tensors, str(temporary), metadata={"format": "pt"})
    os.replace(temporary, directory / WEIGHTS_FILE)
    model.config.save_json(directory / CONFIG_FILE)
    logger.info("saved model %s to %s", model.config.name, directory)
    return directory


def load_model_directory(directory: str | Path,
                         device: str | torch.device | None = None) -> SketchRNN:
    """A model saved by :func:`save_model` (in eval mode)."""
    directory = Path(directory)
    config = SketchRNNConfig.load_json(directory / CONFIG_FILE)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise DataError(f"{weights} is missing; the directory needs {WEIGHTS_FILE} beside "
                        f"{CONFIG_FILE}")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as error:
        raise DataError(f"{weights}: unreadable ({error}); re-save the model") from None
    model = SketchRNN(config)
    missing, unexpected, wrong = tensor_mismatch(model.state_dict(), tensors)
    if missing or unexpected or wrong:
        raise DataError(
            f"{weights} does not match {CONFIG_FILE}: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, wrong shape {wrong[:5]}"
        )
    model.load_state_dict(tensors)
    return model.to(device if device is not None else "cpu").eval()


def weights_digest(spec: str | Path) -> str | None:
    """:func:`sketchrl.assets.file_digest` of a :func:`save_model` directory's weights (what
    an evaluation records, so a study can tell when the model changed); None for another form
    of model (an asset name, a .json file, a TensorFlow checkpoint)."""
    weights = Path(str(spec)).expanduser() / WEIGHTS_FILE
    if not weights.is_file():
        return None
    stat = weights.stat()
    version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return _file_digest_of_version(str(weights.resolve()), version)


@functools.lru_cache(maxsize=512)
def _file_digest_of_version(path: str, version: tuple[int, int, int]) -> str:
    """The digest of ``path`` as it was at ``version`` (inode, mtime, size): a study checks
    each model's evaluations once per seed and sample size, and so reads each file once."""
    from sketchrl.assets import file_digest

    return file_digest(Path(path))


def is_magenta_checkpoint_dir(path: Path) -> bool:
    """A Magenta model-zoo folder: model_config.json beside TensorFlow checkpoint files."""
    has_checkpoint = (path / "checkpoint").is_file() or any(path.glob("*.index"))
    return has_checkpoint and not (path / WEIGHTS_FILE).is_file()


def load_model(spec: str | Path, device: str | torch.device | None = None) -> SketchRNN:
    """Load ``sketchrnn:<category>`` (via ``sketchrl.assets.resolve``), a sketch-rnn-js
    ``.json`` file, a :func:`save_model` directory, or a Magenta TensorFlow checkpoint
    directory (needs TensorFlow: ``pip install sketchrl[tf]``); the model is in eval mode on
    ``device`` (default CPU)."""
    text = str(spec)
    if text.startswith(ASSET_PREFIX):
        from sketchrl.assets import resolve

        return load_sketch_rnn_js(resolve(text), device)
    path = Path(text).expanduser()
    if path.is_file() and path.name == CONFIG_FILE:
        path = path.parent
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise ConfigError(f"model directory {path} has no {CONFIG_FILE}; {MODEL_FORMS}")
        if is_magenta_checkpoint_dir(path):
            from sketchrl.models.magenta_tf import load_magenta_checkpoint

            return load_magenta_checkpoint(path, device=device)
        return load_model_directory(path, device)
    if path.is_file() and path.suffix == ".json":
        return load_sketch_rnn_js(path, device)
    hint = ""
    if "/" not in text and "." not in text and text:
        hint = f" (did you mean {ASSET_PREFIX}{text}?)"
    raise ConfigError(f"unknown model {text!r}{hint}: {MODEL_FORMS}")

