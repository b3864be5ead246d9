"""`sketchrl train` on bad input and after faults: one line, no lost work, honest summaries."""

from __future__ import annotations

import pytest

from sketchrl.cli.main import main
from sketchrl.models import save_model
from sketchrl.rl import read_metrics
from sketchrl.rl.run_files import MetricsLog
from tests.test_rl_trainer import tiny_vae


@pytest.fixture
def config_file(tmp_path, shared_assets):
    model_dir = tmp_path / "model"
    save_model(tiny_vae(), model_dir)
    path = tmp_path / "run.toml"
    path.write_text(
        f'model = "{model_dir}"\nreward = "ssim"\nepisodes = 32\nbatch_size = 8\n'
        'max_len = 20\nwarmup_batches = 1\ncheckpoint_every = 2\ndevice = "cpu"\n'
        'algorithm = "grpo"\ngroup_size = 4\nepochs = 2\n'
        '[reward_options]\ntarget = "quickdraw:bird/simplified"\n'
    )
    return path


def test_resume_of_a_folder_without_a_run_says_so(tmp_path, capsys):
    assert main(["train", "--resume", "--out", str(tmp_path / "nothing"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "holds no run to resume" in error and "classifier" not in error
    assert not (tmp_path / "nothing").exists()


def test_threads_are_checked_before_anything_is_written_and_then_used(tmp_path, config_file,
                                                                     capsys):
    import torch

    out = tmp_path / "run"
    assert main(["train", "--config", str(config_file), "--threads", "0", "--out", str(out),
                 "--quiet"]) == 2
    assert "--threads 0: use a positive count" in capsys.readouterr().err
    assert not out.exists()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main(["train", "--config", str(config_file), "--set", "episodes=16", "--threads",
                     "1", "--out", str(out), "--quiet"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert len(read_metrics(out / "metrics.csv")) == 2


def test_a_run_killed_before_its_first_checkpoint_points_to_resume(tmp_path, config_file,
                                                                  capsys):
    out = tmp_path / "run"
    out.mkdir()
    from sketchrl.rl import load_rl_config

    load_rl_config(config_file).save_json(out / "rl_config.json")
    (out / "metrics.csv").write_text("batch,episodes\n1,8\n")
    assert main(["train", "--config", str(config_file), "--out", str(out), "--quiet"]) == 2
    assert "pass --resume to start it again" in capsys.readouterr().err
    assert main(["train", "--config", str(config_file), "--out", str(out), "--resume",
                 "--quiet"]) == 0
    assert len(read_metrics(out / "metrics.csv")) == 4


def test_resumed_run_sums_every_attempt_and_keeps_every_tensorboard_event(tmp_path,
                                                                         config_file, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(["train", "--config", str(config_file), "--set", "episodes=16", "--out",
                 str(out), "--quiet"]) == 0
    first = capsys.readouterr().out
    assert "2 batches" in first and "attempts" not in first
    assert main(["train", "--config", str(config_file), "--out", str(out), "--resume",
                 "--quiet"]) == 0
    summary = capsys.readouterr().out
    assert "4 batches (32 episodes, grpo)" in summary and "over 2 attempts" in summary
    events = EventAccumulator(str(out / "tb")).Reload()
    assert [e.step for e in events.Scalars("rl/reward_mean")] == [1, 2, 3, 4]


def test_metrics_log_rewrites_tensorboard_from_the_kept_rows(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = MetricsLog(tmp_path)
    for batch in (1, 2, 3):
        log.write({"batch": batch, "episodes": 8 * batch, "reward_mean": 0.1 * batch,
                   "kl_to_start": float("nan")})
    log.close()
    # an attempt killed after batch 3 resumed from the checkpoint of batch 2
    log = MetricsLog(tmp_path, start_batch=2)
    log.write({"batch": 3, "episodes": 24, "reward_mean": 0.5, "kl_to_start": 0.2})
    log.close()
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    rewards = [(e.step, round(e.value, 3)) for e in events.Scalars("rl/reward_mean")]
    assert rewards == [(1, 0.1), (2, 0.2), (3, 0.5)]
    assert [e.step for e in events.Scalars("rl/kl_to_start")] == [3]  # nan is not logged


@pytest.mark.slow
def test_steer_best_runs_as_written_and_resumes_exactly_after_a_kill(tmp_path,
                                                                     untrained_classifier_dir):
    """experiments/offline/steer_best.toml from a folder with its reward classifiers (shortened
    episodes); `kill -9` after the second checkpoint, then --resume: the same policy, bit for bit,
    as the run that was never interrupted."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    best = Path(__file__).resolve().parents[1] / "experiments" / "offline" / "steer_best.toml"
    for name in ("classifier-reward", "classifier-reward-s1", "classifier-reward-s2"):
        shutil.copytree(untrained_classifier_dir, tmp_path / "runs" / name)
    short = ["--set", "episodes=384", "--set", "max_len=40", "--set", "checkpoint_every=1",
             "--set", "warmup_batches=1", "--set", "device=cpu"]

    def command(out: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "sketchrl.cli.main", "train", "--config", str(best),
                *short, "--out", out, "--quiet", *extra]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(command("whole"), cwd=tmp_path, env=env, check=True, capture_output=True)
    killed = subprocess.Popen(command("killed"), cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "killed" / "metrics.csv"
    deadline = time.monotonic() + 300
    while (not metrics.exists() or len(metrics.read_text().splitlines()) < 4) \
            and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert killed.poll() is None, "the run ended before it could be killed"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed" / "DONE").exists()
    subprocess.run(command("killed", "--resume"), cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    whole, resumed = tmp_path / "whole", tmp_path / "killed"
    assert (resumed / "model.safetensors").read_bytes() == \
        (whole / "model.safetensors").read_bytes()
    rows = [[{k: v for k, v in row.items() if "second" not in k and "time" not in k}
             for row in read_metrics(run / "metrics.csv")] for run in (whole, resumed)]
    assert len(rows[0]) == 6 and str(rows[0]) == str(rows[1])  # str: NaN == NaN


def test_tensorboard_logs_without_importing_tensorflow(tmp_path):
    """TensorFlow (the tf extra) costs every training process seconds and memory for nothing."""
    import subprocess
    import sys

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code = ("import sys; from sketchrl.tensorboard import summary_writer; "
            f"w = summary_writer({str(tmp_path)!r}); w.add_scalar('rl/x', 1.5, 1); w.close(); "
            "print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
    assert EventAccumulator(str(tmp_path)).Reload().Scalars("rl/x")[0].value == 1.5
