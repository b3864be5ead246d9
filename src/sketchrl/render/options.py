"""How a sketch becomes a raster: :class:`RenderOptions` and the presets used across sketchrl."""

from __future__ import annotations

import dataclasses

from sketchrl.config import Config
from sketchrl.errors import ConfigError


@dataclasses.dataclass
class RenderOptions(Config):
    """Raster size, colour channels, stroke width and framing of a render.

    Attributes:
        size: height and width of the square image in pixels.
        channels: 1 (grayscale) or 3 (RGB; the gray image repeated).
        line_width: stroke width in output pixels (round caps and joins).
        margin: blank fraction of the side kept on each side of the sketch's path: the longer
            side of the sketch's bounding box spans ``size * (1 - 2 * margin)`` pixels.
        ink_on_black: False (default) gives black ink (0) on white paper (1); True gives
            white ink (1) on black paper (0), as Quick, Draw!'s ``numpy_bitmap`` files store it.
    """

    size: int = 224
    channels: int = 1
    line_width: float = 2.0
    margin: float = 0.1
    ink_on_black: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise ConfigError(f"RenderOptions.size={self.size!r}: use a positive integer")
        if self.channels not in (1, 3):
            raise ConfigError(f"RenderOptions.channels={self.channels!r}: use 1 (gray) or 3 (RGB)")
        if not self.line_width > 0:
            raise ConfigError(
                f"RenderOptions.line_width={self.line_width!r}: use a positive width in pixels"
            )
        if not 0 <= self.margin < 0.5:
            raise ConfigError(
                f"RenderOptions.margin={self.margin!r}: use a fraction of the side in [0, 0.5)"
            )

    @property
    def paper(self) -> float:
        """Pixel value of blank paper."""
        return 0.0 if self.ink_on_black else 1.0


#: 224x224 grayscale, black on white: the SSIM reward's images.
SSIM_OPTIONS = RenderOptions(size=224, channels=1, line_width=2.0, margin=0.1)
#: 224x224 RGB, black on white: CLIP's input.
CLIP_OPTIONS = RenderOptions(size=224, channels=3, line_width=2.0, margin=0.1)
#: 299x299 RGB, black on white: the FID Inception network's input.
INCEPTION_OPTIONS = RenderOptions(size=299, channels=3, line_width=2.5, margin=0.1)
#: 28x28 like Quick, Draw!'s ``numpy_bitmap`` (white ink on black, 1 = ink). The official
#: bitmaps stroke the simplified drawing (0-255 box, centred in 256) with a 16-unit round pen in
#: a 256 + 3 * 16 = 304-unit frame drawn at 28 px: a 16 * 28 / 304 = 1.47 px pen and a
#: (304 - 255) / 2 / 304 = 0.081 margin. With these values the renders of real simplified
#: drawings reproduce their real bitmaps (mean absolute pixel error 0.008) and the bitmaps' ink
#: statistics (within 0.1%); see tests/test_render.py.
QUICKDRAW_OPTIONS = RenderOptions(
    size=28, channels=1, line_width=16 * 28 / 304, margin=(304 - 255) / 2 / 304, ink_on_black=True
)

PRESETS: dict[str, RenderOptions] = {
    "ssim": SSIM_OPTIONS,
    "clip": CLIP_OPTIONS,
    "inception": INCEPTION_OPTIONS,
    "quickdraw": QUICKDRAW_OPTIONS,
}
