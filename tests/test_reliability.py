"""What a user gets back from mistakes and faults: a fast start-up, one line on stderr and exit
code 2 for every mistake, checked before any slow work, and config values of the wrong type.

(Per-command cases live next to each command's tests: test_cli_sample, test_cli_render,
test_cli_evaluate, test_cli_classifier, test_cli_fetch, test_clip_reward.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchrl.cli.main import SUBCOMMAND_MODULES, main
from sketchrl.config import Config
from sketchrl.errors import ConfigError, DataError

#: Modules the command line must not import before a command runs (each costs 0.05 - 3 s).
HEAVY = ("torch", "torchvision", "numpy", "scipy", "matplotlib", "PIL", "open_clip",
         "safetensors", "tqdm", "pandas", "tensorboard")
NESTED_COMMANDS = {"classifier": [["classifier", "train"], ["classifier", "predict"]]}


def heavy_modules_after(code: str) -> list[str]:
    """The HEAVY modules loaded after running ``code`` in a fresh interpreter."""
    report = f"\nimport json, sys\nprint(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))"
    result = subprocess.run([sys.executable, "-c", code + report], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_cli_and_building_its_parser_stays_light():
    assert heavy_modules_after("import sketchrl.cli.main") == []
    loaded = heavy_modules_after("import sketchrl.cli.main as m\nm.build_parser()")
    assert loaded == [], f"sketchrl --help imports {loaded}: import them inside run()"


@pytest.mark.parametrize("name", SUBCOMMAND_MODULES)
def test_each_cli_module_imports_nothing_heavy(name):
    code = (f"import argparse\nimport sketchrl.cli.{name} as command\n"
            "command.register(argparse.ArgumentParser().add_subparsers())")
    loaded = heavy_modules_after(code)
    assert loaded == [], f"sketchrl/cli/{name}.py imports {loaded} at module level"


@pytest.mark.parametrize(
    "argv",
    [[name] for name in SUBCOMMAND_MODULES]
    + [argv for name in SUBCOMMAND_MODULES for argv in NESTED_COMMANDS.get(name, [])],
    ids=" ".join,
)
def test_subcommand_help_stays_light(argv):
    code = ("from sketchrl.cli.main import main\ntry:\n"
            f"    main({[*argv, '--help']!r})\nexcept SystemExit:\n    pass")
    assert heavy_modules_after(code) == []


def one_line_error(capsys, argv: list[str]) -> str:
    """Run the CLI; assert exit 2 and exactly one line on stderr; return that line."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--model", "m", "--out", "o", "-n", "many"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.strip().splitlines() == [
        "sketchrl sample: error: argument -n/--num: 'many' is not an integer "
        "(see sketchrl sample --help)"
    ]


# --- --device cuda without a GPU --------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "--model", "no_such_model", "--out", "{out}"],
        ["evaluate", "--model", "no_such_model", "--reference", "quickdraw:bird",
         "--out", "{out}"],
        ["classifier", "train", "--categories", "owl,unicorn", "--out", "{out}"],
        ["classifier", "predict", "--model", "{out}", "owl.ndjson"],
        ["pretrain", "--data", "missing.ndjson", "--out", "{out}"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_cuda_without_a_gpu_is_one_line_before_any_work(tmp_path, capsys, argv):
    out = tmp_path / "out"
    argv = [arg.replace("{out}", str(out)) for arg in argv] + ["--device", "cuda"]
    err = one_line_error(capsys, argv)
    assert "no CUDA device is available" in err and "--device cpu" in err
    assert not out.exists()


def test_cuda_index_beyond_the_devices_is_an_error(monkeypatch):
    from sketchrl.devices import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="only 1 CUDA device"):
        resolve_device("cuda:3")
    assert resolve_device("cuda:0") == torch.device("cuda:0")


