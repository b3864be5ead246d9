// Drive the live page written by `sketchrl export --html` in headless Chromium (playwright-core
// with the system's Chromium; no browser is downloaded).
//   node live_page.js URL OUTPUT.json [SCREENSHOT.png]
// Presses "draw", "finish" with nothing drawn, draws two strokes with the mouse and presses
// "finish", then finishes a drawing given to the page's JS hook (window.sketchPage.finish);
// writes what the page reports, the ink on the canvas by colour, and every console error.
'use strict';
const fs = require('fs');
const { chromium } = require('playwright-core');

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Canvas pixels by colour: black (the person), red (the model), anything else not white.
function inkOnCanvas() {
  const canvas = document.getElementById('canvas');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const ink = { black: 0, red: 0, other: 0 };
  for (let i = 0; i < pixels.length; i += 4) {
    const [r, g, b] = [pixels[i], pixels[i + 1], pixels[i + 2]];
    if (r > 240 && g > 240 && b > 240) continue;
    if (r < 60 && g < 60 && b < 60) ink.black += 1;
    else if (r > 150 && g < 100 && b < 100) ink.red += 1;
    else ink.other += 1;
  }
  return ink;
}

async function settle(page) {
  await page.waitForFunction(() => document.body.dataset.state !== 'busy', null,
    { timeout: 120000 });
  return page.evaluate((inkSource) => {
    const ink = new Function(`return (${inkSource})();`)();
    const p = window.sketchPage;
    return { state: document.body.dataset.state,
      status: document.getElementById('status').textContent,
      modelSegments: p.modelSegments, personSegments: p.personSegments, rows: p.rows.length,
      ink };
  }, inkOnCanvas.toString());
}

async function mouseStrokes(page) {
  const box = await page.locator('#canvas').boundingBox();
  const at = (fx, fy) => [box.x + fx * box.width, box.y + fy * box.height];
  const strokes = [
    [[0.30, 0.50], [0.35, 0.40], [0.45, 0.35], [0.55, 0.37], [0.62, 0.45], [0.60, 0.55]],
    [[0.62, 0.45], [0.70, 0.42], [0.75, 0.45]],
  ];
  for (const stroke of strokes) {
    await page.mouse.move(...at(...stroke[0]));
    await page.mouse.down();
    for (const point of stroke.slice(1)) await page.mouse.move(...at(...point), { steps: 6 });
    await page.mouse.up();
  }
}

async function main() {
  const [url, output, screenshot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: FLAGS,
  });
  const errors = [];
  const result = { errors };
  try {
    const page = await browser.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.state !== 'loading', null,
      { timeout: 120000 });
    result.loaded = await page.evaluate(() => document.body.dataset.state);
    if (result.loaded !== 'ready') return;
    await page.click('#draw');
    result.draw = await settle(page);
    await page.click('#finish');  // nothing drawn yet: a message, not a broken page
    result.finishEmpty = await settle(page);
    await mouseStrokes(page);
    result.lines = await page.evaluate(() => window.sketchPage.lines.length);
    result.finish = [];
    for (let attempt = 0; attempt < 5; attempt++) {  // the model may end at once: try again
      await page.click('#finish');
      result.finish.push(await settle(page));
      if (result.finish[result.finish.length - 1].modelSegments > 0) break;
    }
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    const lines = [[[100, 300], [150, 250], [250, 240], [300, 280]], [[300, 280], [340, 260]]];
    result.hook = await page.evaluate((given) => window.sketchPage.finish(given), lines);
    result.afterHook = await settle(page);
  } finally {
    fs.writeFileSync(output, JSON.stringify(result, null, 1));
    await browser.close();
  }
}

main().catch((error) => { console.error(error); process.exit(1); });
