"""C++ kernels compiled on first use, shared by every stage that has one.

:func:`compile_extension` builds a source file with ``torch.utils.cpp_extension`` (a minute or
so the first time; cached under ``TORCH_EXTENSIONS_DIR``, by default
``~/.cache/torch_extensions``) and returns the module, or None when the switch
``SKETCHRL_NATIVE`` is off or there is no compiler: every caller keeps a pure-torch path.
Users: :mod:`sketchrl.models.native` (the decoder's recurrent loops) and
:mod:`sketchrl.rewards.ssim` (the SSIM filter and formula).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from sketchrl.config import switched_on

#: Environment variable that turns the C++ kernels off ("0", "false", "no", "off").
SWITCH = "SKETCHRL_NATIVE"


def native_enabled() -> bool:
    """False when ``SKETCHRL_NATIVE`` says off."""
    return switched_on(SWITCH)


def extension_built(cpp_extension: ModuleType, name: str) -> bool:
    """Whether a compiled library named ``name`` is already in torch's extension cache (a
    guess: torch rebuilds it anyway when the source changed)."""
    try:
        folder = Path(cpp_extension._get_build_directory(name, verbose=False))
    except Exception:  # a private helper of torch: when it changes, just do not announce
        return True
    return any(folder.glob(f"{name}*.so"))


def compile_extension(name: str, source: Path, what: str, fallback: str,
                      log: logging.Logger, cflags: Sequence[str],
                      built: Callable[[ModuleType], bool] | None = None) -> ModuleType | None:
    """Build (or load from the cache) the extension ``name`` from ``source``.

    ``what`` names it in messages ("C++ decoder loops"), ``fallback`` says what runs instead
    when it cannot be built; ``built(cpp_extension)`` tells whether the build is cached (only
    to announce the pause of a first build). Returns None on any build failure.
    """
    quiet = logging.getLogger("torch.utils.cpp_extension")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "No CUDA runtime is found": irrelevant to CPU kernels
    try:
        from torch.utils import cpp_extension

        cached = built(cpp_extension) if built else extension_built(cpp_extension, name)
        if not cached:
            log.warning("compiling sketchrl's %s (once, about a minute)", what)
        return cpp_extension.load(name, [str(source)], extra_cflags=list(cflags), verbose=False)
    except Exception as error:  # no compiler, no ninja, no headers: the torch path instead
        reason = (str(error).strip().splitlines() or [""])[0]
        log.warning("the %s are unavailable (%s: %s); %s (set %s=0 to skip this attempt)",
                    what, type(error).__name__, reason, fallback, SWITCH)
        return None
    finally:
        quiet.setLevel(level)