# --- --out that cannot be written ---------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [  # each input is bad too: the --out error proves --out is checked first
        ["sample", "--model", "no_such_model", "--device", "cpu"],
        ["evaluate", "--model", "no_such_model", "--reference", "quickdraw:bird",
         "--device", "cpu"],
        ["render", "missing.ndjson"],
        ["classifier", "train", "--categories", "owl,unicorn", "--device", "cpu"],
        ["pretrain", "--data", "missing.ndjson"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_impossible_out_is_one_line_before_any_work(tmp_path, capsys, argv):
    blocker = tmp_path / "a-file.txt"
    blocker.write_text("not a folder")
    err = one_line_error(capsys, [*argv, "--out", str(blocker / "out")])
    assert "--out" in err and "a-file.txt is a file, not a folder" in err
    assert blocker.read_text() == "not a folder"


def test_writable_directory_checks(tmp_path, monkeypatch):
    from sketchrl.data import writable_directory

    assert writable_directory(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # nothing is created
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="exists and is not a folder"):
        writable_directory(tmp_path / "file")
    with pytest.raises(DataError, match="longer than 255 bytes"):
        writable_directory(tmp_path / ("x" * 300))
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root may write anywhere
    with pytest.raises(DataError, match=r"no permission to create folders in .*; choose another"):
        writable_directory(tmp_path / "new")
    with pytest.raises(DataError, match="no permission to write into"):
        writable_directory(tmp_path)


# --- config values of the wrong type --------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('episodes = "lots"', "episodes = 'lots' (a string): expected a whole number"),
        ("seed = true", "seed = True (a boolean): expected a whole number"),
        ("episodes = 5000.7", "episodes = 5000.7 (a number): expected a whole number"),
        ("lr = \"fast\"", "lr = 'fast' (a string): expected a number"),
        ("share_z = 1", "share_z = 1 (an integer): expected true or false"),
        ("model = 3", "model = 3 (an integer): expected a string"),
        ("reward_options = 5", "reward_options = 5 (an integer): expected a table"),
    ],
)
def test_toml_values_of_the_wrong_type_are_one_line_errors(tmp_path, line, expected):
    from sketchrl.rl import load_rl_config

    path = tmp_path / "run.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError) as error:
        load_rl_config(path)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_toml_numbers_are_converted_losslessly(tmp_path):
    from sketchrl.rl import load_rl_config

    path = tmp_path / "run.toml"
    path.write_text("lr = 1\nepisodes = 4000.0\n")
    config = load_rl_config(path)
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert config.episodes == 4000 and isinstance(config.episodes, int)
    with pytest.raises(ConfigError, match="episodes"):
        load_rl_config(path, ["episodes=5000.7"])


def config_classes() -> list[type[Config]]:
    """Every Config subclass of sketchrl (the modules that define them are imported)."""
    import sketchrl.classifiers.config  # noqa: F401
    import sketchrl.models.config  # noqa: F401
    import sketchrl.models.pretrain  # noqa: F401
    import sketchrl.render.options  # noqa: F401
    import sketchrl.rl.config  # noqa: F401

    found, todo = [], list(Config.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return sorted((c for c in found if c.__module__.startswith("sketchrl.")),
                  key=lambda c: c.__name__)


def wrong_value(hint: typing.Any) -> typing.Any:
    """A value no field of type ``hint`` accepts."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if typing.get_origin(hint) in (typing.Union, type(int | None)) else hint
    if base is str:
        return 5
    if base is bool:
        return 1
    return "not a number" if base in (int, float) else 3.5


@pytest.mark.parametrize("cls", config_classes(), ids=lambda cls: cls.__name__)
def test_every_config_checks_every_field_type(cls):
    assert cls.from_dict(cls().to_dict()) == cls()  # the JSON round trip still works
    for name, hint in cls.field_types().items():
        with pytest.raises(ConfigError) as error:
            cls.from_dict({name: wrong_value(hint)})
        assert f"{cls.__name__}.{name} = " in str(error.value)


def test_nested_config_and_json_files(tmp_path):
    from sketchrl.models.pretrain import PretrainConfig

    config = PretrainConfig.from_dict({"model": {"dec_rnn_size": 64}})
    assert config.model.dec_rnn_size == 64
    with pytest.raises(ConfigError, match=r"SketchRNNConfig.dec_rnn_size = '64'"):
        PretrainConfig.from_dict({"model": {"dec_rnn_size": "64"}})
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"num_steps": 10.5}))
    with pytest.raises(ConfigError, match="num_steps = 10.5"):
        PretrainConfig.load_json(path)


# --- a corrupt classifier -----------------------------------------------------------------


def test_corrupt_classifier_weights_are_one_line_naming_the_file(
    untrained_classifier_dir, tmp_path, capsys
):
    weights = Path(untrained_classifier_dir) / "classifier.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    drawings = tmp_path / "owl.npy"
    np.save(drawings, np.zeros((2, 784), dtype=np.uint8))
    err = one_line_error(capsys, ["classifier", "predict", "--model",
                                  str(untrained_classifier_dir), str(drawings)])
    assert str(weights) in err and "corrupt" in err
    weights.write_bytes(b"")
    assert str(weights) in one_line_error(capsys, ["classifier", "predict", "--model",
                                                   str(untrained_classifier_dir), str(drawings)])

