"""CLIP reward: the probability of the positive prompt among a few prompts (zero-shot CLIP).

``open_clip`` is imported only when a CLIP reward is built. Weights: ``weights=PATH`` (a local
open_clip / OpenAI checkpoint file), else the ``pretrained`` tag from the local cache (Hugging
Face hub or open_clip's), else downloaded through open_clip. Before a download the server is
probed for about a second (``HF_HUB_OFFLINE`` skips it), so that without network the answer comes
at once instead of after the hub's retries. Where no weights can be had, building the reward
raises :class:`MissingCLIPWeights` (an :class:`AssetError`) saying how to supply a file; it never
falls back to a fake score.
``random_weights=True`` builds the real architecture with random weights, for tests only.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import pickle
import socket
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from sketchrl.devices import resolve_device
from sketchrl.errors import AssetError, ConfigError
from sketchrl.render import CLIP_OPTIONS
from sketchrl.rewards.base import Reward

logger = logging.getLogger(__name__)

#: The paper's five classes: prompts for the category and, as negatives, the other four.
PAPER_CLASSES = ("owl", "cat", "dog", "bird", "fish")
#: ``{category}`` (or ``{}``) is the category, ``{article}`` "a" or "an" before it: the default
#: gives the paper's prompts "a sketch of an owl", "a sketch of a cat", ...
DEFAULT_TEMPLATE = "a sketch of {article} {category}"
#: Images per CLIP forward pass.
CHUNK_SIZE = 64
#: Seconds to wait for the weights server before deciding there is no network.
PROBE_TIMEOUT_S = 1.5
#: How to supply weights, in every command that uses CLIP.
WEIGHTS_HINT = (
    "pass a local open_clip checkpoint file (sketchrl evaluate / reproduce: --clip-weights FILE; "
    "sketchrl train: --set reward.weights=FILE), or run once with network access"
)


class MissingCLIPWeights(AssetError):
    """No CLIP weights could be found or downloaded; the message says how to pass a file."""

    def __init__(self, problem: str, hint: str = WEIGHTS_HINT) -> None:
        self.problem = problem
        super().__init__(f"{problem}; {hint}")

    def with_hint(self, hint: str) -> MissingCLIPWeights:
        """The same error with a command's own way of passing weights."""
        return MissingCLIPWeights(self.problem, hint)


def article_for(word: str) -> str:
    """'an' before a vowel letter, else 'a' (enough for category names)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def build_prompts(
    category: str, negatives: Sequence[str] | None, template: str,
    prompts: Sequence[str] | None = None,
) -> list[str]:
    """The prompts, positive first: ``prompts`` as given, or the template over the categories.

    ``negatives=None`` means the paper's classes other than ``category``.
    """
    if prompts is not None:
        prompts = [str(p) for p in prompts]
        if len(prompts) < 2 or any(not p.strip() for p in prompts):
            raise ConfigError(
                f"prompts={prompts!r}: give at least two non-empty prompts, the positive first"
            )
        return prompts
    if negatives is None:
        negatives = [c for c in PAPER_CLASSES if c != category]
    negatives = [str(n) for n in negatives]
    if category in negatives:
        raise ConfigError(
            f"category {category!r} is also among the negatives {negatives}; remove it"
        )
    categories = [category, *negatives]
    if len(categories) < 2:
        raise ConfigError("the clip reward needs at least one negative category (negatives=...)")
    try:
        return [template.format(c, category=c, article=article_for(c)) for c in categories]
    except (KeyError, IndexError, ValueError) as error:
        raise ConfigError(
            f"template {template!r} is not usable ({error}); use {{category}} (or {{}}) and "
            "optionally {article}, e.g. 'a sketch of {article} {category}'"
        ) from None


@contextlib.contextmanager
def _quiet_hub_logs() -> Iterator[None]:
    """Silence huggingface_hub's retry warnings while we try a download (restored after)."""
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hub_logger.setLevel(level)


