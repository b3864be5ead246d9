"""`sketchrl fetch`: prints local paths, one per line; errors are one line on stderr, exit 2."""

from __future__ import annotations

import functools
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sketchrl.assets import sketchrl_home
from sketchrl.cli.main import main

BIRD_MODEL = "quickdraw-models/sketchRNN/large_models/bird.gen.json"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror_url(shared_assets):
    """Base URL of a local HTTP server (127.0.0.1, free port) serving the mirror."""
    handler = functools.partial(QuietHandler, directory=str(shared_assets))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()
    thread.join()


def test_fetch_prints_one_local_path_per_name(mirror_url, shared_assets, capsys):
    names = ["sketchrnn:bird", "quickdraw:palm tree/simplified"]
    assert main(["fetch", *names, "--asset-url", mirror_url, "--quiet"]) == 0
    captured = capsys.readouterr()
    paths = [Path(line) for line in captured.out.splitlines()]
    relatives = [BIRD_MODEL, "quickdraw_dataset/full/simplified/palm_tree.ndjson"]
    assert paths == [sketchrl_home() / "assets" / relative for relative in relatives]
    for path, relative in zip(paths, relatives, strict=True):
        assert path.read_bytes() == (shared_assets / relative).read_bytes()
    assert captured.err == ""


def test_fetch_from_local_directory_env_reads_in_place(shared_assets, capsys):
    assert main(["fetch", "quickdraw:owl/numpy_bitmap"]) == 0
    out = capsys.readouterr().out
    assert out == f"{shared_assets / 'quickdraw_dataset/full/numpy_bitmap/owl.npy'}\n"


def test_fetch_shows_progress_unless_quiet(mirror_url, capsys):
    assert main(["fetch", "quickdraw:owl/numpy_bitmap", "--asset-url", mirror_url]) == 0
    assert "quickdraw:owl/numpy_bitmap" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["fetch", "owl"], "sketchrnn:<category>"),
        (["fetch", "sketchrnn:bird", "quickdraw:owl/png"], "quickdraw:<category>/"),
        (["fetch", "sketchrnn:owl"], "categories there"),
        (["fetch", "sketchrnn:bird", "--asset-url", "/no/such/dir"], "SKETCHRL_ASSET_URL"),
        (["fetch", "sketchrnn:bird", "--asset-url", "http://[::1"], "not a valid URL"),
    ],
)
def test_fetch_errors_are_one_line_and_exit_2(argv, expected, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # names are all checked before anything is fetched
    assert captured.err.startswith("sketchrl fetch: error: ")
    assert captured.err.count("\n") == 1 and expected in captured.err
    assert "Traceback" not in captured.err


def test_fetch_unreachable_server_exits_2(capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    assert main(["fetch", "sketchrnn:bird", "--asset-url", url, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{url}{BIRD_MODEL}" in err and "--asset-url" in err
    assert [path for path in sketchrl_home().rglob("*") if path.is_file()] == []


def test_fetch_help_explains_names_and_environment(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fetch", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for expected in ["sketchrnn:<category>", "numpy_bitmap", "simplified", "raw", "sketchrnn",
                     "SKETCHRL_ASSET_URL", "SKETCHRL_HOME", "--asset-url", "--quiet",
                     "sketchrl fetch sketchrnn:bird"]:
        assert expected in help_text


def test_fetch_removes_parts_left_by_a_killed_download(mirror_url, shared_assets, capsys):
    """`kill -9` during a download leaves `.<name>.<random>.part`; the next fetch removes it,
    but never one a running download holds locked, nor another asset's."""
    import fcntl
    import os
    import time

    folder = sketchrl_home() / "assets" / Path(BIRD_MODEL).parent
    folder.mkdir(parents=True)
    stale = folder / ".bird.gen.json.k9x2a.part"
    live = folder / ".bird.gen.json.live1.part"
    other = folder / ".owl.gen.json.k9x2a.part"
    for part in (stale, live, other):
        part.write_bytes(b"half a download")
        hour_ago = time.time() - 3600
        os.utime(part, (hour_ago, hour_ago))
    with live.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running download holds it
        assert main(["fetch", "sketchrnn:bird", "--asset-url", mirror_url, "--quiet"]) == 0
    assert not stale.exists() and live.exists() and other.exists()
    assert (folder / "bird.gen.json").read_bytes() == (shared_assets / BIRD_MODEL).read_bytes()
    capsys.readouterr()
    live.unlink()
    stale.write_bytes(b"killed again")  # leftovers are also cleaned when the file is cached
    os.utime(stale, (time.time() - 60, time.time() - 60))
    assert main(["fetch", "sketchrnn:bird", "--asset-url", mirror_url, "--quiet"]) == 0
    assert not stale.exists()
