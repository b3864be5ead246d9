"""A static web page that draws with an exported model in the browser (``@magenta/sketch``).

:func:`write_live_page` writes ``index.html``, ``model.json`` (the model in the sketch-rnn-js
format, :func:`sketchrl.models.sketch_rnn_js.export_magenta_js`) and ``sketch.js``.
"""

from sketchrl.web.page import MAGENTA_SKETCH_CDN, MAGENTA_SKETCH_VERSION, LivePage, write_live_page

__all__ = ["MAGENTA_SKETCH_CDN", "MAGENTA_SKETCH_VERSION", "LivePage", "write_live_page"]
