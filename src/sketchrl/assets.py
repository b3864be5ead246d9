"""Find downloadable assets (sketch-rnn models, Quick, Draw! data) by name.

Names:

- ``sketchrnn:<category>``: a sketch-rnn-js decoder
  (``quickdraw-models/sketchRNN/large_models/<category>.gen.json``, else ``.../models/``).
- ``quickdraw:<category>/<variant>`` with variant ``numpy_bitmap`` (``.npy``), ``simplified`` or
  ``raw`` (``.ndjson``), or ``sketchrnn`` (``.npz``), under ``quickdraw_dataset/``.

Files are read from a base: an explicit ``base=`` argument, else ``SKETCHRL_ASSET_URL``, else the
official server. A base is an http(s) URL (downloads are cached under
``sketchrl_home()/assets/<relative path>``) or a local directory / ``file://`` URL laid out like
the server (read in place, nothing is copied).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sketchrl import __version__
from sketchrl.errors import AssetError

if TYPE_CHECKING:  # imported where used: `sketchrl fetch --help` stays fast
    import http.client

logger = logging.getLogger(__name__)

OFFICIAL_BASE = "https://storage.googleapis.com/"
ASSET_URL_ENV = "SKETCHRL_ASSET_URL"
HOME_ENV = "SKETCHRL_HOME"
TIMEOUT_S = 30.0
CHUNK_BYTES = 1 << 16
MAX_LISTED = 40  # categories named in a "missing from the local mirror" error
#: A leftover ``.part`` file younger than this may belong to a download that is starting.
STALE_PART_AGE_S = 2.0
MIRROR_HINT = (
    f"point {ASSET_URL_ENV} (or --asset-url) at a mirror: an http(s) URL or a local directory "
    "with the same layout"
)


@dataclass(frozen=True)
class AssetLayout:
    """Where the files of one kind of asset live, relative to the base."""

    folders: tuple[str, ...]  # tried in this order
    suffix: str
    separators: tuple[str, ...]  # word separators tried in category names, official one first


# The one table of download locations: (kind, variant) -> layout.
ASSET_LAYOUTS: dict[tuple[str, str | None], AssetLayout] = {
    ("sketchrnn", None): AssetLayout(
        ("quickdraw-models/sketchRNN/large_models", "quickdraw-models/sketchRNN/models"),
        ".gen.json",
        ("_",),
    ),
    ("quickdraw", "numpy_bitmap"): AssetLayout(
        ("quickdraw_dataset/full/numpy_bitmap",), ".npy", (" ", "_")
    ),
    ("quickdraw", "simplified"): AssetLayout(
        ("quickdraw_dataset/full/simplified",), ".ndjson", (" ", "_")
    ),
    ("quickdraw", "raw"): AssetLayout(("quickdraw_dataset/full/raw",), ".ndjson", (" ", "_")),
    ("quickdraw", "sketchrnn"): AssetLayout(("quickdraw_dataset/sketchrnn",), ".npz", (" ", "_")),
}

QUICKDRAW_VARIANTS = tuple(v for k, v in ASSET_LAYOUTS if k == "quickdraw" and v is not None)
NAME_FORMS = (
    f"use sketchrnn:<category> or quickdraw:<category>/{{{','.join(QUICKDRAW_VARIANTS)}}} "
    "(e.g. sketchrnn:bird, quickdraw:bird/numpy_bitmap)"
)


@dataclass(frozen=True)
class AssetName:
    """A parsed asset name: ``kind`` ("sketchrnn" or "quickdraw"), ``category``, ``variant``."""

    kind: str
    category: str
    variant: str | None = None

    def __str__(self) -> str:
        suffix = f"/{self.variant}" if self.variant else ""
        return f"{self.kind}:{self.category}{suffix}"

    @property
    def layout(self) -> AssetLayout:
        return ASSET_LAYOUTS[(self.kind, self.variant)]


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def parse_asset_name(name: str) -> AssetName:
    """Parse ``sketchrnn:<cat>`` or ``quickdraw:<cat>/<variant>``; AssetError if malformed."""
    kind, colon, rest = name.strip().partition(":")
    kind = kind.strip().lower()
    if not colon or kind not in {k for k, _ in ASSET_LAYOUTS}:
        raise AssetError(f"unknown asset name {name!r}: {NAME_FORMS}")
    variant: str | None = None
    if kind == "quickdraw":
        category, slash, variant = rest.rpartition("/")
        if not slash or variant not in QUICKDRAW_VARIANTS:
            raise AssetError(f"unknown asset name {name!r}: {NAME_FORMS}")
    else:
        category = rest
    category = category.strip()
    bad = not category or category.startswith(".") or any(c in category for c in "/\\:")
    if bad or not category.isprintable():
        raise AssetError(f"bad category {category!r} in asset name {name!r}: {NAME_FORMS}")
    return AssetName(kind, category, variant)


def _spellings(category: str, separators: tuple[str, ...]) -> list[str]:
    words = category.replace("_", " ").split()
    return list(dict.fromkeys(sep.join(words) for sep in separators))


def candidate_paths(name: str | AssetName) -> list[str]:
    """Relative paths (``/``-separated, not URL-quoted) of an asset, in fallback order."""
    asset = name if isinstance(name, AssetName) else parse_asset_name(name)
    layout = asset.layout
    return [
        f"{folder}/{spelling}{layout.suffix}"
        for folder in layout.folders
        for spelling in _spellings(asset.category, layout.separators)
    ]


def sketchrl_home() -> Path:
    """sketchrl's data folder: ``SKETCHRL_HOME``, else the user's cache dir (~/.cache/sketchrl)."""
    configured = os.environ.get(HOME_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("sketchrl"))


def _local_directory(base: str) -> Path | None:
    """The directory a non-http base names, or None for an http(s) URL."""
    try:
        parsed = urllib.parse.urlparse(base)
    except ValueError as error:  # e.g. "http://[::1" (an unclosed IPv6 bracket)
        message = f"asset base {base!r} is not a valid URL ({error}); {MIRROR_HINT}"
        raise AssetError(message) from None
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        from urllib.request import url2pathname

        return Path(url2pathname(parsed.path))
    if scheme and len(scheme) > 1:  # "C:" drive letters are not schemes
        raise AssetError(f"asset base {base!r} has unsupported scheme {scheme!r}; {MIRROR_HINT}")
    return Path(base).expanduser()


def asset_base(base: str | os.PathLike | None = None) -> str:
    """The base in use: ``base``, else ``SKETCHRL_ASSET_URL``, else the official server.

    Returns an http(s) URL ending in ``/`` or the absolute path of an existing directory.
    """
    chosen = str(base) if base is not None else os.environ.get(ASSET_URL_ENV, "").strip()
    chosen = chosen or OFFICIAL_BASE
    directory = _local_directory(chosen)
    if directory is None:
        return chosen if chosen.endswith("/") else chosen + "/"
    if not directory.is_dir():
        raise AssetError(
            f"asset base {chosen!r} is neither an http(s) URL nor an existing directory; "
            f"{MIRROR_HINT}"
        )
    return str(directory.resolve())


def resolve(
    name: str,
    *,
    base: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Local path of asset ``name``: in a local-directory base, in the cache, or downloaded.

    Downloads go to ``cache_dir`` (default ``sketchrl_home()/assets``) at the asset's relative
    path and are re-used without network access when present.
    """
    asset = parse_asset_name(name)
    relative_paths = candidate_paths(asset)
    base_str = asset_base(base)
    if _local_directory(base_str) is not None:
        return _find_in_directory(asset, relative_paths, Path(base_str))
    cache = Path(cache_dir) if cache_dir is not None else sketchrl_home() / "assets"
    for relative in relative_paths:
        cached = cache / relative
        remove_stale_parts(cached)
        if cached.is_file():
            logger.debug("using cached %s", cached)
            return cached
    not_found: list[str] = []
    for relative in relative_paths:
        url = base_str + urllib.parse.quote(relative)
        if _download(url, cache / relative, desc=str(asset), progress=progress):
            return cache / relative
        not_found.append(url)
    raise AssetError(
        f"{asset} not found (HTTP 404) at {', '.join(not_found)}; check the category name, "
        f"or {MIRROR_HINT}"
    )


