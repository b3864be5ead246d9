// Sample sketches with @magenta/sketch's default sampling loop and write their lengths.
//   node magenta_sample.js INPUT.json OUTPUT.json
// INPUT: {"model": PATH, "n": N, "temperature": T, "max_len": L, "seed": S}
// Per sketch: state = update(zeroInput(), zeroState()); then getPDF(state, T), sample, stop at
// the end row or after L rows, update. Math.random (what the library samples with) is seeded
// with seedrandom(S) so that a run can be repeated.
// OUTPUT: {"lengths": [rows per sketch], "strokes": [pen-up rows per sketch]}
'use strict';
const fs = require('fs');
const seedrandom = require('seedrandom');
const { loadModel } = require('./load_model');

async function main() {
  const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  seedrandom(String(input.seed), { global: true });
  const model = await loadModel(input.model);
  const lengths = [];
  const strokes = [];
  const started = Date.now();
  for (let i = 0; i < input.n; i++) {
    let state = model.update(model.zeroInput(), model.zeroState());
    let rows = 0;
    let lifts = 0;
    while (rows < input.max_len) {
      const row = model.sample(model.getPDF(state, input.temperature));
      if (row[4] === 1) break;
      rows += 1;
      lifts += row[3];
      state = model.update(row, state);
    }
    lengths.push(rows);
    strokes.push(lifts);
    if ((i + 1) % 100 === 0) {
      const seconds = (Date.now() - started) / 1000;
      process.stderr.write(`magenta-js: ${i + 1}/${input.n} sketches, ${seconds.toFixed(0)} s\n`);
    }
  }
  fs.writeFileSync(process.argv[3], JSON.stringify({ lengths, strokes }));
}

main().catch((error) => { console.error(error); process.exit(1); });
