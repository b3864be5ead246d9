"""The live page of `sketchrl export --html`, opened in headless Chromium.

Needs Node.js, ``npm ci`` in tests/js (playwright-core, @magenta/sketch) and Debian's Chromium
(``apt-get install chromium``); skipped locally without them, failing in CI. The browser side is
tests/js/live_page.js: it presses "draw", draws two mouse strokes and presses "finish", and calls
the page's JS hook, reporting the page's counters, the canvas ink by colour and console errors.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import skip_or_fail

from sketchrl.cli.main import main
from sketchrl.models import load_model

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JS_DIR = Path(__file__).resolve().parent / "js"
LIBRARY = JS_DIR / "node_modules" / "@magenta" / "sketch" / "dist" / "magentasketch.js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def browser_tools() -> str:
    """The node executable, once Chromium and tests/js's packages are installed."""
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        skip_or_fail("Node.js and npm are not installed")
    if not LIBRARY.is_file() or not (JS_DIR / "node_modules" / "playwright-core").is_dir():
        skip_or_fail("tests/js/node_modules is missing: run `npm ci` in tests/js")
    if not Path(CHROMIUM).is_file():
        skip_or_fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    return node


def trained_bird(directory: Path) -> Path:
    """The bird decoder after a short `sketchrl train` (SSIM to a real bird; a large learning
    rate so that the change survives the export's 16-bit rounding)."""
    settings = ["model=sketchrnn:bird", "reward=ssim", "reward.target=quickdraw:bird/simplified",
                "episodes=8", "batch_size=4", "max_len=40", "warmup_batches=0", "lr=1e-3",
                "device=cpu"]
    arguments = ["train", "--out", str(directory), "--quiet"]
    for setting in settings:
        arguments += ["--set", setting]
    assert main(arguments) == 0
    return directory


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def served_page(tmp_path, capsys):
    """`sketchrl export RUN --html DIR --js LOCAL` served on 127.0.0.1; yields the page URL."""
    browser_tools()
    page_dir = tmp_path / "page"
    run = trained_bird(tmp_path / "run")
    assert main(["export", str(run), "--html", str(page_dir), "--js", str(LIBRARY)]) == 0
    exported = capsys.readouterr().out
    assert "live page for bird" in exported
    assert "differ from sketchrnn:bird" in exported
    assert "lost" not in exported  # the fine-tune survived the rounding
    handler = functools.partial(QuietHandler, directory=str(page_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html?seed=1"
    finally:
        server.shutdown()
        server.server_close()


def test_page_draws_and_finishes_a_drawing(served_page, tmp_path):
    node = browser_tools()
    output = tmp_path / "page_result.json"
    done = subprocess.run([node, str(JS_DIR / "live_page.js"), served_page, str(output)],
                          capture_output=True, text=True, timeout=300, cwd=JS_DIR,
                          env={**os.environ, "CHROMIUM": CHROMIUM})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["errors"] == []
    assert result["loaded"] == "ready"
    # "draw": a sketch from scratch, in the model's colour only.
    draw = result["draw"]
    assert draw["state"] == "ready" and draw["modelSegments"] > 5
    assert draw["ink"]["red"] > 200 and draw["ink"]["black"] == 0
    # "finish" before drawing anything: a message, and the page keeps working.
    assert result["finishEmpty"]["state"] == "ready"
    assert "draw on the canvas first" in result["finishEmpty"]["status"]
    # A person's two mouse strokes, finished by the model: both colours on the canvas.
    assert result["lines"] == 2
    finish = result["finish"][-1]
    assert finish["state"] == "ready"
    assert finish["personSegments"] >= 3 and finish["modelSegments"] > 0
    assert finish["ink"]["black"] > 100 and finish["ink"]["red"] > 50
    # The JS hook: given lines in canvas pixels.
    assert result["hook"]["prefixRows"] >= 3
    assert result["afterHook"]["personSegments"] >= 3
    assert result["afterHook"]["ink"]["black"] > 100


def test_page_says_so_when_the_library_does_not_load(tmp_path):
    """Without network the CDN copy cannot load: the page reports it instead of hanging."""
    from sketchrl.web import write_live_page

    node = browser_tools()
    model = load_model("sketchrnn:bird")
    page = write_live_page(model, tmp_path / "page", library_url="http://127.0.0.1:9/none.js")
    handler = functools.partial(QuietHandler, directory=str(page.directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        output = tmp_path / "result.json"
        subprocess.run([node, str(JS_DIR / "live_page.js"), url, str(output)], timeout=300,
                       capture_output=True, cwd=JS_DIR, env={**os.environ, "CHROMIUM": CHROMIUM})
        result = json.loads(output.read_text())
    finally:
        server.shutdown()
        server.server_close()
    assert result["loaded"] == "error"
    assert any("did not load" in error for error in result["errors"])
