"""Save, load and apply trained Quick, Draw! classifiers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sketchrl.classifiers.networks import QuickDrawClassifier, build_classifier
from sketchrl.errors import ConfigError, DataError

if TYPE_CHECKING:
    from sketchrl.classifiers.config import ClassifierConfig

WEIGHTS_FILE = "classifier.safetensors"
CONFIG_FILE = "classifier_config.json"
METRICS_FILE = "metrics.json"
BITMAP_SUFFIXES = (".npy", ".bin")


def save_classifier(
    classifier: QuickDrawClassifier,
    config: ClassifierConfig,
    directory: str | Path,
    *,
    metrics: dict | None = None,
) -> Path:
    """Write ``classifier.safetensors`` + ``classifier_config.json`` (+ ``metrics.json``)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in
             classifier.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE))
    config.save_json(directory / CONFIG_FILE)
    if metrics is not None:
        (directory / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    return directory


def load_classifier(
    directory: str | Path, device: str | torch.device | None = None
) -> QuickDrawClassifier:
    """A classifier saved by ``train_classifier``, in eval mode on ``device`` (None = cpu).

    DataError (one line naming the file) when a file is missing, corrupt or does not match.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from sketchrl.classifiers.config import ClassifierConfig
    from sketchrl.devices import resolve_device

    target = resolve_device(device)
    directory = Path(directory)
    missing = [name for name in (WEIGHTS_FILE, CONFIG_FILE) if not (directory / name).is_file()]
    if missing:
        raise DataError(
            f"{directory} is not a trained classifier (missing {', '.join(missing)}); train one "
            f"with `sketchrl classifier train --out {directory}`"
        )
    try:
        config = ClassifierConfig.load_json(directory / CONFIG_FILE)
    except ConfigError as error:
        raise DataError(f"{directory / CONFIG_FILE}: {error}; train the classifier again") from None
    classifier = build_classifier(config.arch, config.categories)
    try:
        classifier.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    except (SafetensorError, RuntimeError, OSError, ValueError) as error:
        lines = str(error).strip().splitlines()
        reason = lines[0][:200] if lines else type(error).__name__
        raise DataError(
            f"{directory / WEIGHTS_FILE}: cannot load the classifier's weights ({reason}); "
            "the file is corrupt or from another classifier: train it again"
        ) from None
    return classifier.to(target).eval()


def load_input_bitmaps(
    source: str | Path, *, skip_bad: bool = False
) -> tuple[torch.Tensor, float]:
    """28x28 bitmaps ``(B, 1, 28, 28)`` and their ink value from a file or an asset name.

    ``.npy`` / ``.bin`` files are ``numpy_bitmap`` drawings, used as they are (ink 1); any other
    file (ndjson, sketch-rnn ``.npz``, samples ``.npz``) is read with
    ``sketchrl.data.load_sketches`` and drawn with ``QUICKDRAW_OPTIONS``. A name such as
    ``quickdraw:owl/numpy_bitmap`` that is not a file is resolved with ``sketchrl.assets``.
    ``skip_bad=True`` skips bad ndjson lines instead of raising.
    """
    path = Path(source)
    if not path.exists():
        if ":" not in str(source):
            raise DataError(f"input not found: {source}; give an ndjson, .npz or .npy file")
        from sketchrl.assets import resolve

        path = resolve(str(source))
    if path.suffix.lower() in BITMAP_SUFFIXES:
        from sketchrl.data import load_bitmaps

        bitmaps = np.asarray(load_bitmaps(path), dtype=np.uint8)
        return torch.from_numpy(bitmaps).unsqueeze(1), 1.0
    from sketchrl.data import load_sketches
    from sketchrl.render import QUICKDRAW_OPTIONS, render

    images = render(load_sketches(path, skip_bad=skip_bad), QUICKDRAW_OPTIONS)
    return images, 1.0 if QUICKDRAW_OPTIONS.ink_on_black else 0.0


def classify_bitmaps(
    classifier: QuickDrawClassifier, bitmaps: torch.Tensor, *, ink: float = 1.0,
    batch_size: int = 512,
) -> list[dict[str, Any]]:
    """One record per bitmap: ``index``, ``category`` (most probable), ``probs`` (per category)."""
    records: list[dict[str, Any]] = []
    for start in range(0, len(bitmaps), batch_size):
        probs = classifier.predict_proba(bitmaps[start : start + batch_size], ink=ink).cpu()
        for offset, row in enumerate(probs.tolist()):
            best = int(np.argmax(row))
            named = zip(classifier.categories, row, strict=True)
            records.append(
                {
                    "index": start + offset,
                    "category": classifier.categories[best],
                    "probability": round(row[best], 6),
                    "probs": {category: round(p, 6) for category, p in named},
                }
            )
    return records


def classify_file(
    classifier: QuickDrawClassifier, source: str | Path, *, skip_bad: bool = False
) -> list[dict[str, Any]]:
    """Classify every drawing of a file (see ``load_input_bitmaps``)."""
    bitmaps, ink = load_input_bitmaps(source, skip_bad=skip_bad)
    return classify_bitmaps(classifier, bitmaps, ink=ink)
