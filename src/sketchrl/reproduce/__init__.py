"""`sketchrl reproduce`: a whole study (tasks x methods x seeds, sweeps) from one command."""

from sketchrl.reproduce.pipeline import Study, reproduce
from sketchrl.reproduce.presets import PRESETS, Method, Preset, Sweep, Task, get_preset

__all__ = ["PRESETS", "Method", "Preset", "Study", "Sweep", "Task", "get_preset", "reproduce"]
