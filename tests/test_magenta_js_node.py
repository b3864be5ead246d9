"""An exported fine-tune, run by the real ``@magenta/sketch`` 0.2.0 under Node, step by step.

Needs Node.js and ``npm ci`` in tests/js (skipped locally without them, failing in CI). The Node
side is tests/js/magenta_pdf.js: it loads the file through ``SketchRNN.initialize`` and feeds
stroke-5 rows through ``update`` / ``getPDF``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import skip_or_fail

from sketchrl.cli.main import main
from sketchrl.data import load_ndjson_stroke3
from sketchrl.models import load_model, save_model
from sketchrl.models.mixture import Temperature, apply_temperature
from sketchrl.models.sketch_rnn_js import export_sketch_rnn_js
from sketchrl.strokes import stroke3_to_stroke5

pytestmark = pytest.mark.node

JS_DIR = Path(__file__).resolve().parent / "js"
BIRDS = "quickdraw_dataset/full/simplified/bird.ndjson"
#: (temperature, softmaxTemperature) given to getPDF, and sketchrl's equivalent.
TEMPERATURES = [
    ((1.0, None), Temperature(1.0, semantics="magenta-js")),
    ((0.65, None), Temperature(0.65, semantics="magenta-js")),
    ((0.25, None), Temperature(0.25, semantics="magenta-js")),
    ((0.5, 0.3), Temperature(0.5, pen=0.3, semantics="magenta-js")),
]
TOLERANCE = 1e-5


def node_with_magenta() -> str:
    """The node executable, once tests/js has @magenta/sketch installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        skip_or_fail("Node.js and npm are not installed")
    if not (JS_DIR / "node_modules" / "@magenta" / "sketch" / "package.json").is_file():
        skip_or_fail("tests/js/node_modules is missing: run `npm ci` in tests/js")
    return node


def run_node(node: str, script: str, payload: dict, tmp_path: Path) -> dict:
    request, answer = tmp_path / f"{script}.in.json", tmp_path / f"{script}.out.json"
    request.write_text(json.dumps(payload))
    done = subprocess.run([node, str(JS_DIR / script), str(request), str(answer)],
                          capture_output=True, text=True, timeout=300, cwd=JS_DIR)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(answer.read_text())


def fine_tuned_bird(directory: Path, scale: float = 3e-4, seed: int = 0) -> Path:
    """The real bird decoder moved like a short fine-tune (about ten Adam steps of lr 3e-5:
    every weight by up to one rounding step), saved as a training run directory."""
    from sketchrl.rl import RLConfig

    model = load_model("sketchrnn:bird")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.decoder_parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    save_model(model, directory)
    RLConfig(model="sketchrnn:bird").save_json(directory / "rl_config.json")
    return directory


def given_sequences(shared_assets: Path, scale_factor: float) -> list[np.ndarray]:
    """Stroke-5 rows in model units: two real birds (first 30 rows) and a made-up scribble."""
    birds = load_ndjson_stroke3(shared_assets / BIRDS, limit=2)
    sequences = []
    for bird in birds:
        bird = bird[:30].copy()
        bird[:, :2] /= scale_factor
        sequences.append(stroke3_to_stroke5(bird)[: len(bird)])
    rng = np.random.default_rng(0)
    scribble = np.zeros((12, 3), dtype=np.float32)
    scribble[:, :2] = rng.normal(size=(12, 2))
    scribble[[3, 7, 11], 2] = 1.0
    sequences.append(stroke3_to_stroke5(scribble)[:12])
    return sequences


def sketchrl_pdfs(model, rows: np.ndarray, temperature: Temperature) -> dict[str, np.ndarray]:
    strokes = torch.from_numpy(rows).unsqueeze(0)
    with torch.no_grad():
        params = apply_temperature(model.teacher_forcing(strokes, torch.tensor([len(rows)])),
                                   temperature)
    values = {"pi": params.log_pi.exp(), "muX": params.mu_x, "muY": params.mu_y,
              "sigmaX": params.log_sigma_x.exp(), "sigmaY": params.log_sigma_y.exp(),
              "corr": params.rho, "pen": params.pen_log_probs.exp()}
    return {name: value[0].double().numpy() for name, value in values.items()}


def largest_difference(js_steps: list, mine: list[dict[str, np.ndarray]]) -> float:
    """Largest |JS - sketchrl| / (1 + |sketchrl|) over steps, temperatures and parameters."""
    worst = 0.0
    for t, per_temperature in enumerate(js_steps):
        for k, js in enumerate(per_temperature):
            for name, values in js.items():
                expected = mine[k][name][t]
                error = np.abs(np.asarray(values) - expected) / (1.0 + np.abs(expected))
                worst = max(worst, float(error.max()))
    return worst


@pytest.mark.slow
def test_exported_fine_tune_matches_magenta_js_step_by_step(shared_assets, tmp_path, capsys):
    node = node_with_magenta()
    run = fine_tuned_bird(tmp_path / "run")
    exported = tmp_path / "bird_ft.gen.json"
    assert main(["export", str(run), "--out", str(exported)]) == 0
    summary = capsys.readouterr().out
    assert "differ from sketchrnn:bird after 16-bit rounding" in summary
    reimported, original = load_model(exported), load_model("sketchrnn:bird")
    sequences = given_sequences(shared_assets, reimported.config.scale_factor)
    result = run_node(node, "magenta_pdf.js", {
        "model": str(exported), "sequences": [rows.tolist() for rows in sequences],
        "temperatures": [list(js) for js, _ in TEMPERATURES]}, tmp_path)
    assert result["info"]["name"] == "bird" and result["info"]["mode"] == 2
    for rows, js_steps in zip(sequences, result["steps"], strict=True):
        assert len(js_steps) == len(rows)
        mine = [sketchrl_pdfs(reimported, rows, temperature) for _, temperature in TEMPERATURES]
        assert largest_difference(js_steps, mine) < TOLERANCE
        # Not vacuous: the fine-tune survived the export, and the paper's semantics differ.
        before = [sketchrl_pdfs(original, rows, temperature) for _, temperature in TEMPERATURES]
        assert largest_difference(js_steps, before) > 100 * TOLERANCE
        paper = [sketchrl_pdfs(reimported, rows, Temperature(t.value)) for _, t in TEMPERATURES]
        assert largest_difference(js_steps, paper) > 100 * TOLERANCE


def test_magenta_js_cannot_load_a_vae_file(tmp_path):
    """Why `sketchrl export` refuses VAEs: the library reads blob 2 as a 2-D W_xh."""
    from sketchrl.models import SketchRNN, SketchRNNConfig

    node = node_with_magenta()
    vae = SketchRNN(SketchRNNConfig(enc_rnn_size=8, dec_rnn_size=8, z_size=4, num_mixture=20))
    path = export_sketch_rnn_js(vae, tmp_path / "vae.json")
    request = tmp_path / "in.json"
    request.write_text(json.dumps({"model": str(path), "sequences": [], "temperatures": []}))
    done = subprocess.run([node, str(JS_DIR / "magenta_pdf.js"), str(request),
                           str(tmp_path / "out.json")], capture_output=True, text=True,
                          timeout=120, cwd=JS_DIR)
    assert done.returncode != 0
    assert "Tensor must have a shape comprised of positive integers" in done.stderr
