"""Read and write sketch-rnn-js JSON models (the ``*.gen.json`` files of the model zoo).

A file is ``[info, shapes, blobs]``: ``info`` has name, version, mode (2 or "gen" =
decoder-only, 0/1 = VAE), max_seq_len and scale_factor; each blob is base64 little-endian
int16, row-major in its listed shape, with value = q / 32767 * 10. Blob order is
:data:`DECODER_ONLY_BLOBS` or :data:`VAE_BLOBS` (both are LSTM-only, as sketch-rnn-js is).

:func:`export_magenta_js` writes a file ``@magenta/sketch`` 0.2.0 loads and reports how much of
a fine-tune survives the 16-bit rounding (:class:`RoundingReport`). That library reads only
the decoder-only layout: its ``SketchRNN`` takes blobs 0-4 as output_w, output_b, W_xh, W_hh,
bias, has no encoder and no z input, and hard-codes 20 mixture components. A 17-blob VAE file
therefore fails to load ("Tensor must have a shape comprised of positive integers": it reads
the encoder's 1-D bias as the 2-D W_xh), so VAEs are refused there.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchrl.errors import ConfigError, DataError
from sketchrl.models.config import SketchRNNConfig
from sketchrl.models.sketch_rnn import SketchRNN, tensor_mismatch

logger = logging.getLogger(__name__)

MAX_WEIGHT = 10.0
INT16_MAX = 32767
JS_VERSION = 6
GEN_MODES = (2, "gen")
#: ``@magenta/sketch`` 0.2.0 hard-codes this many mixture components (``NMIXTURE``).
MAGENTA_JS_MIXTURES = 20
#: One rounding step of the format: a stored value moves only by multiples of it.
ROUNDING_STEP = MAX_WEIGHT / INT16_MAX
#: :class:`RoundingReport` calls a fine-tune (nearly) lost when fewer than this fraction of the
#: stored values differ from the starting model's (see :attr:`RoundingReport.lost`).
LOST_FRACTION = 0.01

_DECODER = (
    "decoder.output.weight", "decoder.output.bias",
    "decoder.cell.W_xh", "decoder.cell.W_hh", "decoder.cell.bias",
)
#: The parameters the blobs of a decoder-only file hold, in file order.
DECODER_ONLY_BLOBS: tuple[str, ...] = _DECODER
#: The parameters the 17 blobs of a VAE file hold, in file order.
VAE_BLOBS: tuple[str, ...] = (
    "encoder.cell_fw.W_xh", "encoder.cell_fw.W_hh", "encoder.cell_fw.bias",
    "encoder.cell_bw.W_xh", "encoder.cell_bw.W_hh", "encoder.cell_bw.bias",
    "encoder.mu.weight", "encoder.mu.bias", "encoder.presig.weight", "encoder.presig.bias",
    "decoder.initial_state.weight", "decoder.initial_state.bias",
    *_DECODER,
)


def decode_blob(text: str, shape: list[int]) -> np.ndarray:
    """One blob as a float32 array of ``shape`` (q / 32767 * 10)."""
    raw = base64.b64decode(text, validate=True)
    quantised = np.frombuffer(raw, dtype="<i2")
    if quantised.size != int(np.prod(shape)):
        raise ValueError(f"blob has {quantised.size} values, its shape {shape} needs "
                         f"{int(np.prod(shape))}")
    return (quantised.astype(np.float32) / INT16_MAX * MAX_WEIGHT).reshape(shape)


def quantize(values: np.ndarray) -> np.ndarray:
    """The int16 codes the file stores for ``values`` (round(v / 10 * 32767), clipped)."""
    scaled = np.rint(np.asarray(values, dtype=np.float64) / MAX_WEIGHT * INT16_MAX)
    return np.clip(scaled, -INT16_MAX, INT16_MAX).astype("<i2")


def encode_blob(values: np.ndarray) -> str:
    """Quantise to int16 (values beyond +-10 are clipped) and base64-encode."""
    return base64.b64encode(quantize(values).tobytes()).decode("ascii")


def read_sketch_rnn_js(path: str | Path) -> tuple[dict[str, Any], list[np.ndarray]]:
    """``(info, arrays)`` of a sketch-rnn-js file; DataError when it is not one."""
    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"sketch-rnn-js model not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a JSON file ({error}); re-download the model") from None
    valid = (isinstance(content, list) and len(content) == 3 and isinstance(content[0], dict)
             and isinstance(content[1], list) and isinstance(content[2], list)
             and len(content[1]) == len(content[2]))
    if not valid:
        raise DataError(f"{path}: not a sketch-rnn-js model (expected [info, shapes, blobs])")
    info, shapes, blobs = content
    arrays = []
    for index, (shape, blob) in enumerate(zip(shapes, blobs, strict=True)):
        try:
            arrays.append(decode_blob(blob, [int(s) for s in shape]))
        except (ValueError, TypeError) as error:
            raise DataError(f"{path}: blob {index} is corrupt ({error}); re-download it") from None
    return info, arrays


def _config_from_arrays(info: dict[str, Any], arrays: list[np.ndarray],
                        path: Path) -> tuple[SketchRNNConfig, tuple[str, ...]]:
    gen = info.get("mode") in GEN_MODES
    names = DECODER_ONLY_BLOBS if gen else VAE_BLOBS
    if len(arrays) != len(names):
        kind = "decoder-only" if gen else "VAE"
        raise DataError(f"{path}: a {kind} sketch-rnn-js model has {len(names)} blobs, this "
                        f"file has {len(arrays)}")
    by_name = dict(zip(names, arrays, strict=True))
    output_size = by_name["decoder.output.bias"].shape[0]
    values: dict[str, Any] = {
        "name": str(info.get("name", path.name.split(".")[0])),
        "scale_factor": float(info.get("scale_factor", 1.0)),
        "max_seq_len": int(info.get("max_seq_len", 250)),
        "conditional": not gen,
        "dec_model": "lstm",
        "enc_model": "lstm",
        "dec_rnn_size": int(by_name["decoder.cell.W_hh"].shape[0]),
        "num_mixture": (output_size - 3) // 6,
        "use_recurrent_dropout": False,
    }
    if not gen:
        values["enc_rnn_size"] = int(by_name["encoder.cell_fw.W_hh"].shape[0])
        values["z_size"] = int(by_name["encoder.mu.weight"].shape[1])
        if int(info.get("version", JS_VERSION)) < JS_VERSION:
            logger.warning("%s: version %s VAE; sketch-rnn-js applies tanh to z for versions < 6, "
                           "sketchrl does not", path, info.get("version"))
    return SketchRNNConfig.from_dict(values), names


def load_sketch_rnn_js(path: str | Path, device: str | torch.device | None = None) -> SketchRNN:
    """Import a sketch-rnn-js JSON model (decoder-only or VAE) as a :class:`SketchRNN`."""
    path = Path(path)
    info, arrays = read_sketch_rnn_js(path)
    config, names = _config_from_arrays(info, arrays, path)
    model = SketchRNN(config)
    state = model.state_dict()
    for name, array in zip(names, arrays, strict=True):
        if tuple(state[name].shape) != array.shape:
            raise DataError(f"{path}: {name} has shape {array.shape}, expected "
                            f"{tuple(state[name].shape)} from the other blobs")
        state[name] = torch.from_numpy(array.copy())
    model.load_state_dict(state)
    return model.to(device if device is not None else "cpu").eval()


def export_sketch_rnn_js(model: SketchRNN, path: str | Path, *, version: int = JS_VERSION,
                         extra_info: dict[str, Any] | None = None) -> Path:
    """Write ``model`` in the sketch-rnn-js layout (weights quantised to int16 in +-10)."""
    config = model.config
    cells = (config.dec_model,) + ((config.enc_model,) if config.conditional else ())
    if any(cell != "lstm" for cell in cells):
        raise ConfigError(f"sketch-rnn-js models use plain LSTM cells; model {config.name!r} uses "
                          f"{'/'.join(cells)}")
    names = VAE_BLOBS if config.conditional else DECODER_ONLY_BLOBS
    state = {k: v.detach().to("cpu", torch.float32).numpy() for k, v in model.state_dict().items()}
    # Values at the limit (the zoo's files have them) are not clipped beyond half a step.
    limit = MAX_WEIGHT + ROUNDING_STEP / 2
    clipped = [name for name in names if np.abs(state[name]).max(initial=0.0) > limit]
    if clipped:
        logger.warning("weights beyond +-%g clipped in %s", MAX_WEIGHT, ", ".join(clipped))
    info = {"name": config.name, "version": version, "mode": 1 if config.conditional else 2,
            "max_seq_len": config.max_seq_len, "scale_factor": config.scale_factor,
            **(extra_info or {})}
    content = [info, [list(state[name].shape) for name in names],
               [encode_blob(state[name]) for name in names]]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
    return path


@dataclasses.dataclass(frozen=True)
class RoundingReport:
    """How much of a fine-tune survives the format's 16-bit rounding.

    Attributes:
        base: the starting model, as the user named it.
        values: stored values compared (every blob of the file).
        changed: values whose stored int16 differs from the starting model's.
        largest_update: largest ``|fine-tuned - starting|`` weight before rounding.
    """

    base: str
    values: int
    changed: int
    largest_update: float

    @property
    def fraction(self) -> float:
        return self.changed / self.values if self.values else 0.0

    @property
    def lost(self) -> bool:
        """Fewer than :data:`LOST_FRACTION` of the values changed: an RL fine-tune moves every
        decoder weight, so once its updates outgrow half a rounding step most values change;
        under 1% means nearly all of it was rounded away."""
        return self.fraction < LOST_FRACTION

    def describe(self) -> str:
        return (f"{self.changed:,} of {self.values:,} stored values ({100 * self.fraction:.2f}%) "
                f"differ from {self.base} after 16-bit rounding")

    def warning(self) -> str | None:
        """One line for the user when the fine-tune is (nearly) lost, else None."""
        if not self.lost:
            return None
        how = "lost" if self.changed == 0 else "nearly lost"
        same = f"; the file draws exactly like {self.base}" if self.changed == 0 else ""
        return (f"the fine-tune is {how} in the export: {self.describe()} (rounding step "
                f"{ROUNDING_STEP:.2g}, largest weight change {self.largest_update:.2g}){same}; "
                "fine-tune longer or with a larger learning rate")


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What :func:`export_magenta_js` wrote."""

    path: Path
    name: str
    values: int
    rounding: RoundingReport | None

    def summary(self) -> str:
        """One line: the file, the model, and the rounding comparison."""
        compared = (self.rounding.describe() if self.rounding is not None
                    else "no starting model to compare with")
        return (f"{self.path}: {self.name}, decoder-only sketch-rnn-js for @magenta/sketch, "
                f"{self.values:,} values; {compared}")


