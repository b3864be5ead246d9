"""Pretraining SketchRNN (VAE or decoder-only) the way Magenta's ``sketch_rnn_train`` does.

Loss: reconstruction (mixture NLL on drawing rows + pen cross-entropy on every step, mean over
``B * T``) plus ``kl_weight_at(step) * max(KL, kl_tolerance)`` for a VAE. Adam with the learning
rate ``learning_rate_at(step)``, gradients clipped to ``[-grad_clip, grad_clip]``, Magenta's
augmentations (random scale, point dropping) on the training set only. The loss and schedule
hparams are the model's own (:class:`SketchRNNConfig`, Magenta's names); :class:`PretrainConfig`
says what to train on and how long.

Steps are counted as Magenta's ``global_step``: the update that runs at step ``s`` (schedules
evaluated at ``s``) is recorded as step ``s + 1``, the number of updates done.

Output directory: ``model.safetensors`` + ``model_config.json`` (the latest weights, readable by
``load_model``), ``training_state.pt`` (optimizer and step, for ``resume``),
``pretrain_config.json``, ``metrics.csv`` and TensorBoard events under ``tb/``.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from sketchrl.config import Config
from sketchrl.data import StrokeDataset
from sketchrl.errors import ConfigError
from sketchrl.models.config import SketchRNNConfig
from sketchrl.models.io import cpu_state_dict, load_model_directory, save_model
from sketchrl.models.pretrain_data import (
    Splits,
    endless_batches,
    fit_max_seq_len,
    load_splits,
    make_datasets,
)
from sketchrl.models.sketch_rnn import SketchRNN, kl_loss, reconstruction_loss

logger = logging.getLogger(__name__)

STATE_FILE = "training_state.pt"
PRETRAIN_CONFIG_FILE = "pretrain_config.json"
METRICS_FILE = "metrics.csv"
METRIC_FIELDS = ("step", "split", "loss", "reconstruction", "kl", "kl_weight", "learning_rate")


@dataclasses.dataclass
class PretrainConfig(Config):
    """What to pretrain on and for how long; ``model`` holds the architecture and Magenta's
    loss / schedule / augmentation hparams."""

    data: list[str] = dataclasses.field(default_factory=list)  # .npz / .ndjson files or assets
    model: SketchRNNConfig = dataclasses.field(default_factory=SketchRNNConfig)
    num_steps: int = 10000  # total optimizer steps (a resumed run continues up to this)
    valid_fraction: float = 0.1  # share of ndjson drawings held out when no valid split exists
    eval_every: int = 500  # steps between validation losses (and at the end)
    save_every: int = 500  # steps between checkpoints (and at the end)
    log_every: int = 20  # steps between TensorBoard / metrics.csv rows of the training loss
    seed: int = 0  # data split, batches, augmentations, initialisation and z noise
    device: str | None = None  # torch device; None = CPU
    num_workers: int = 0  # DataLoader worker processes

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = SketchRNNConfig.from_dict(self.model)
        self.data = [str(item) for item in self.data]
        for key in ("num_steps", "eval_every", "save_every", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"PretrainConfig.{key}={getattr(self, key)!r}: use an int >= 1")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ConfigError(f"PretrainConfig.valid_fraction={self.valid_fraction!r}: use [0, 1)")
        if self.num_workers < 0:
            raise ConfigError(f"PretrainConfig.num_workers={self.num_workers!r}: use an int >= 0")


def with_settings(config: PretrainConfig, settings: dict[str, str]) -> PretrainConfig:
    """Apply ``key=value`` strings to ``config`` or, for model keys, to ``config.model``."""
    own = {k: v for k, v in settings.items() if k in PretrainConfig.field_names() and k != "model"}
    model = {k: v for k, v in settings.items() if k not in own}
    unknown = sorted(set(model) - set(SketchRNNConfig.field_names()))
    if unknown:
        valid = [k for k in PretrainConfig.field_names() if k != "model"]
        valid += SketchRNNConfig.field_names()
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    return dataclasses.replace(config.with_overrides(own),
                               model=config.model.with_overrides(model))


# -- schedules (Magenta's formulas) ----------------------------------------------------------------
def learning_rate_at(step: int, hparams: SketchRNNConfig) -> float:
    """``(learning_rate - min_learning_rate) * decay_rate ** step + min_learning_rate``."""
    decayed = (hparams.learning_rate - hparams.min_learning_rate) * hparams.decay_rate**step
    return decayed + hparams.min_learning_rate


def kl_weight_at(step: int, hparams: SketchRNNConfig) -> float:
    """``kl_weight - (kl_weight - kl_weight_start) * kl_decay_rate ** step``."""
    gap = hparams.kl_weight - hparams.kl_weight_start
    return hparams.kl_weight - gap * hparams.kl_decay_rate**step


# -- one step, evaluation ------------------------------------------------------------------------
def compute_losses(model: SketchRNN, strokes5: torch.Tensor, lengths: torch.Tensor,
                   kl_weight: float, generator: torch.Generator | None = None
                   ) -> dict[str, torch.Tensor]:
    """Magenta's ``r_cost``, ``kl_cost`` (0 for decoder-only) and ``cost = r + w * kl``."""
    output = model(strokes5, lengths, generator=generator)
    reconstruction = reconstruction_loss(output.params, strokes5, lengths)
    if output.mu is None or output.presig is None:
        kl = reconstruction.new_zeros(())
    else:
        kl = kl_loss(output.mu, output.presig, model.config.kl_tolerance)
    return {"loss": reconstruction + kl_weight * kl, "reconstruction": reconstruction, "kl": kl}


