"""The live page's files: ``index.html`` (a :class:`string.Template`) and ``sketch.js``.

Kept as Python strings so that they ship inside the package. ``sketch.js`` uses only the public
API of ``@magenta/sketch`` 0.2.0 (``SketchRNN``: ``initialize``, ``setPixelFactor``,
``zeroState``, ``zeroInput``, ``update``, ``getPDF``, ``sample``, ``simplifyLine``,
``linesToStroke``) and exposes ``window.sketchPage`` (``draw()``, ``finish(lines)``, ``clear()``
and counters) for scripts and tests; ``document.body.dataset.state`` is ``loading``, ``ready``,
``busy`` or ``error``.
"""

from __future__ import annotations

from string import Template

INDEX_HTML = Template("""\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<link rel="icon" href="data:,">
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5em; max-width: 44em; }
  canvas { border: 1px solid #bbb; touch-action: none; cursor: crosshair; display: block; }
  .controls { margin: 0.8em 0; display: flex; gap: 0.6em; align-items: center; }
  #status { color: #555; min-height: 1.2em; }
  .person { color: #000; } .model { color: #d62728; }
</style>
</head>
<body data-state="loading">
<h1>$title</h1>
<p>Press <b>draw</b> for a sketch from scratch, or start a drawing on the canvas with the mouse
and press <b>finish</b>: the model completes it (<span class="person">your strokes</span>,
<span class="model">the model's strokes</span>). Model <code>$name</code>, run in the browser by
<a href="https://github.com/magenta/magenta-js/tree/master/sketch">@magenta/sketch</a>.</p>
<div class="controls">
  <button id="draw" disabled>draw</button>
  <button id="finish" disabled>finish</button>
  <button id="clear" disabled>clear</button>
  <label>temperature
    <input id="temperature" type="range" min="0.05" max="1" step="0.05" value="$temperature">
    <span id="temperature-value">$temperature</span></label>
</div>
<canvas id="canvas" width="$size" height="$size"></canvas>
<p id="status" role="status">loading the model...</p>
<script id="sketchrl-config" type="application/json">$config</script>
<script src="$library"></script>
<script src="sketch.js"></script>
</body>
</html>
""")

