"""`sketchrl reproduce`: presets agree with the experiment files; --quick runs the whole study."""

from __future__ import annotations

import csv
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sketchrl.cli.main import main
from sketchrl.errors import ConfigError
from sketchrl.reproduce import Study, get_preset
from sketchrl.reproduce.presets import ABLATION_GAMMAS
from sketchrl.rl import load_rl_config

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
# Keys the offline preset may size differently from the experiment files (it must fit ~30 min).
SIZED_KEYS = ("episodes", "lr", "device")


@pytest.mark.parametrize(
    "preset_name, files",
    [
        ("offline", {"ssim_sparse": "ssim", "classifier_sparse": "classifier_sparse",
                     "classifier_dense": "classifier_dense"}),
        ("paper", {"clip_sparse": "clip_sparse", "ssim_sparse": "ssim_sparse",
                   "clip_dense": "clip_dense"}),
    ],
)
def test_presets_train_what_the_experiment_files_say(tmp_path, preset_name, files):
    study = Study(get_preset(preset_name), tmp_path)
    for method in study.preset.methods:
        from_preset = study.rl_config(method).to_dict()
        from_file = load_rl_config(EXPERIMENTS / preset_name / f"{files[method.name]}.toml")
        from_file = from_file.to_dict()
        options = from_preset.pop("reward_options"), from_file.pop("reward_options")
        if options[0].get("model") == str(study.paths.classifier("reward")):
            assert options[1]["model"] == "runs/classifier-reward"
            options[0]["model"] = options[1]["model"]
        assert options[0] == options[1], method.name
        for key in from_preset:
            if key not in SIZED_KEYS:
                assert from_preset[key] == from_file[key], (method.name, key)


def test_ablation_files_cover_the_papers_gammas():
    gammas = sorted(load_rl_config(p).gamma for p in EXPERIMENTS.glob("paper/clip_dense_gamma_*"))
    assert gammas == sorted(ABLATION_GAMMAS)
    ablation = get_preset("offline").ablation_methods()
    assert [m.gamma for m in ablation] == list(ABLATION_GAMMAS)
    # gamma = 1 is Table 1's dense run, not trained twice.
    assert ablation[0].name == "classifier_dense"


def test_unknown_preset_and_settings_are_config_errors():
    with pytest.raises(ConfigError, match="offline"):
        get_preset("owl")
    with pytest.raises(ConfigError, match="unknown preset setting"):
        get_preset("offline", episodez=3)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        self.tables += tag == "table"
        if tag == "img":
            self.images.append(dict(attrs)["src"])


@pytest.mark.slow
def test_quick_reproduce_writes_tables_figures_report_and_resumes(tmp_path, shared_assets,
                                                                  capsys):
    out = tmp_path / "study"
    assert main(["reproduce", "--preset", "offline", "--quick", "--out", str(out),
                 "--quiet", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "Table 1" in printed and "Table 2" in printed

    table1 = (out / "table1.md").read_text().splitlines()
    rows = [line for line in table1 if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| method | P(target) reward clf | SSIM to target | FID")
    labels = [row.split("|")[1].strip() for row in rows[1:]]
    assert labels == ["baseline (pretrained)", "SSIM (sparse)", "classifier (sparse)",
                      "classifier (dense)"]
    with open(out / "table2.csv") as handle:
        records = list(csv.DictReader(handle))
    assert [r["method"] for r in records] == [f"gamma = {g:g}" for g in ABLATION_GAMMAS]
    for record in records:
        assert float(record["fid"]) > 0
        assert 0 <= float(record["precision"]) <= 1 and 0 <= float(record["recall"]) <= 1
        assert 0 <= float(record["classifier_rate"]) <= 1
        assert record["fid_reliable"] == "False"  # 16 samples: flagged, not hidden

    parser = _Collector()
    parser.feed((out / "report.html").read_text())
    assert parser.tables >= 3
    for source in parser.images:
        assert (out / source).is_file(), source
    assert {"samples.png", "reward_curves.png"} <= set(parser.images)

    for method in ("ssim_sparse", "classifier_sparse", "classifier_dense",
                   "classifier_dense_gamma_0.5"):
        run = out / "runs" / method
        assert (run / "model.safetensors").is_file()
        metrics = json.loads((out / "eval_table2" / "classifier_dense" / "metrics.json")
                             .read_text())
        assert metrics["n"] == 16

    # Re-running skips every finished step: no run or evaluation is written again.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")
              if p.name in ("metrics.csv", "metrics.json")}
    assert main(["reproduce", "--preset", "offline", "--quick", "--out", str(out),
                 "--quiet", "--device", "cpu"]) == 0
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())

    # A different study into the same folder is refused in one line.
    assert main(["reproduce", "--preset", "offline", "--quick", "--episodes", "16",
                 "--out", str(out), "--quiet"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert os.path.isdir(out / "runs")