def train_step(model: SketchRNN, optimizer: torch.optim.Optimizer, strokes5: torch.Tensor,
               lengths: torch.Tensor, step: int,
               generator: torch.Generator | None = None) -> dict[str, float]:
    """One Adam step at Magenta's learning rate and KL weight for ``step``; its metrics."""
    hparams = model.config
    learning_rate, kl_weight = learning_rate_at(step, hparams), kl_weight_at(step, hparams)
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
    model.train()
    losses = compute_losses(model, strokes5.to(model.device), lengths.to(model.device),
                            kl_weight, generator)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), hparams.grad_clip)
    optimizer.step()
    return {**{k: float(v.detach()) for k, v in losses.items()}, "kl_weight": kl_weight,
            "learning_rate": learning_rate}


@torch.no_grad()
def evaluate(model: SketchRNN, dataset: StrokeDataset, step: int, batch_size: int = 100,
             seed: int = 0) -> dict[str, float]:
    """Mean losses over ``dataset`` without dropout (Magenta's eval model), KL weight of
    ``step``; z is drawn from q(z | sketch) with a fixed seed."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=model.device).manual_seed(seed)
    kl_weight = kl_weight_at(step, model.config)
    totals: dict[str, float] = {}
    for strokes5, lengths in DataLoader(dataset, batch_size=batch_size):
        losses = compute_losses(model, strokes5.to(model.device), lengths.to(model.device),
                                kl_weight, generator)
        for key, value in losses.items():
            totals[key] = totals.get(key, 0.0) + float(value) * len(lengths)
    model.train(was_training)
    metrics = {key: value / len(dataset) for key, value in totals.items()}
    learning_rate = learning_rate_at(step, model.config)
    return {**metrics, "kl_weight": kl_weight, "learning_rate": learning_rate}


# -- output directory ------------------------------------------------------------------------------
def check_out_dir(out_dir: Path, resume: bool) -> None:
    """A fresh run needs an empty or missing folder; ``resume`` needs a saved training state."""
    if resume:
        if not (out_dir / STATE_FILE).is_file():
            raise ConfigError(f"{out_dir} has no {STATE_FILE} to resume from; drop --resume or "
                              "point --out at a pretraining output folder")
    elif out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"output folder {out_dir} is not empty; pass --resume to continue its "
                          "training or choose a new --out")


def load_pretrain_config(out_dir: str | Path) -> PretrainConfig:
    """The :class:`PretrainConfig` a pretraining folder was last run with."""
    return PretrainConfig.load_json(Path(out_dir) / PRETRAIN_CONFIG_FILE)


def save_checkpoint(model: SketchRNN, optimizer: torch.optim.Optimizer, step: int,
                    out_dir: Path) -> None:
    """Weights, optimizer and step in one atomic state file, then weights + config via
    ``save_model``: a kill between the two resumes from the state, never from weights of
    another step than its optimizer's."""
    temporary = out_dir / f"{STATE_FILE}.tmp"
    torch.save({"step": step, "optimizer": optimizer.state_dict(),
                "model": cpu_state_dict(model)}, temporary)
    os.replace(temporary, out_dir / STATE_FILE)
    save_model(model, out_dir)


def _append_metrics(out_dir: Path, split: str, step: int, metrics: dict[str, float],
                    writer: Any) -> None:
    path = out_dir / METRICS_FILE
    new = not path.exists()
    with path.open("a", newline="") as handle:
        rows = csv.DictWriter(handle, fieldnames=METRIC_FIELDS, extrasaction="ignore")
        if new:
            rows.writeheader()
        rows.writerow({"step": step, "split": split, **metrics})
    for key, value in metrics.items():
        writer.add_scalar(f"{split}/{key}", value, step)


# -- the run ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class PretrainResult:
    """What one call of :func:`pretrain` did: the updates from ``first_step`` to ``step``."""

    out_dir: Path
    first_step: int
    step: int
    train: list[dict[str, float]]  # one per update of this call, "step" = updates done
    valid: list[dict[str, float]]  # one per evaluation, with "step"
    model: SketchRNN


#: Model fields fixed by the weights: on resume they come from the saved model, not the config.
ARCHITECTURE_KEYS = (
    "name", "scale_factor", "conditional", "enc_model", "dec_model", "enc_rnn_size",
    "dec_rnn_size", "z_size", "num_mixture", "max_seq_len", "hyper_num_units",
    "hyper_embedding_size", "use_recurrent_dropout", "recurrent_dropout_prob",
    "use_input_dropout", "input_dropout_prob", "use_output_dropout", "output_dropout_prob",
)