SKETCH_JS = r"""// sketchrl live page: draw with a SketchRNN through @magenta/sketch's sample loop.
(function () {
  'use strict';
  const config = JSON.parse(document.getElementById('sketchrl-config').textContent);
  const canvas = document.getElementById('canvas');
  const ctx = canvas.getContext('2d');
  const statusLine = document.getElementById('status');
  const buttons = ['draw', 'finish', 'clear'].map((id) => document.getElementById(id));
  const slider = document.getElementById('temperature');
  const COLOURS = { person: '#000000', model: '#d62728' };
  const page = { ready: false, modelSegments: 0, personSegments: 0, lines: [], rows: [] };
  window.sketchPage = page;
  let model = null;
  let line = null;

  function setState(state, text) {
    document.body.dataset.state = state;
    statusLine.textContent = text;
    buttons.forEach((button) => { button.disabled = state !== 'ready'; });
  }

  // ?seed=N makes Math.random (which @magenta/sketch samples with) reproducible.
  const seed = new URLSearchParams(window.location.search).get('seed');
  if (seed !== null) {
    let a = Number(seed) >>> 0;
    Math.random = function () {  // mulberry32
      a = (a + 0x6D2B79F5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function nextFrame() { return new Promise((resolve) => requestAnimationFrame(resolve)); }

  // Magenta's sample loop from `state`: getPDF(temperature), sample, update; stops at the end
  // row or after maxRows rows. Rows are [dx, dy, p1, p2, p3] in canvas pixels.
  async function sampleRows(state, maxRows) {
    const temperature = Number(slider.value);
    const rows = [];
    for (let i = 0; i < maxRows; i++) {
      const row = model.sample(model.getPDF(state, temperature));
      if (row[4] === 1) break;
      rows.push(row);
      state = model.update(row, state);
      if (i % 16 === 15) await nextFrame();
    }
    return rows;
  }

  // Draw stroke-5 rows starting at (x, y); returns the pen-down segments drawn.
  function drawRows(rows, x, y, scale, colour, penDown) {
    let segments = 0;
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    for (const row of rows) {
      const nx = x + row[0] * scale;
      const ny = y + row[1] * scale;
      if (penDown) {
        ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(nx, ny); ctx.stroke();
        segments += 1;
      }
      x = nx; y = ny;
      penDown = row[2] === 1;
    }
    return segments;
  }

  function clearCanvas() {
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }

  // Scale and origin that centre the rows' points (the origin is not a point) on the canvas.
  function fit(rows) {
    let x = 0, y = 0, minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (const row of rows) {
      x += row[0]; y += row[1];
      minX = Math.min(minX, x); maxX = Math.max(maxX, x);
      minY = Math.min(minY, y); maxY = Math.max(maxY, y);
    }
    if (rows.length === 0) return { scale: 1, x: canvas.width / 2, y: canvas.height / 2 };
    const extent = Math.max(maxX - minX, maxY - minY, 1e-6);
    const scale = canvas.width * 0.8 / extent;
    return { scale, x: canvas.width / 2 - scale * (minX + maxX) / 2,
             y: canvas.height / 2 - scale * (minY + maxY) / 2 };
  }

  // A mistake of the person (nothing drawn yet): said in the status line, nothing breaks.
  class UserMistake extends Error {}

  async function run(task) {
    setState('busy', 'drawing...');
    try {
      const result = await task();
      setState('ready', `done: ${page.personSegments} segments yours, ` +
               `${page.modelSegments} the model's`);
      return result;
    } catch (error) {
      if (error instanceof UserMistake) {
        setState('ready', error.message);
        return { error: error.message };
      }
      setState('error', `error: ${error.message || error}`);
      console.error(error);
      return { error: String(error) };
    }
  }

  // A sketch from scratch, scaled to fit the canvas.
  page.draw = () => run(async () => {
    page.lines = [];
    const start = model.update(model.zeroInput(), model.zeroState());
    const rows = await sampleRows(start, config.maxRows);
    const frame = fit(rows);
    clearCanvas();
    page.personSegments = 0;
    page.modelSegments = drawRows(rows, frame.x, frame.y, frame.scale, COLOURS.model, false);
    page.rows = rows;
    return { rows: rows.length, segments: page.modelSegments };
  });

  // Finish the person's lines (lists of [x, y] canvas points; default: the mouse strokes).
  page.finish = (lines) => run(async () => {
    if (lines !== undefined) page.lines = lines.map((l) => l.map((p) => [p[0], p[1]]));
    const simplified = page.lines.map((l) => model.simplifyLine(l)).filter((l) => l.length > 1);
    if (simplified.length === 0) throw new UserMistake('draw on the canvas first, then finish');
    const prefix = model.linesToStroke(simplified).slice(0, -1);  // without its end row
    let state = model.update(model.zeroInput(), model.zeroState());
    for (const row of prefix) state = model.update(row, state);
    const rows = await sampleRows(state, Math.max(1, config.maxRows - prefix.length));
    const origin = simplified[0][0];
    clearCanvas();
    page.personSegments = drawRows(prefix, origin[0], origin[1], 1, COLOURS.person, true);
    let x = origin[0], y = origin[1];
    for (const row of prefix) { x += row[0]; y += row[1]; }
    const penDown = prefix.length > 0 && prefix[prefix.length - 1][2] === 1;
    page.modelSegments = drawRows(rows, x, y, 1, COLOURS.model, penDown);
    page.rows = prefix.concat(rows);
    return { prefixRows: prefix.length, rows: rows.length, segments: page.modelSegments };
  });

  page.clear = () => {
    page.lines = []; page.rows = []; page.modelSegments = 0; page.personSegments = 0;
    clearCanvas();
  };

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width,
            (event.clientY - box.top) * canvas.height / box.height];
  }
  canvas.addEventListener('pointerdown', (event) => {
    if (!page.ready || document.body.dataset.state !== 'ready') return;
    if (page.lines.length === 0) clearCanvas();
    line = [point(event)];
    try { canvas.setPointerCapture(event.pointerId); } catch (error) { /* not essential */ }
  });
  canvas.addEventListener('pointermove', (event) => {
    if (line === null) return;
    const p = point(event);
    const q = line[line.length - 1];
    ctx.strokeStyle = COLOURS.person; ctx.lineWidth = 2; ctx.lineCap = 'round';
    ctx.beginPath(); ctx.moveTo(q[0], q[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
    line.push(p);
  });
  function endLine() {
    if (line !== null && line.length > 1) page.lines.push(line);
    line = null;
  }
  canvas.addEventListener('pointerup', endLine);
  canvas.addEventListener('pointercancel', endLine);

  buttons[0].addEventListener('click', () => page.draw());
  buttons[1].addEventListener('click', () => page.finish());
  buttons[2].addEventListener('click', () => page.clear());
  slider.addEventListener('input', () => {
    document.getElementById('temperature-value').textContent = slider.value;
  });

  async function init() {
    if (typeof ms === 'undefined') {
      throw new Error(`@magenta/sketch did not load from ${config.library}`);
    }
    // The sampler reads every step back; the CPU backend avoids WebGL (absent when headless).
    await ms.tf.setBackend('cpu');
    model = new ms.SketchRNN(config.model);
    await model.initialize();
    model.setPixelFactor(config.pixelFactor);
    clearCanvas();
    page.ready = true;
    setState('ready', 'ready: press draw, or start a drawing and press finish');
  }
  init().catch((error) => {
    setState('error', `error: ${error.message || error}`);
    console.error(error);
  });
})();
"""