def _find_in_directory(asset: AssetName, relative_paths: list[str], directory: Path) -> Path:
    for relative in relative_paths:
        path = directory / relative
        if path.is_file():
            return path
    tried = ", ".join(str(directory / relative) for relative in relative_paths)
    available = sorted(_categories_in(directory, asset.layout))
    shown = ", ".join(available[:MAX_LISTED])
    if len(available) > MAX_LISTED:
        shown += f" (+{len(available) - MAX_LISTED} more)"
    there = f"categories there: {shown}" if available else "it has no asset of this kind"
    raise AssetError(
        f"{asset} is missing from the local asset mirror (tried {tried}); {there}; "
        f"or set {ASSET_URL_ENV} / --asset-url to another mirror"
    )


def _categories_in(directory: Path, layout: AssetLayout) -> Iterator[str]:
    for folder in dict.fromkeys(layout.folders):
        found = directory / folder
        if found.is_dir():
            for path in found.iterdir():
                if path.name.endswith(layout.suffix) and not path.name.startswith("."):
                    yield path.name[: -len(layout.suffix)]


def remove_stale_parts(target: Path) -> list[Path]:
    """Delete leftover ``.<name>.*.part`` files of ``target`` (a download killed with
    ``kill -9`` or a power cut); returns them. A ``.part`` that a running download holds
    locked (or, where locks are unavailable, one written to in the last hour) is kept."""
    if not target.parent.is_dir():
        return []
    removed = []
    for part in target.parent.glob(f".{_glob_escape(target.name)}.*.part"):
        try:
            young = time.time() - part.stat().st_mtime < STALE_PART_AGE_S
            if young or not _unlink_if_unlocked(part):
                continue
        except OSError:  # vanished meanwhile, or not ours to delete
            continue
        logger.info("removed %s, left over by an interrupted download", part)
        removed.append(part)
    return removed


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _unlink_if_unlocked(part: Path) -> bool:
    """Unlink ``part`` unless another process holds its lock; whether it was removed."""
    try:
        import fcntl
    except ImportError:  # no POSIX locks: only hour-old parts count as abandoned
        if time.time() - part.stat().st_mtime < 3600:
            return False
        part.unlink()
        return True
    with part.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        part.unlink()
    return True


