"""The asset resolver against the real mirror: local directory, file:// and a local HTTP server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sketchrl import assets
from sketchrl.assets import (
    AssetName,
    asset_base,
    candidate_paths,
    parse_asset_name,
    resolve,
    sketchrl_home,
)
from sketchrl.errors import AssetError

BIRD_MODEL = "quickdraw-models/sketchRNN/large_models/bird.gen.json"


def directory_handler(directory: Path) -> type[BaseHTTPRequestHandler]:
    """A static file handler serving ``directory``."""

    class DirectoryHandler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

    return DirectoryHandler


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[tuple[str, list[str]]]:
    """Serve on 127.0.0.1 (free port) in a thread; yields the base URL and the GET paths seen."""
    requested: list[str] = []

    class Recording(handler):
        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def mirror_server(shared_assets):
    with http_server(directory_handler(shared_assets)) as served:
        yield served


def files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


def assert_one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


# --- names and the path table ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("sketchrnn:bird", AssetName("sketchrnn", "bird", None)),
        ("quickdraw:cat/numpy_bitmap", AssetName("quickdraw", "cat", "numpy_bitmap")),
        ("quickdraw:palm tree/simplified", AssetName("quickdraw", "palm tree", "simplified")),
        (" quickdraw:owl/raw ", AssetName("quickdraw", "owl", "raw")),
        ("quickdraw:owl/sketchrnn", AssetName("quickdraw", "owl", "sketchrnn")),
    ],
)
def test_parse_asset_name(name, expected):
    parsed = parse_asset_name(name)
    assert parsed == expected
    assert parse_asset_name(str(parsed)) == parsed


@pytest.mark.parametrize(
    "name",
    ["bird", "model:bird", "quickdraw:bird", "quickdraw:bird/png", "sketchrnn:", "sketchrnn:a/b",
     "sketchrnn:../secret", "quickdraw:../x/raw", "quickdraw:/raw", "sketchrnn:bad\nname"],
)
def test_unknown_names_say_the_valid_forms(name):
    with pytest.raises(AssetError) as error:
        resolve(name)
    message = assert_one_line(error)
    assert "sketchrnn:<category>" in message and "quickdraw:<category>/" in message


def test_candidate_paths_follow_the_official_layout():
    assert candidate_paths("sketchrnn:bird") == [
        BIRD_MODEL,
        "quickdraw-models/sketchRNN/models/bird.gen.json",
    ]
    assert candidate_paths("quickdraw:cat/numpy_bitmap") == [
        "quickdraw_dataset/full/numpy_bitmap/cat.npy"
    ]
    assert candidate_paths("quickdraw:cat/simplified") == [
        "quickdraw_dataset/full/simplified/cat.ndjson"
    ]
    assert candidate_paths("quickdraw:cat/raw") == ["quickdraw_dataset/full/raw/cat.ndjson"]
    assert candidate_paths("quickdraw:cat/sketchrnn") == ["quickdraw_dataset/sketchrnn/cat.npz"]


def test_candidate_paths_try_both_spellings_of_multi_word_categories():
    # Quick, Draw! data files use spaces ("palm tree.npy"); sketch-rnn models use underscores.
    expected = [
        "quickdraw_dataset/full/simplified/palm tree.ndjson",
        "quickdraw_dataset/full/simplified/palm_tree.ndjson",
    ]
    assert candidate_paths("quickdraw:palm_tree/simplified") == expected
    assert candidate_paths("quickdraw:palm tree/simplified") == expected
    assert candidate_paths("sketchrnn:palm tree") == [
        "quickdraw-models/sketchRNN/large_models/palm_tree.gen.json",
        "quickdraw-models/sketchRNN/models/palm_tree.gen.json",
    ]


# --- base and home ----------------------------------------------------------------------------


def test_asset_base_precedence(monkeypatch, tmp_path, shared_assets):
    assert asset_base() == str(shared_assets)  # the conftest points the env at the mirror
    assert asset_base("http://mirror.example/assets") == "http://mirror.example/assets/"
    assert asset_base(tmp_path.as_uri()) == str(tmp_path.resolve())
    monkeypatch.delenv("SKETCHRL_ASSET_URL")
    assert asset_base() == "https://storage.googleapis.com/"
    monkeypatch.setenv("SKETCHRL_ASSET_URL", "https://example.org/x/")
    assert asset_base() == "https://example.org/x/"


@pytest.mark.parametrize("base", ["/no/such/mirror/dir", "ftp://example.org/"])
def test_asset_base_rejects_what_it_cannot_read(base):
    with pytest.raises(AssetError) as error:
        resolve("sketchrnn:bird", base=base)
    assert "SKETCHRL_ASSET_URL" in assert_one_line(error)


def test_sketchrl_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SKETCHRL_HOME", str(tmp_path / "home"))
    assert sketchrl_home() == tmp_path / "home"
    monkeypatch.delenv("SKETCHRL_HOME")
    assert sketchrl_home().name == "sketchrl"
    assert sketchrl_home() != tmp_path / "home"


# --- local directory bases --------------------------------------------------------------------


@pytest.mark.parametrize("as_uri", [False, True])
def test_local_directory_base_is_read_in_place(shared_assets, as_uri):
    base = shared_assets.as_uri() if as_uri else str(shared_assets)
    path = resolve("sketchrnn:bird", base=base)
    assert path == shared_assets / BIRD_MODEL
    bitmaps = resolve("quickdraw:palm tree/raw", base=base)
    assert bitmaps == shared_assets / "quickdraw_dataset/full/raw/palm_tree.ndjson"
    assert files_under(sketchrl_home()) == []


def test_env_directory_base_is_the_default(shared_assets):
    assert resolve("quickdraw:owl/numpy_bitmap") == (
        shared_assets / "quickdraw_dataset/full/numpy_bitmap/owl.npy"
    )


def test_missing_file_in_local_mirror_lists_what_is_there(shared_assets):
    with pytest.raises(AssetError) as error:
        resolve("sketchrnn:owl", base=shared_assets)
    message = assert_one_line(error)
    assert "large_models/owl.gen.json" in message and "models/owl.gen.json" in message
    assert "bird" in message and "palm_tree" in message
    with pytest.raises(AssetError) as error:
        resolve("quickdraw:owl/sketchrnn", base=shared_assets)
    assert "quickdraw_dataset/sketchrnn/owl.npz" in assert_one_line(error)


# --- downloads over HTTP ----------------------------------------------------------------------


def test_download_matches_mirror_and_is_cached(mirror_server, shared_assets):
    url, requested = mirror_server
    path = resolve("sketchrnn:bird", base=url, progress=False)
    assert path == sketchrl_home() / "assets" / BIRD_MODEL
    assert path.read_bytes() == (shared_assets / BIRD_MODEL).read_bytes()
    assert requested == [f"/{BIRD_MODEL}"]
    assert resolve("sketchrnn:bird", base=url, progress=False) == path
    assert len(requested) == 1  # the second call did not touch the server
    assert files_under(sketchrl_home()) == [path]  # no temp file left behind


def test_env_url_base_and_cache_dir(mirror_server, shared_assets, monkeypatch, tmp_path):
    url, requested = mirror_server
    monkeypatch.setenv("SKETCHRL_ASSET_URL", url)
    path = resolve("quickdraw:bird/numpy_bitmap", cache_dir=tmp_path, progress=False)
    relative = "quickdraw_dataset/full/numpy_bitmap/bird.npy"
    assert path == tmp_path / relative
    assert path.read_bytes() == (shared_assets / relative).read_bytes()
    assert requested == [f"/{relative}"]


def test_multi_word_category_is_url_quoted(mirror_server, shared_assets):
    url, requested = mirror_server
    path = resolve("quickdraw:palm tree/simplified", base=url, progress=False)
    relative = "quickdraw_dataset/full/simplified/palm_tree.ndjson"
    assert requested == [
        "/quickdraw_dataset/full/simplified/palm%20tree.ndjson",  # official spelling, 404 here
        f"/{relative}",
    ]
    assert path.read_bytes() == (shared_assets / relative).read_bytes()


def test_progress_bar_counts_bytes(mirror_server, capsys):
    url, _ = mirror_server
    resolve("quickdraw:owl/numpy_bitmap", base=url, progress=True)
    shown = capsys.readouterr()
    assert "quickdraw:owl/numpy_bitmap" in shown.err and "613k" in shown.err  # 627328 B
    assert shown.out == ""


def test_large_models_404_falls_back_to_models(tmp_path):
    served = tmp_path / "served"
    model = served / "quickdraw-models/sketchRNN/models/bird.gen.json"
    model.parent.mkdir(parents=True)
    model.write_bytes(b'[{"name": "bird"}, [], []]')
    with http_server(directory_handler(served)) as (url, requested):
        path = resolve("sketchrnn:bird", base=url, progress=False)
    assert requested == [f"/{BIRD_MODEL}", "/quickdraw-models/sketchRNN/models/bird.gen.json"]
    assert path.read_bytes() == model.read_bytes()
    assert path == sketchrl_home() / "assets/quickdraw-models/sketchRNN/models/bird.gen.json"


def test_404_everywhere_reports_every_url(mirror_server):
    url, requested = mirror_server
    with pytest.raises(AssetError) as error:
        resolve("sketchrnn:owl", base=url, progress=False)
    message = assert_one_line(error)
    assert "404" in message
    assert f"{url}{BIRD_MODEL.replace('bird', 'owl')}" in message
    assert f"{url}quickdraw-models/sketchRNN/models/owl.gen.json" in message
    assert len(requested) == 2
    assert files_under(sketchrl_home()) == []


class ServerErrorHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_error(503, "Slow Down")


class TruncatingHandler(BaseHTTPRequestHandler):
    """Promises 1000 bytes, sends 100, closes the connection."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"x" * 100)
        self.close_connection = True