def data_name(spec: str) -> str:
    """What a data file or asset draws: the asset's category or the file's stem."""
    if not Path(spec).expanduser().exists() and ":" in spec:
        from sketchrl.assets import parse_asset_name

        return parse_asset_name(spec).category
    return Path(spec).stem


def _prepare_model(config: PretrainConfig, out_dir: Path, resume: bool, splits: Splits,
                   device: torch.device) -> SketchRNN:
    """A new model sized to the data, or (resume) the saved one with ``config``'s training
    hparams (batch size, schedules, augmentation) applied."""
    if not resume:
        name = config.model.name
        if name == SketchRNNConfig.name and config.data:
            name = data_name(config.data[0])
        hparams = dataclasses.replace(
            config.model, name=name,
            max_seq_len=fit_max_seq_len(splits, config.model.max_seq_len))
        return SketchRNN(hparams).to(device)
    model = load_model_directory(out_dir, device)
    saved = {key: getattr(model.config, key) for key in ARCHITECTURE_KEYS}
    changed = [k for k in ARCHITECTURE_KEYS[2:] if getattr(config.model, k) != saved[k]]
    if changed:
        logger.warning("resume keeps the saved model's %s", ", ".join(changed))
    model.config = dataclasses.replace(config.model, **saved)
    return model


def _restore_or_start(config: PretrainConfig, out_dir: Path, resume: bool, splits: Splits,
                      device: torch.device) -> tuple[SketchRNN, torch.optim.Optimizer, int]:
    """The model, its Adam optimizer and the number of updates already done."""
    model = _prepare_model(config, out_dir, resume, splits, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=model.config.learning_rate)
    if not resume:
        return model, optimizer, 0
    state = torch.load(out_dir / STATE_FILE, map_location=device, weights_only=True)
    if "model" in state:  # absent in states written before the weights were part of it
        model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return model, optimizer, int(state["step"])


def _fit(model: SketchRNN, optimizer: torch.optim.Optimizer, config: PretrainConfig,
         data: tuple[StrokeDataset, StrokeDataset | None], result: PretrainResult,
         progress: bool) -> None:
    """Train from ``result.step`` to ``config.num_steps``: log, evaluate and save on schedule."""
    from tqdm.auto import tqdm

    from sketchrl.tensorboard import summary_writer

    train_set, valid_set = data
    generator = torch.Generator().manual_seed(config.seed + result.step)
    batches = endless_batches(train_set, model.config.batch_size, generator, config.num_workers)
    out_dir = result.out_dir
    with summary_writer(str(out_dir / "tb")) as writer:
        bar = tqdm(range(result.step, config.num_steps), disable=not progress, desc="pretrain")
        for step in bar:
            strokes5, lengths = next(batches)
            metrics = train_step(model, optimizer, strokes5, lengths, step)
            done = result.step = step + 1
            result.train.append({"step": done, **metrics})
            bar.set_postfix(loss=f"{metrics['loss']:.3f}")
            last = done == config.num_steps
            if done % config.log_every == 0 or done == 1 or last:
                _append_metrics(out_dir, "train", done, metrics, writer)
            if valid_set is not None and (done % config.eval_every == 0 or last):
                scores = evaluate(model, valid_set, done, model.config.batch_size, config.seed)
                result.valid.append({"step": done, **scores})
                _append_metrics(out_dir, "valid", done, scores, writer)
            if done % config.save_every == 0 or last:
                save_checkpoint(model, optimizer, done, out_dir)


def pretrain(config: PretrainConfig, out_dir: str | Path, resume: bool = False,
             progress: bool = True) -> PretrainResult:
    """Train up to ``config.num_steps`` updates in ``out_dir`` (see the module docstring).

    A fresh run refuses a non-empty ``out_dir``. ``resume=True`` loads the weights, optimizer
    and step; the saved model's architecture, scale factor and ``max_seq_len`` win over
    ``config.model``, whose training hparams (schedules, batch size, augmentation) apply.
    Seeds the random streams from ``config.seed`` without touching the caller's.
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir, resume)
    device = torch.device(config.device or "cpu")
    splits = load_splits(config.data, config.valid_fraction, config.seed)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        model, optimizer, start = _restore_or_start(config, out_dir, resume, splits, device)
        torch.manual_seed(config.seed + start)
        data = make_datasets(splits, model.config, seed=config.seed + start,
                             scale_factor=model.config.scale_factor if resume else None)
        model.config = dataclasses.replace(model.config, scale_factor=data[0].scale_factor)
        out_dir.mkdir(parents=True, exist_ok=True)
        dataclasses.replace(config, model=model.config).save_json(out_dir / PRETRAIN_CONFIG_FILE)
        if data[1] is None:
            logger.warning("no validation sketches: validation losses are skipped")
        logger.info("pretraining %s on %d sketches, updates %d..%d", model.config.name,
                    len(data[0]), start, config.num_steps)
        result = PretrainResult(out_dir, start, start, [], [], model)
        _fit(model, optimizer, config, data, result, progress)
    return result