def _lock(handle: BinaryIO) -> None:
    """Hold an exclusive lock on a ``.part`` file while it is written (released at exit, also
    on ``kill -9``), so that :func:`remove_stale_parts` never deletes a live download."""
    try:
        import fcntl
    except ImportError:
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a file system without locks: the age rule still protects it
        logger.debug("cannot lock %s", handle.name)


def _download(url: str, target: Path, *, desc: str, progress: bool) -> bool:
    """Download ``url`` to ``target`` atomically; False on HTTP 404, AssetError otherwise."""
    import http.client
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": f"sketchrl/{__version__}"})
    logger.info("downloading %s", url)
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code in (404, 410):
            return False
        raise AssetError(
            f"HTTP {error.code} {_one_line(error.reason)} for {url}; try again later or "
            f"{MIRROR_HINT}"
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", error) or type(error).__name__
        raise AssetError(
            f"cannot reach {url} ({_one_line(reason)}); without network access, {MIRROR_HINT}"
        ) from None
    with response:
        _stream_to_file(response, url, target, desc=desc, progress=progress)
    return True


def _stream_to_file(
    response: http.client.HTTPResponse, url: str, target: Path, *, desc: str, progress: bool
) -> None:
    """Write the body to a temp file beside ``target``, check its length, then rename it."""
    import tempfile

    header = response.headers.get("Content-Length")
    expected = int(header) if header and header.strip().isdigit() else None
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(target)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            _lock(out)
            received = _copy_body(response, out, url, expected, desc=desc, progress=progress)
        if expected is not None and received != expected:
            raise AssetError(
                f"download of {url} truncated: got {received} of {expected} bytes; try again "
                f"or {MIRROR_HINT}"
            )
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    logger.info("saved %s (%d bytes)", target, received)


def _copy_body(
    response: http.client.HTTPResponse,
    out: BinaryIO,
    url: str,
    expected: int | None,
    *,
    desc: str,
    progress: bool,
) -> int:
    """Copy the response body to ``out`` with a byte progress bar; the number of bytes copied."""
    import http.client

    from tqdm.auto import tqdm

    received = 0
    with tqdm(
        total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
        disable=not progress, leave=False,
    ) as bar:
        try:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
            reason = _one_line(error) or type(error).__name__
            raise AssetError(
                f"download of {url} truncated: connection cut after {received} bytes ({reason}); "
                f"try again or {MIRROR_HINT}"
            ) from None
    return received


def file_digest(path: str | Path) -> str:
    """First 16 hex digits of the file's SHA-256 (a cache key or a record of what was used)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]
