"""SketchRNN in PyTorch: config, cells, mixture head, batched sampling, import/export.

Public API (see docs/ARCHITECTURE.md, "Models"):

- :class:`SketchRNNConfig`, :class:`SketchRNN` (``encode``, ``sample_prior_z``,
  ``teacher_forcing``, ``forward``, ``log_prob``, ``sample``), :class:`Rollout`;
- :func:`reconstruction_loss` and :func:`kl_loss` (Magenta's training losses);
- :func:`sample_sketches` (many sketches in batches, as stroke-3);
- :func:`load_model` / :func:`save_model`; :func:`load_sketch_rnn_js` /
  :func:`export_sketch_rnn_js`.
"""

from sketchrl.models.cells import CELLS, build_cell
from sketchrl.models.config import SketchRNNConfig
from sketchrl.models.io import cpu_state_dict, load_model, save_model
from sketchrl.models.mixture import MixtureParams, apply_temperature, split_output
from sketchrl.models.rollout import Rollout
from sketchrl.models.sampling import sample_rollout, sample_sketches
from sketchrl.models.sketch_rnn import SketchRNN, SketchRNNOutput, kl_loss, reconstruction_loss
from sketchrl.models.sketch_rnn_js import export_sketch_rnn_js, load_sketch_rnn_js

__all__ = [
    "CELLS",
    "MixtureParams",
    "Rollout",
    "SketchRNN",
    "SketchRNNConfig",
    "SketchRNNOutput",
    "apply_temperature",
    "build_cell",
    "cpu_state_dict",
    "export_sketch_rnn_js",
    "kl_loss",
    "load_model",
    "load_sketch_rnn_js",
    "reconstruction_loss",
    "sample_rollout",
    "sample_sketches",
    "save_model",
    "split_output",
]
