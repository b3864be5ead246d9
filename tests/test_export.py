"""`sketchrl export` and the library's export_magenta_js: what is written, what is refused, and
the 16-bit rounding check against the starting model."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from sketchrl.cli.main import main
from sketchrl.errors import ConfigError
from sketchrl.models import SketchRNN, SketchRNNConfig, load_model, save_model
from sketchrl.models.sketch_rnn_js import (
    LOST_FRACTION,
    ROUNDING_STEP,
    RoundingReport,
    compare_rounding,
    export_magenta_js,
    export_sketch_rnn_js,
    quantize,
)
from sketchrl.web import MAGENTA_SKETCH_CDN


def small_decoder(seed: int = 0, **changes) -> SketchRNN:
    torch.manual_seed(seed)
    values = {"name": "tiny", "conditional": False, "dec_rnn_size": 16, "num_mixture": 20,
              "max_seq_len": 40, "scale_factor": 20.0, "use_recurrent_dropout": False, **changes}
    return SketchRNN(SketchRNNConfig(**values)).eval()


def moved(model: SketchRNN, amount: float, seed: int = 1, fraction: float = 1.0) -> SketchRNN:
    """A copy of ``model`` whose decoder weights moved by +-amount (a fraction of them)."""
    copy = SketchRNN(model.config).eval()
    copy.load_state_dict(model.state_dict())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in copy.decoder_parameters():
            sign = torch.randint(0, 2, parameter.shape, generator=generator) * 2.0 - 1.0
            chosen = torch.rand(parameter.shape, generator=generator) < fraction
            parameter.add_(amount * sign * chosen)
    return copy


@pytest.fixture
def base_file(tmp_path):
    """A small decoder-only starting model stored in the format (its values on the grid)."""
    return export_sketch_rnn_js(small_decoder(), tmp_path / "base.gen.json")


def training_run(directory, model: SketchRNN, base_spec: str):
    """A directory like `sketchrl train` writes: the policy and rl_config.json naming the base."""
    from sketchrl.rl import RLConfig

    save_model(model, directory)
    RLConfig(model=base_spec).save_json(directory / "rl_config.json")
    return directory


def test_export_of_a_training_run_reports_the_changed_values(tmp_path, base_file, capsys):
    base = load_model(base_file)
    tuned = moved(base, 2 * ROUNDING_STEP)
    run = training_run(tmp_path / "run", tuned, str(base_file))
    out = tmp_path / "out" / "tuned.json"
    assert main(["export", str(run), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    line = captured.out.strip()
    assert "\n" not in line and line.startswith(str(out))
    values = sum(p.numel() for p in base.decoder_parameters())
    assert f"{values:,} of {values:,} stored values (100.00%) differ from {base_file}" in line
    info, shapes, _ = json.loads(out.read_text())
    assert info["mode"] == 2 and info["name"] == "tiny" and len(shapes) == 5
    exported = load_model(out)
    for name, value in tuned.state_dict().items():
        assert (exported.state_dict()[name] - value).abs().max() <= ROUNDING_STEP / 2 + 1e-7


def test_a_fine_tune_lost_in_rounding_is_a_warning(tmp_path, base_file, capsys):
    base = load_model(base_file)
    run = training_run(tmp_path / "run", moved(base, 0.4 * ROUNDING_STEP), str(base_file))
    assert main(["export", str(run), "--out", str(tmp_path / "x.json")]) == 0
    captured = capsys.readouterr()
    assert "0 of" in captured.out
    warning = captured.err.strip()
    assert "\n" not in warning
    assert warning.startswith("sketchrl export: warning: the fine-tune is lost in the export")
    assert "draws exactly like" in warning
    # The file is the starting model's, value for value.
    assert json.loads((tmp_path / "x.json").read_text())[2] == json.loads(base_file.read_text())[2]


def test_nearly_lost_threshold_and_library_logging(tmp_path, base_file, caplog):
    base = load_model(base_file)
    nearly = moved(base, 2 * ROUNDING_STEP, fraction=LOST_FRACTION / 3)
    with caplog.at_level(logging.WARNING):
        report = export_magenta_js(nearly, tmp_path / "n.json", base=base, base_name="start")
    assert report.rounding is not None and report.rounding.lost
    assert 0 < report.rounding.changed < LOST_FRACTION * report.rounding.values
    assert "nearly lost" in caplog.text
    kept = moved(base, 2 * ROUNDING_STEP, fraction=3 * LOST_FRACTION)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        report = export_magenta_js(kept, tmp_path / "k.json", base=base, base_name="start")
    assert not report.rounding.lost and report.rounding.warning() is None
    assert "lost" not in caplog.text


def test_rounding_counts_codes_not_float_differences():
    base = small_decoder()
    # Off-grid starting values: a change counts only when it crosses a rounding boundary.
    # A shift d crosses one with probability d / step: here about 0.3% of the values.
    report = compare_rounding(moved(base, 1e-6), base)
    codes = [quantize(p.detach().numpy()) for p in base.decoder_parameters()]
    assert 0 < report.changed < sum(c.size for c in codes) // 100
    assert report.largest_update == pytest.approx(1e-6, rel=0.2)
    assert RoundingReport("b", 10, 0, 0.0).lost and not RoundingReport("b", 10, 1, 0.0).lost


def test_base_option_and_a_mismatched_base(tmp_path, base_file, capsys):
    tuned = moved(load_model(base_file), 2 * ROUNDING_STEP)
    tuned_file = export_sketch_rnn_js(tuned, tmp_path / "tuned.json")
    assert main(["export", str(tuned_file), "--base", str(base_file),
                 "--out", str(tmp_path / "again.json")]) == 0
    assert f"differ from {base_file}" in capsys.readouterr().out
    other = export_sketch_rnn_js(small_decoder(dec_rnn_size=8), tmp_path / "other.json")
    assert main(["export", str(tuned_file), "--base", str(other),
                 "--out", str(tmp_path / "x.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "another architecture" in error and "--base" in error
    assert not (tmp_path / "x.json").exists()


def test_unloadable_base_in_rl_config_still_exports(tmp_path, capsys):
    run = training_run(tmp_path / "run", small_decoder(), str(tmp_path / "gone.json"))
    assert main(["export", str(run), "--out", str(tmp_path / "x.json")]) == 0
    captured = capsys.readouterr()
    assert "no starting model to compare with" in captured.out
    assert "cannot load the starting model" in captured.err and "--base" in captured.err


def test_pretrained_asset_exports_unchanged(tmp_path, shared_assets, capsys):
    assert main(["export", "sketchrnn:bird", "--base", "sketchrnn:bird",
                 "--out", str(tmp_path / "bird.json")]) == 0
    assert "0 of 1,123,963 stored values" in capsys.readouterr().out
    original = shared_assets / "quickdraw-models/sketchRNN/large_models/bird.gen.json"
    assert json.loads((tmp_path / "bird.json").read_text())[2] == json.loads(
        original.read_text())[2]


@pytest.mark.parametrize(("changes", "message"), [
    ({"conditional": True, "enc_rnn_size": 8, "z_size": 4}, "is a VAE: @magenta/sketch 0.2.0"),
    ({"num_mixture": 5}, "hard-codes 20"),
    ({"dec_model": "layer_norm"}, "plain LSTM"),
])
def test_models_magenta_js_cannot_run_are_refused(tmp_path, changes, message, capsys):
    save_model(small_decoder(**changes), tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), "--out", str(tmp_path / "x.json"),
                 "--html", str(tmp_path / "page")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and message in error
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "page").exists()
    with pytest.raises(ConfigError, match=message.split(":")[0]):
        export_magenta_js(small_decoder(**changes), tmp_path / "y.json")


def test_usage_errors_are_one_line(tmp_path, base_file, capsys):
    (tmp_path / "file").write_text("x")
    cases = [
        ([str(base_file)], "nothing to write"),
        ([str(base_file), "--out", str(tmp_path)], "is a folder"),
        ([str(base_file), "--html", str(tmp_path / "file")], "--html"),
        ([str(base_file), "--out", str(tmp_path / "file" / "x.json")], "--out"),
        ([str(base_file), "--html", str(tmp_path / "p"), "--js", str(tmp_path / "no.js")],
         "does not exist"),
        ([str(base_file), "--out", str(tmp_path / "o.json"), "--js", str(tmp_path / "file")],
         "--js only applies"),
        ([str(tmp_path / "missing")], "nothing to write"),
        ([str(tmp_path / "missing"), "--out", str(tmp_path / "o.json")], "unknown model"),
    ]
    for arguments, message in cases:
        assert main(["export", *arguments]) == 2, arguments
        error = capsys.readouterr().err.strip()
        assert "\n" not in error and message in error, (arguments, error)


def test_html_page_files(tmp_path, base_file, capsys):
    assert main(["export", str(base_file), "--html", str(tmp_path / "page"),
                 "--temperature", "0.3"]) == 0
    assert "python -m http.server -d" in capsys.readouterr().out
    page = tmp_path / "page"
    assert sorted(p.name for p in page.iterdir()) == ["index.html", "model.json", "sketch.js"]
    index = (page / "index.html").read_text()
    assert f'<script src="{MAGENTA_SKETCH_CDN}"></script>' in index
    config = json.loads(index.split('type="application/json">')[1].split("</script>")[0])
    assert config == {"model": "model.json", "library": MAGENTA_SKETCH_CDN, "pixelFactor": 1.0,
                      "maxRows": 40, "temperature": 0.3}
    assert json.loads((page / "model.json").read_text())[2] == json.loads(base_file.read_text())[2]
    local = tmp_path / "magentasketch.js"
    local.write_text("window.ms = {};")
    assert main(["export", str(base_file), "--html", str(page), "--js", str(local)]) == 0
    assert '<script src="magentasketch.js"></script>' in (page / "index.html").read_text()
    assert (page / "magentasketch.js").read_text() == local.read_text()


def test_export_refuses_a_bad_page_temperature(tmp_path, base_file, capsys):
    assert main(["export", str(base_file), "--html", str(tmp_path / "p"),
                 "--temperature", "0"]) == 2
    assert "temperature" in capsys.readouterr().err


def test_cli_module_imports_no_heavy_modules():
    import subprocess
    import sys

    code = ("import sys, sketchrl.cli.export, sketchrl.cli.complete; "
            "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_decoded_weights_equal_the_quantised_values(base_file):
    values = np.array([-20.0, -10.0, -ROUNDING_STEP / 2 + 1e-9, 0.0, 1e-4, 9.99999, 10.0, 11.0])
    codes = quantize(values)
    assert codes.tolist() == [-32767, -32767, 0, 0, 0, 32767, 32767, 32767]
