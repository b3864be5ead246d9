"""The roofline of a fine-tuning batch: its matrix FLOPs at this machine's matmul rates, measured
now for the batch's own shapes (``bench_rl.py`` and ``profile_rl.py``)."""

from __future__ import annotations

import statistics
import time

import torch


def sync(device: torch.device) -> None:
    """Wait for the GPU (timings of asynchronous work)."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(m: int, k: int, n: int, device: torch.device, repeats: int = 50) -> float:
    """GFLOP/s of ``(m, k) @ (k, n)`` on this machine now."""
    a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
    for _ in range(5):
        a @ b
    sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * m * k * n * repeats / (time.perf_counter() - started) / 1e9


def measure_rates(batch: int, hidden: int, out: int, steps: int,
                  device: torch.device) -> dict[str, float]:
    """The matmul rates (GFLOP/s) of a batch's four product shapes, keyed as
    :func:`roofline_seconds` reads them."""
    return {
        "step": matmul_rate(batch, hidden, 4 * hidden, device),
        "out": matmul_rate(batch, hidden, out, device),
        "dh": matmul_rate(batch, 4 * hidden, hidden, device),
        "dw": matmul_rate(hidden, batch * steps, 4 * hidden, device, repeats=5),
    }


def best_rates(*measurements: dict[str, float]) -> dict[str, float]:
    """Each shape's highest rate over several :func:`measure_rates` (before and after the
    timed batches): the roofline is the best this shared machine did in the run."""
    return {key: max(rates[key] for rates in measurements) for key in measurements[0]}


def roofline_seconds(batch: int, steps: int, hidden: int, out: int, rates: dict) -> float:
    """Matrix time of one sampled pass and its backward at the measured rates.

    Forward, per step: ``(B, 5) @ (5, 4H)``, ``(B, H) @ (H, 4H)``, ``(B, H) @ (H, O)``;
    backward: the input gradients per step (``(B, 4H) @ (4H, H)``, ``(B, O) @ (O, H)``) and
    the weight gradients of all steps at once (``(H, BT) @ (BT, 4H)``, ``(H, BT) @ (BT, O)``).
    """
    flops_step = 2 * batch * (5 + hidden) * 4 * hidden
    flops_out = 2 * batch * hidden * out
    forward = steps * (flops_step / rates["step"] + flops_out / rates["out"])
    backward = steps * (2 * batch * 4 * hidden * hidden / rates["dh"] + flops_out / rates["out"])
    weights = (flops_step + flops_out) * steps / rates["dw"]
    return (forward + backward + weights) / 1e9


def lstm_roofline_seconds(batch: int, steps: int, hidden: int, rates: dict) -> float:
    """The LSTM's share of :func:`roofline_seconds` (no output head)."""
    flops_step = 2 * batch * (5 + hidden) * 4 * hidden
    forward = steps * flops_step / rates["step"]
    backward = steps * 2 * batch * 4 * hidden * hidden / rates["dh"]
    return (forward + backward + flops_step * steps / rates["dw"]) / 1e9


def vendor_lstm_seconds(batch: int, steps: int, hidden: int, device: torch.device,
                        repeats: int = 5) -> float:
    """Median forward + backward time of ``torch.nn.LSTM`` (oneDNN's fused kernel on the CPU,
    cuDNN's on a GPU) over a teacher-forced ``(batch, steps, 5)`` input: what a vendor kernel
    reaches on the recurrence alone, without sampling between the steps."""
    lstm = torch.nn.LSTM(5, hidden, batch_first=True).to(device)
    inputs = torch.randn(batch, steps, 5, device=device)
    times = []
    for k in range(repeats + 2):
        sync(device)
        started = time.perf_counter()
        lstm(inputs)[0].sum().backward()
        sync(device)
        if k >= 2:
            times.append(time.perf_counter() - started)
    return statistics.median(times)