def _blob_names(model: SketchRNN) -> tuple[str, ...]:
    return VAE_BLOBS if model.config.conditional else DECODER_ONLY_BLOBS


def _stored_arrays(model: SketchRNN) -> dict[str, np.ndarray]:
    state = model.state_dict()
    return {name: state[name].detach().to("cpu", torch.float32).numpy()
            for name in _blob_names(model)}


def compare_rounding(model: SketchRNN, base: SketchRNN, base_name: str = "the starting model"
                     ) -> RoundingReport:
    """Count the stored values of ``model`` whose int16 differs from ``base``'s (same layout)."""
    mine, theirs = _stored_arrays(model), _stored_arrays(base)
    missing, unexpected, wrong = tensor_mismatch(mine, theirs)
    if missing or unexpected or wrong:
        what = (f"{wrong[0]} {mine[wrong[0]].shape} vs {theirs[wrong[0]].shape}" if wrong
                else "VAE vs decoder-only")
        raise ConfigError(f"starting model {base_name} has another architecture ({what}); pass "
                          "the model the fine-tune started from as the base (--base MODEL)")
    changed = sum(int((quantize(mine[n]) != quantize(theirs[n])).sum()) for n in mine)
    values = sum(array.size for array in mine.values())
    largest = max(float(np.abs(mine[n] - theirs[n]).max(initial=0.0)) for n in mine)
    return RoundingReport(base=base_name, values=values, changed=changed, largest_update=largest)


