// Load a sketch-rnn-js JSON file with @magenta/sketch exactly as the library does
// (SketchRNN.initialize: fetch(url).then(r => r.json()), then its own parsing), fetch being
// served from the local file system.
'use strict';
const fs = require('fs');
const ms = require('@magenta/sketch');

async function loadModel(path) {
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url) => ({ json: async () => JSON.parse(fs.readFileSync(url, 'utf8')) });
  try {
    const model = new ms.SketchRNN(path);
    await model.initialize();
    return model;
  } finally {
    globalThis.fetch = realFetch;
  }
}

module.exports = { loadModel, ms };
