"""`sketchrl reproduce`: the paper's study (or its offline counterpart) from one command."""

from sketchrl.reproduce.pipeline import Study, reproduce
from sketchrl.reproduce.presets import PRESETS, Method, Preset, get_preset

__all__ = ["PRESETS", "Method", "Preset", "Study", "get_preset", "reproduce"]
