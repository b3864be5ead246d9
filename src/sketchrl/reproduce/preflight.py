"""Check what a study needs before any work: output folder, model, data, rewards' files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from sketchrl.errors import ConfigError

if TYPE_CHECKING:
    from sketchrl.reproduce.pipeline import Study


def check_writable(path: Path) -> None:
    """``path`` exists as a writable folder or can be created (its nearest existing ancestor
    is a writable folder); ConfigError otherwise."""
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"--out {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {path}: {ancestor} is not writable; choose another folder")


def preflight(study: Study) -> None:
    """Every asset, weight file and output path the study needs, checked in seconds."""
    from sketchrl.assets import resolve
    from sketchrl.devices import resolve_device
    from sketchrl.models import load_model
    from sketchrl.rewards import build_reward

    preset = study.preset
    resolve_device(study.device)
    check_writable(study.paths.root)
    load_model(preset.model)  # the pretrained model (fetched once, then cached)
    for task in preset.tasks:
        resolve(f"{task.reference}/numpy_bitmap", progress=False)  # FID's real drawings
        for _, name, options in study.evaluation_rewards(task):
            if options.get("model") != str(study.paths.classifier("reward")):
                build_reward(name, options)  # SSIM targets, CLIP weights
        for method in preset.trained_methods:
            config = study.rl_config(task, method)
            if config.prefix_from:
                from sketchrl.rl.prefixes import load_drawings

                load_drawings(config.prefix_from)
            if config.reward != "classifier" and config.reward != task.reward:
                build_reward(config.reward, config.reward_options)
    for category in preset.classifier_categories:
        resolve(f"quickdraw:{category}/numpy_bitmap", progress=False)