def resolve_clip_checkpoint(model_name: str, pretrained: str | None, weights: str | None) -> str:
    """Path of the weights file to load: ``weights``, else the cached or fetched tag."""
    import open_clip

    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MissingCLIPWeights(f"CLIP weights file not found: {path}")
        return str(path)
    if not pretrained:
        raise MissingCLIPWeights(f"no CLIP weights chosen for {model_name}")
    tag_config = open_clip.get_pretrained_cfg(model_name, pretrained)
    if not tag_config:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise ConfigError(
            f"unknown pretrained tag {pretrained!r} for {model_name}; valid: {', '.join(tags)}"
        )
    cached = cached_clip_checkpoint(tag_config)
    if cached is not None:
        return cached
    what = f"CLIP {model_name} weights {pretrained!r} are not in the local cache"
    offline = offline_reason(tag_config)
    if offline is not None:
        raise MissingCLIPWeights(f"{what} and {offline}")
    try:
        with _quiet_hub_logs():
            checkpoint = open_clip.download_pretrained(tag_config)
    except Exception as error:  # offline hub, DNS failure, HTTP error: all mean "no weights"
        raise MissingCLIPWeights(
            f"{what} and the download failed ({type(error).__name__})"
        ) from None
    if not checkpoint:
        raise MissingCLIPWeights(f"open_clip has no download for {model_name} {pretrained!r}")
    return str(checkpoint)


def _uses_hub(tag_config: dict[str, Any]) -> bool:
    from open_clip.pretrained import has_hf_hub

    return bool(tag_config.get("hf_hub")) and has_hf_hub()


def cached_clip_checkpoint(tag_config: dict[str, Any]) -> str | None:
    """The weights file of an open_clip tag when it is already on disk, without network."""
    if tag_config.get("file") and Path(tag_config["file"]).is_file():
        return str(tag_config["file"])
    if _uses_hub(tag_config):
        from huggingface_hub import try_to_load_from_cache
        from open_clip import pretrained as registry

        model_id, filename = os.path.split(tag_config["hf_hub"])
        filename = filename or registry.HF_WEIGHTS_NAME
        safe = getattr(registry, "_get_safe_alternatives", lambda name: [])(filename)
        for name in [*safe, filename]:
            found = try_to_load_from_cache(model_id, name)
            if isinstance(found, str) and Path(found).is_file():
                return found
    url = tag_config.get("url")
    if url:  # open_clip's own cache of URL downloads
        path = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        if path.is_file():
            return str(path)
    return None


