"""Write the live page: a static folder that draws with an exported model in the browser."""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import math
import shutil
from pathlib import Path

from sketchrl.errors import ConfigError, DataError
from sketchrl.models.sketch_rnn import SketchRNN
from sketchrl.models.sketch_rnn_js import ExportReport, export_magenta_js
from sketchrl.web.template import INDEX_HTML, SKETCH_JS

logger = logging.getLogger(__name__)

#: The ``@magenta/sketch`` release the page is written and tested against.
MAGENTA_SKETCH_VERSION = "0.2.0"
#: Its browser bundle (the package's ``dist/magentasketch.js``; it defines ``window.ms``).
MAGENTA_SKETCH_CDN = (
    f"https://cdn.jsdelivr.net/npm/@magenta/sketch@{MAGENTA_SKETCH_VERSION}/dist/magentasketch.js"
)
MODEL_FILE, SCRIPT_FILE, LOCAL_LIBRARY = "model.json", "sketch.js", "magentasketch.js"


@dataclasses.dataclass(frozen=True)
class LivePage:
    """The files of a written page."""

    directory: Path
    index: Path
    library: str
    export: ExportReport

    def summary(self) -> str:
        """One line: where the page is, how to open it, and the export's rounding check."""
        rounding = (self.export.rounding.describe() if self.export.rounding is not None
                    else "no starting model to compare with")
        return (f"{self.index}: live page for {self.export.name} ({rounding}); serve it with "
                f"python -m http.server -d {self.directory} 8000 and open "
                "http://127.0.0.1:8000/")


def write_live_page(
    model: SketchRNN,
    out_dir: str | Path,
    *,
    js: str | Path | None = None,
    library_url: str = MAGENTA_SKETCH_CDN,
    base: SketchRNN | None = None,
    base_name: str = "the starting model",
    temperature: float = 0.5,
    canvas_size: int = 512,
    pixel_factor: float = 1.0,
    warn: bool = True,
) -> LivePage:
    """Write ``index.html``, ``model.json`` and ``sketch.js`` into ``out_dir`` (created).

    The page loads ``@magenta/sketch`` from ``library_url`` or, with ``js`` (a local copy of
    its ``dist/magentasketch.js``), from a copy next to the page. ``temperature`` is the page's
    initial temperature (``getPDF``'s: magenta-js semantics). ``pixel_factor`` is the
    library's: a canvas pixel is ``pixel_factor`` pixels of the 0-255 space the model was
    trained in. The model export and its rounding check are :func:`export_magenta_js`'s.
    """
    if isinstance(temperature, bool) or not math.isfinite(temperature) or not temperature > 0:
        raise ConfigError(f"temperature {temperature!r}: use a value > 0 (e.g. 0.5)")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is a file; give a folder for the page")
    if js is not None and not Path(js).is_file():
        raise DataError(f"{js} does not exist; give @magenta/sketch's dist/magentasketch.js")
    report = export_magenta_js(model, out_dir / MODEL_FILE, base=base, base_name=base_name,
                               warn=warn)
    library = library_url
    if js is not None:
        shutil.copyfile(js, out_dir / LOCAL_LIBRARY)
        library = LOCAL_LIBRARY
    config = {"model": MODEL_FILE, "library": library, "pixelFactor": pixel_factor,
              "maxRows": model.config.max_seq_len, "temperature": temperature}
    title = f"{model.config.name}: draw with SketchRNN"
    page = INDEX_HTML.substitute(
        title=html.escape(title), name=html.escape(model.config.name),
        temperature=f"{temperature:g}", size=int(canvas_size),
        config=json.dumps(config).replace("</", "<\\/"), library=html.escape(library),
    )
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    (out_dir / SCRIPT_FILE).write_text(SKETCH_JS, encoding="utf-8")
    logger.info("wrote the live page %s", index)
    return LivePage(directory=out_dir, index=index, library=library, export=report)