class ChunkedCutHandler(BaseHTTPRequestHandler):
    """Chunked body cut off in the middle of a chunk."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"400\r\n" + b"y" * 100)
        self.close_connection = True


def test_http_error_reports_status_and_url():
    with http_server(ServerErrorHandler) as (url, requested):
        with pytest.raises(AssetError) as error:
            resolve("quickdraw:bird/raw", base=url, progress=False)
    message = assert_one_line(error)
    assert "503" in message and f"{url}quickdraw_dataset/full/raw/bird.ndjson" in message
    assert len(requested) == 1  # no fallback on errors other than 404


@pytest.mark.parametrize(
    "handler, detail", [(TruncatingHandler, "got 100 of 1000 bytes"), (ChunkedCutHandler, "cut")]
)
def test_truncated_download_leaves_nothing_in_cache(handler, detail):
    with http_server(handler) as (url, requested):
        with pytest.raises(AssetError) as error:
            resolve("sketchrnn:bird", base=url, progress=False)
    message = assert_one_line(error)
    assert f"{url}{BIRD_MODEL}" in message and "truncated" in message and detail in message
    assert requested == [f"/{BIRD_MODEL}"]
    assert files_under(sketchrl_home()) == []


def test_unreachable_server_says_how_to_use_a_mirror(monkeypatch):
    monkeypatch.setattr(assets, "TIMEOUT_S", 5.0)
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(AssetError) as error:
        resolve("sketchrnn:bird", base=url, progress=False)
    message = assert_one_line(error)
    assert f"{url}{BIRD_MODEL}" in message
    assert "SKETCHRL_ASSET_URL" in message and "--asset-url" in message
    assert files_under(sketchrl_home()) == []
