"""Classifier networks for 1x28x28 Quick, Draw! bitmaps, and the model that wraps them.

``NETWORKS`` maps an architecture name to ``factory(num_classes) -> nn.Module`` whose input is a
``(B, 1, 28, 28)`` float batch (ink 1 on paper 0) and whose output is ``(B, num_classes)`` logits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from sketchrl.errors import ConfigError

BITMAP_SIZE = 28


def build_resnet18(num_classes: int) -> nn.Module:
    """torchvision ResNet18 (random init) for 28x28 gray input.

    The ImageNet stem (7x7 stride-2 conv + max-pool, a 4x downsampling) would leave a 7x7 map
    after the stem; a 3x3 stride-1 first conv on one channel and no max-pool keep the resolution
    (28 -> 28 -> 14 -> 7 -> 4 through the four stages), as is usual for CIFAR/MNIST-sized input.
    """
    from torchvision.models import resnet18

    network = resnet18(weights=None, num_classes=num_classes)
    network.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
    network.maxpool = nn.Identity()
    return network


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def build_small_cnn(num_classes: int) -> nn.Module:
    """A small fast CNN (0.14 M parameters): 2x(conv-conv-pool) + conv + global average pool."""
    return nn.Sequential(
        _conv_block(1, 32),
        _conv_block(32, 32),
        nn.MaxPool2d(2),
        _conv_block(32, 64),
        _conv_block(64, 64),
        nn.MaxPool2d(2),
        _conv_block(64, 128),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(128, num_classes),
    )


NETWORKS: dict[str, Callable[[int], nn.Module]] = {
    "resnet18": build_resnet18,
    "cnn": build_small_cnn,
}


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Evaluate in eval mode, then give the module back in the mode it was in."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


class QuickDrawClassifier(nn.Module):
    """A network over ``categories``; ``forward`` takes ink-1 bitmaps and returns logits."""

    def __init__(self, network: nn.Module, categories: Sequence[str], arch: str = "") -> None:
        super().__init__()
        self.network = network
        self.categories = list(categories)
        self.arch = arch

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, bitmaps: torch.Tensor) -> torch.Tensor:
        return self.network(bitmaps)

    def predict_proba(self, bitmaps: torch.Tensor, ink: float = 1.0) -> torch.Tensor:
        """Class probabilities ``(B, len(categories))`` of 28x28 bitmaps, on the model's device.

        Args:
            bitmaps: ``(B, 1, 28, 28)`` (or ``(B, 28, 28)``) float in [0, 1], or uint8 in
                [0, 255] as in ``numpy_bitmap`` files.
            ink: pixel value of ink: 1 (white on black, like ``numpy_bitmap``) or 0 (black on
                white, ``sketchrl.render``'s default); 0 is flipped before classifying.
        """
        images = self._ink_one_images(bitmaps, ink)
        if len(images) == 0:
            return images.new_zeros((0, len(self.categories)))
        with torch.no_grad(), _eval_mode(self):
            return torch.softmax(self(images), dim=1)

    def features(self, bitmaps: torch.Tensor, ink: float = 1.0) -> torch.Tensor:
        """The input of the network's last linear layer, ``(B, D)`` float32 (128 for ``cnn``,
        512 for ``resnet18``): the penultimate features. ``bitmaps`` and ``ink`` as in
        :meth:`predict_proba`."""
        images = self._ink_one_images(bitmaps, ink)
        head = [m for m in self.network.modules() if isinstance(m, nn.Linear)][-1]
        captured: list[torch.Tensor] = []
        hook = head.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0]))
        try:
            with torch.no_grad(), _eval_mode(self):
                self(images)
        finally:
            hook.remove()
        return captured[0].float()

    def _ink_one_images(self, bitmaps: torch.Tensor, ink: float) -> torch.Tensor:
        """``(B, 1, 28, 28)`` float images with ink 1, on the model's device."""
        if bitmaps.dim() == 3:
            bitmaps = bitmaps.unsqueeze(1)
        if bitmaps.dim() != 4 or tuple(bitmaps.shape[1:]) != (1, BITMAP_SIZE, BITMAP_SIZE):
            raise ValueError(
                f"expected bitmaps of shape (B, 1, {BITMAP_SIZE}, {BITMAP_SIZE}), "
                f"got {tuple(bitmaps.shape)}"
            )
        if ink not in (0, 1):
            raise ValueError(f"ink must be 0 or 1, got {ink!r}")
        images = bitmaps.to(self.device)
        images = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        return 1.0 - images if ink == 0 else images


def build_classifier(arch: str, categories: Sequence[str]) -> QuickDrawClassifier:
    """An untrained classifier; unknown ``arch`` is a ConfigError listing the valid ones."""
    if arch not in NETWORKS:
        raise ConfigError(f"unknown arch {arch!r}; valid: {', '.join(NETWORKS)}")
    return QuickDrawClassifier(NETWORKS[arch](len(categories)), categories, arch)
