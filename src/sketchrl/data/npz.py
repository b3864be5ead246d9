"""sketch-rnn ``.npz`` stroke data, read without running arbitrary pickles.

The official files (``quickdraw_dataset/sketchrnn/<name>.npz``) hold ``train``, ``valid`` and
``test`` members that are object arrays of int16 stroke-3 arrays; numpy stores object arrays
as pickles, which ``np.load(..., allow_pickle=True)`` would run, and a pickle can call any
function. Here each member is read by hand instead:

1. the ``.npz`` is opened as the zip file it is, and each ``<member>.npy`` header is parsed
   with ``numpy.lib.format`` (``read_magic`` and ``read_array_header_*``);
2. a numeric member is read with ``numpy.lib.format.read_array(..., allow_pickle=False)``;
3. an object member's pickle is loaded with :class:`RestrictedUnpickler`, whose ``find_class``
   only hands out what rebuilding arrays needs: ``numpy.ndarray``, ``numpy.dtype`` and the
   ``_reconstruct`` helper (under its numpy 1 and numpy 2 module names). A pickle that asks
   for anything else (``os.system``, ``builtins.eval``, ...) stops with DataError before that
   object is ever looked up, so nothing it names runs.

Python 2 pickles (as in the official files) are read with ``encoding="latin1"``, like Magenta.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from sketchrl.data.common import PathLike, existing_file
from sketchrl.errors import DataError
from sketchrl.strokes import as_stroke3

__all__ = ["RestrictedUnpickler", "load_sketchrnn_npz", "npz_member_names", "read_npz_member"]

SPLITS = ("train", "valid", "test")

# ndarray.__reduce__ names numpy's private _reconstruct; take it from there, not by import.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_ALLOWED_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle asked for a global that is not on the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can only rebuild numpy arrays (see the module docstring)."""

    def find_class(self, module: str, name: str):  # noqa: D102 - pickle API
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid):  # noqa: D102 - pickle API
        raise pickle.UnpicklingError("persistent ids are not allowed")


def _read_header(handle: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = npy_format.read_magic(handle)
    if version == (1, 0):
        return npy_format.read_array_header_1_0(handle)
    if version == (2, 0):
        return npy_format.read_array_header_2_0(handle)
    raise ValueError(f"unsupported .npy format version {version}")


def npz_member_names(path: PathLike) -> list[str]:
    """The array names stored in an ``.npz`` file (DataError if it is not a zip archive)."""
    path = existing_file(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path} is not a valid .npz (zip) file ({exc}); re-download it") from exc


def read_npz_member(path: PathLike, name: str) -> np.ndarray:
    """Read one array of an ``.npz`` file; object arrays through :class:`RestrictedUnpickler`."""
    path = existing_file(path)
    try:
        with zipfile.ZipFile(path) as archive:
            member = f"{name}.npy"
            if member not in archive.namelist():
                raise DataError(f"{path} has no array '{name}'; it holds {npz_member_names(path)}")
            with archive.open(member) as handle:
                shape, _, dtype = _read_header(handle)
                if not dtype.hasobject:
                    handle.seek(0)
                    return npy_format.read_array(handle, allow_pickle=False)
                array = RestrictedUnpickler(handle, encoding="latin1").load()
    except ForbiddenGlobal as exc:
        raise DataError(
            f"{path}: array '{name}' is a pickle that asks for {exc}, which is not allowed "
            "(only numpy arrays may be rebuilt); refusing to load this untrusted file"
        ) from None
    except DataError:
        raise
    except Exception as exc:  # corrupt archive, header or pickle: all mean a bad file
        raise DataError(f"{path}: cannot read array '{name}' ({exc}); re-download it") from exc
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise DataError(f"{path}: array '{name}' does not match its header; re-download it")
    return array


def _as_sketch_list(array: np.ndarray, where: str) -> list[np.ndarray]:
    if array.dtype != object and array.ndim == 3:
        array = list(array)  # equal-length sketches saved as one (n, N, 3) array
    elif array.ndim != 1:
        raise DataError(f"{where} has shape {np.shape(array)}; expected a list of stroke-3 arrays")
    return [as_stroke3(sketch, what=f"{where}[{index}]") for index, sketch in enumerate(array)]


def load_sketchrnn_npz(path: PathLike) -> dict[str, list[np.ndarray]]:
    """Load a sketch-rnn ``.npz``: ``{"train", "valid", "test"}`` -> lists of float32 stroke-3.

    Safe on untrusted files (see the module docstring); DataError on a missing split, a
    forbidden pickle, or members that are not stroke-3 arrays.
    """
    path = Path(path)
    names = npz_member_names(path)
    missing = [split for split in SPLITS if split not in names]
    if missing:
        raise DataError(
            f"{path} is not a sketch-rnn .npz: missing {missing} (it holds {names}); expected "
            "train, valid and test arrays of stroke-3 sketches"
        )
    return {
        split: _as_sketch_list(read_npz_member(path, split), f"{path} {split}") for split in SPLITS
    }
