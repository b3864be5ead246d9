"""The one configuration of a SketchRNN model: architecture plus Magenta's training hparams."""

from __future__ import annotations

import dataclasses
from typing import Any

from sketchrl.config import Config
from sketchrl.errors import ConfigError

#: Recurrent cells a model may use (keys of ``sketchrl.models.cells.CELLS``).
CELL_NAMES = ("lstm", "layer_norm", "hyper")

# Magenta hparams that describe a training run rather than the model; ignored on import.
MAGENTA_RUN_KEYS = ("data_set", "num_steps", "save_every", "is_training")


@dataclasses.dataclass
class SketchRNNConfig(Config):
    """Magenta's ``sketch_rnn`` hparams (same names and defaults) plus ``name``/``scale_factor``.

    Model units are pixels / ``scale_factor``: the model reads and writes stroke offsets in
    these units; multiply by ``scale_factor`` to get back the data set's pixels.
    """

    # -- identity ----------------------------------------------------------------------------
    name: str = "sketchrnn"  # what the model draws (category), used in logs and file names
    scale_factor: float = 1.0  # pixels per model unit (std of the training offsets)

    # -- architecture --------------------------------------------------------------------------
    conditional: bool = True  # True: VAE (encoder + latent z); False: decoder-only, no z
    enc_model: str = "lstm"  # encoder cell: lstm, layer_norm or hyper
    dec_model: str = "lstm"  # decoder cell: lstm, layer_norm or hyper
    enc_rnn_size: int = 256  # units of each direction of the bidirectional encoder
    dec_rnn_size: int = 512  # units of the decoder
    z_size: int = 128  # size of the latent vector z (VAE only)
    num_mixture: int = 20  # bivariate Gaussians in the offset mixture
    max_seq_len: int = 250  # longest sequence in training; the default sampling length
    hyper_num_units: int = 256  # units of the HyperLSTM's small hyper-network ("hyper" only)
    hyper_embedding_size: int = 32  # size of the hyper-network's signals ("hyper" only)

    # -- dropout (active only in train mode) -------------------------------------------------
    use_recurrent_dropout: bool = True  # recurrent dropout without memory loss on the cell input
    recurrent_dropout_prob: float = 0.90  # keep probability of recurrent dropout
    use_input_dropout: bool = False  # dropout on the decoder's input
    input_dropout_prob: float = 0.90  # keep probability of input dropout
    use_output_dropout: bool = False  # dropout on the decoder's output
    output_dropout_prob: float = 0.90  # keep probability of output dropout

    # -- training (read by pretraining) --------------------------------------------------------
    batch_size: int = 100  # sketches per minibatch
    learning_rate: float = 0.001  # Adam learning rate at step 0
    decay_rate: float = 0.9999  # learning rate decay per minibatch
    min_learning_rate: float = 0.00001  # floor of the decayed learning rate
    grad_clip: float = 1.0  # gradients are clipped to [-grad_clip, grad_clip]
    kl_weight: float = 0.5  # weight of the KL term once annealing has finished
    kl_weight_start: float = 0.01  # KL weight at step 0 (annealed towards kl_weight)
    kl_decay_rate: float = 0.99995  # KL annealing: weight gap shrinks by this per minibatch
    kl_tolerance: float = 0.2  # KL below this level is not optimised (free bits)
    random_scale_factor: float = 0.15  # data augmentation: random x/y scaling of +- this
    augment_stroke_prob: float = 0.10  # data augmentation: probability of dropping a point

    def __post_init__(self) -> None:
        for key in ("enc_model", "dec_model"):
            if getattr(self, key) not in CELL_NAMES:
                raise ConfigError(
                    f"SketchRNNConfig.{key}={getattr(self, key)!r}: use one of "
                    f"{', '.join(CELL_NAMES)}"
                )
        for key in ("enc_rnn_size", "dec_rnn_size", "z_size", "num_mixture", "max_seq_len",
                    "hyper_num_units", "hyper_embedding_size", "batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"SketchRNNConfig.{key}={value!r}: use a positive integer")
        for key in ("recurrent_dropout_prob", "input_dropout_prob", "output_dropout_prob"):
            if not 0.0 < getattr(self, key) <= 1.0:
                raise ConfigError(
                    f"SketchRNNConfig.{key}={getattr(self, key)!r}: a keep probability in (0, 1]"
                )
        for key in ("scale_factor", "learning_rate", "grad_clip"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"SketchRNNConfig.{key}={getattr(self, key)!r}: use a value > 0")
        for key in ("decay_rate", "kl_decay_rate"):
            if not 0.0 < getattr(self, key) <= 1.0:
                raise ConfigError(f"SketchRNNConfig.{key}={getattr(self, key)!r}: use (0, 1]")
        for key in ("random_scale_factor", "augment_stroke_prob"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"SketchRNNConfig.{key}={getattr(self, key)!r}: use [0, 1)")

    @property
    def output_size(self) -> int:
        """Size of the decoder's output layer: 3 pen logits + 6 values per mixture component."""
        return 3 + 6 * self.num_mixture

    @classmethod
    def from_magenta(cls, hparams: dict[str, Any], **extra: Any) -> SketchRNNConfig:
        """Build from a Magenta ``model_config.json`` (0/1 flags become bools).

        Run-only keys (``data_set``, ``num_steps``, ``save_every``, ``is_training``) are
        dropped; ``extra`` (e.g. ``name``, ``scale_factor``) overrides.
        """
        hints = {f.name: f.type for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in hparams.items():
            if key in MAGENTA_RUN_KEYS:
                continue
            values[key] = bool(value) if hints.get(key) in (bool, "bool") else value
        values.update(extra)
        return cls.from_dict(values)
