"""On a GPU (marked ``cuda``: skipped without one; ``benchmarks/gpu_check.sh`` runs them): the
sampler, the trainer and resume across devices compute what they compute on the CPU."""

from __future__ import annotations

import pytest
import torch

from sketchrl.models import load_model
from sketchrl.rl import RLConfig, Trainer, read_metrics, train
from tests.test_rl_trainer import InkReward, parameters, tiny_config, tiny_vae

pytestmark = pytest.mark.cuda


def test_sampling_on_the_gpu_scores_like_the_cpu(shared_assets):
    model = load_model("sketchrnn:bird", device="cuda").eval()
    generator = torch.Generator(device="cuda").manual_seed(0)
    rollout = model.sample(64, max_len=120, generator=generator, grad=True)
    assert rollout.strokes.device.type == "cuda"
    cpu = load_model("sketchrnn:bird").eval()
    teacher = cpu.log_prob(rollout.strokes.cpu(), rollout.lengths.cpu(), None, 0.5)
    torch.testing.assert_close(rollout.total_log_prob().detach().cpu(), teacher,
                               rtol=1e-4, atol=1e-2)
    rollout.total_log_prob().sum().backward()
    assert model.decoder.cell.W_hh.grad.abs().sum() > 0


def test_grpo_and_ppo_batches_run_on_the_gpu(shared_assets):
    for settings in ({"algorithm": "grpo", "group_size": 4, "epochs": 2, "minibatches": 2,
                      "kl_beta": 0.1, "kl_estimator": "k2", "forward_kl_beta": 0.1,
                      "forward_kl_episodes": 4, "lr_warmup": 3},
                     {"algorithm": "ppo", "epochs": 2}):
        trainer = Trainer(tiny_config(device="cuda", **settings), policy=tiny_vae(),
                          reward=InkReward())
        for _ in range(2):
            row = trainer.run_batch()
        assert row["updated"] and torch.isfinite(torch.tensor(row["loss"]))


def test_a_cuda_run_resumes_on_the_cpu(tmp_path):
    """Resume state is device-independent: a run checkpointed on the GPU continues on the CPU
    (each batch's random numbers derive from the seed and batch index)."""
    train(tiny_config(episodes=2 * 8, device="cuda"), tmp_path / "run", policy=tiny_vae(),
          reward=InkReward(), progress=False)
    train(tiny_config(device="cpu"), tmp_path / "run", policy=tiny_vae(), reward=InkReward(),
          resume=True, progress=False)
    assert [int(r["batch"]) for r in read_metrics(tmp_path / "run" / "metrics.csv")] == \
        [1, 2, 3, 4]
    assert RLConfig.load_json(tmp_path / "run" / "rl_config.json").device == "cpu"
    assert parameters(load_model(tmp_path / "run"))
