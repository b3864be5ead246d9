// Feed stroke-5 sequences (model units) through @magenta/sketch's update/getPDF and write the
// mixture and pen parameters of every step.
//   node magenta_pdf.js INPUT.json OUTPUT.json
// INPUT: {"model": PATH, "sequences": [[[dx, dy, p1, p2, p3], ...], ...],
//         "temperatures": [[temperature, softmaxTemperature or null], ...]}
// OUTPUT: {"info": ..., "steps": [sequence][step][temperature] = {pi, muX, muY, sigmaX, sigmaY,
//          corr, pen}}; step t is the distribution of row t given the rows before it.
'use strict';
const fs = require('fs');
const { loadModel } = require('./load_model');

function pdfToJSON(pdf, nmix) {
  // getPDF's sigmaY slice runs past the 20 components (slice(4N, 15N)): keep the first N.
  const take = (values) => Array.from(values.slice(0, nmix));
  return {
    pi: take(pdf.pi), muX: take(pdf.muX), muY: take(pdf.muY), sigmaX: take(pdf.sigmaX),
    sigmaY: take(pdf.sigmaY), corr: take(pdf.corr), pen: Array.from(pdf.pen),
  };
}

async function main() {
  const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const model = await loadModel(input.model);
  model.setPixelFactor(model.info.scale_factor);  // inputs divided by 1: model units
  const nmix = 20;
  const steps = input.sequences.map((rows) => {
    let state = model.update(model.zeroInput(), model.zeroState());
    const out = [];
    rows.forEach((row, t) => {
      out.push(input.temperatures.map(([temperature, softmax]) =>
        pdfToJSON(model.getPDF(state, temperature, softmax === null ? undefined : softmax), nmix)));
      if (t < rows.length - 1) state = model.update(row, state);
    });
    return out;
  });
  fs.writeFileSync(process.argv[3], JSON.stringify({ info: model.info, steps }));
}

main().catch((error) => { console.error(error); process.exit(1); });