def check_magenta_js(model: SketchRNN) -> None:
    """ConfigError unless ``@magenta/sketch`` 0.2.0 can load and run ``model``."""
    config = model.config
    if config.conditional:
        raise ConfigError(
            f"model {config.name!r} is a VAE: @magenta/sketch 0.2.0 loads only decoder-only "
            "models (no encoder, no z; a VAE file fails with 'Tensor must have a shape "
            "comprised of positive integers'); export a decoder-only model")
    if config.dec_model != "lstm":
        raise ConfigError(f"model {config.name!r} uses a {config.dec_model} decoder: "
                          "@magenta/sketch runs plain LSTM decoders only")
    if config.num_mixture != MAGENTA_JS_MIXTURES:
        raise ConfigError(f"model {config.name!r} has {config.num_mixture} mixture components: "
                          f"@magenta/sketch 0.2.0 hard-codes {MAGENTA_JS_MIXTURES}")


def export_magenta_js(model: SketchRNN, path: str | Path, *, base: SketchRNN | None = None,
                      base_name: str = "the starting model", warn: bool = True) -> ExportReport:
    """Write ``model`` as a decoder-only sketch-rnn-js file that ``@magenta/sketch`` loads.

    With ``base`` (the model the fine-tune started from), also count the stored values that
    differ from ``base``'s after rounding; when the fine-tune is (nearly) lost
    (:attr:`RoundingReport.lost`) log a warning (unless ``warn`` is False) and say so in the
    returned report. ConfigError for models the library cannot run (:func:`check_magenta_js`).
    """
    check_magenta_js(model)
    rounding = compare_rounding(model, base, base_name) if base is not None else None
    written = export_sketch_rnn_js(model, path)
    values = sum(array.size for array in _stored_arrays(model).values())
    report = ExportReport(path=written, name=model.config.name, values=values, rounding=rounding)
    if warn and rounding is not None and rounding.lost:
        logger.warning("%s: %s", written, rounding.warning())
    logger.info("%s", report.summary())
    return report