def offline_reason(tag_config: dict[str, Any]) -> str | None:
    """Why the weights server of a tag cannot be reached now (None: it answered)."""
    if _uses_hub(tag_config):
        from huggingface_hub import constants

        flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
        if constants.HF_HUB_OFFLINE or flag in ("1", "ON", "YES", "TRUE"):
            return "HF_HUB_OFFLINE is set"
        url = constants.ENDPOINT
    else:
        url = tag_config.get("url") or ""
    return probe(url)


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Open a TCP connection to ``url``'s server (or the https proxy in the environment) within
    ``timeout`` seconds, name lookup included; None when it answered, else the reason."""
    from urllib.request import getproxies, proxy_bypass

    target = urllib.parse.urlparse(url)
    if not target.hostname:
        return f"there is no server to download them from ({url!r})"
    proxy = getproxies().get(target.scheme or "https")
    if proxy and not proxy_bypass(target.hostname):
        target = urllib.parse.urlparse(proxy if "://" in proxy else f"http://{proxy}")
    host, port = target.hostname, target.port or (443 if target.scheme == "https" else 80)
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(f"cannot reach {host} ({type(error).__name__}: no network?)")

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else f"cannot reach {host} within {timeout:g} s (no network?)"


def create_clip_model(
    model_name: str, pretrained: str | None, weights: str | None, random_weights: bool,
    device: torch.device,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """An eval-mode open_clip model and its preprocessing config (size, mean, std, ...)."""
    import open_clip

    if model_name not in open_clip.list_models():
        raise ConfigError(
            f"unknown CLIP model_name {model_name!r}; e.g. ViT-B-32, ViT-B-16, ViT-L-14 "
            "(open_clip.list_models() has them all)"
        )
    tag_config = (open_clip.get_pretrained_cfg(model_name, pretrained) or {}) if pretrained else {}
    checkpoint = (
        None if random_weights else resolve_clip_checkpoint(model_name, pretrained, weights)
    )
    preprocess = {k: tag_config[k] for k in ("mean", "std", "interpolation", "resize_mode")
                  if k in tag_config}
    try:
        model = open_clip.create_model(
            model_name,
            pretrained=checkpoint,
            force_quick_gelu=bool(tag_config.get("quick_gelu", False)),
            force_preprocess_cfg=preprocess or None,
            device=device,
        )
    except (RuntimeError, OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as error:
        if checkpoint is None:
            raise
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise AssetError(
            f"cannot load CLIP weights from {checkpoint} ({first_line[:200]}); the weights "
            f"option must point at an open_clip {model_name} checkpoint file"
        ) from None
    model.eval().requires_grad_(False)
    return model, dict(open_clip.get_model_preprocess_cfg(model))


class CLIPReward(Reward):
    """Softmax probability (CLIP's logit scale) of the positive prompt over all prompts."""

    name: ClassVar[str] = "clip"

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = "openai",
        weights: str | None = None,
        category: str = "owl",
        negatives: Sequence[str] | None = None,
        template: str = DEFAULT_TEMPLATE,
        prompts: Sequence[str] | None = None,
        random_weights: bool = False,
        device: str | torch.device | None = None,
    ) -> None:
        """
        Args:
            model_name: open_clip architecture (the paper: ViT-B-32).
            pretrained: open_clip tag of the weights (the paper: "openai"); also says which
                activation (QuickGELU) and normalisation a ``weights`` file needs.
            weights: local checkpoint file; overrides downloading the ``pretrained`` tag.
            category: positive class; ``negatives`` are the other classes (None: the paper's
                owl, cat, dog, bird, fish without ``category``).
            template: prompt template, see ``DEFAULT_TEMPLATE``.
            prompts: explicit prompts (the first is the positive); overrides the above.
            random_weights: TESTS ONLY: the real architecture with random weights.
            device: where CLIP runs (None = cpu).
        """
        self.device = resolve_device(device)
        self.render_options = CLIP_OPTIONS
        self.prompts = build_prompts(category, negatives, template, prompts)
        self.model, preprocess = create_clip_model(
            model_name, pretrained, weights, bool(random_weights), self.device
        )
        size = preprocess.get("size", 224)
        self.image_size = (size, size) if isinstance(size, int) else tuple(size)
        bilinear = preprocess.get("interpolation") == "bilinear"
        self.interpolation = "bilinear" if bilinear else "bicubic"
        self.mean = torch.tensor(preprocess["mean"], device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(preprocess["std"], device=self.device).view(1, 3, 1, 1)
        self.model_name = model_name
        self.text_features = self._encode_prompts(self.prompts)
        self.logit_scale = float(self.model.logit_scale.exp())

    def _encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        import open_clip

        tokens = open_clip.get_tokenizer(self.model_name)(list(prompts)).to(self.device)
        with torch.no_grad():
            return self.model.encode_text(tokens, normalize=True).float()

    def with_prompts(self, prompts: Sequence[str]) -> CLIPReward:
        """A reward sharing this CLIP model, over other prompts (the first is the positive)."""
        other = copy.copy(self)
        other.prompts = build_prompts("", None, DEFAULT_TEMPLATE, prompts)
        other.text_features = self._encode_prompts(other.prompts)
        return other

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """open_clip's transform on tensors: resize the shorter side, centre crop, normalise."""
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        height, width = images.shape[-2:]
        target_h, target_w = self.image_size
        if (height, width) != (target_h, target_w):
            scale = max(target_h / height, target_w / width)
            resized = (round(height * scale), round(width * scale))
            images = F.interpolate(
                images, size=resized, mode=self.interpolation, align_corners=False, antialias=True
            ).clamp(0.0, 1.0)
            top, left = (resized[0] - target_h) // 2, (resized[1] - target_w) // 2
            images = images[..., top : top + target_h, left : left + target_w]
        return (images - self.mean) / self.std

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, len(prompts))`` softmax over the prompts, in chunks of ``CHUNK_SIZE``."""
        images = images.to(self.device, torch.float32)
        chunks = []
        with torch.no_grad():
            for start in range(0, len(images), CHUNK_SIZE):
                pixels = self.preprocess(images[start : start + CHUNK_SIZE])
                features = self.model.encode_image(pixels, normalize=True).float()
                logits = self.logit_scale * features @ self.text_features.T
                chunks.append(torch.softmax(logits, dim=1))
        if not chunks:
            return torch.zeros(0, len(self.prompts), device=self.device)
        return torch.cat(chunks)

    def __call__(self, images: torch.Tensor, sketches: Sequence[np.ndarray]) -> torch.Tensor:
        return self.probabilities(self.check_images(images))[:, 0].contiguous()
