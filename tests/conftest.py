"""Shared fixtures: where the offline asset mirror is, and an isolated sketchrl cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_shared_assets() -> Path | None:
    """The offline mirror of the official download layout (``../shared/assets``)."""
    candidates = []
    if os.environ.get("SKETCHRL_TEST_ASSETS"):
        candidates.append(Path(os.environ["SKETCHRL_TEST_ASSETS"]))
    candidates += [REPO_ROOT.parent / "shared" / "assets",
                   REPO_ROOT.parent.parent / "shared" / "assets"]
    for path in candidates:
        if (path / "quickdraw-models").is_dir():
            return path.resolve()
    return None


SHARED_ASSETS = find_shared_assets()


@pytest.fixture(scope="session", autouse=True)
def single_torch_thread():
    """One intra-op thread: tiny models run many times faster than with two busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def native_kernels_built():
    """Build the C++ decoder loops and SSIM kernel once, first (about a minute each on a fresh
    machine), so that no subprocess test with a timeout pays for the build."""
    from sketchrl.models.native import native_loops
    from sketchrl.rewards.ssim import ssim_kernel

    native_loops()
    ssim_kernel()


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    """Path of the real-asset mirror; tests that need it fail loudly when it is absent."""
    if SHARED_ASSETS is None:
        pytest.fail("../shared/assets not found; set SKETCHRL_TEST_ASSETS to the mirror's path")
    return SHARED_ASSETS


@pytest.fixture(autouse=True)
def isolated_sketchrl_env(tmp_path_factory, monkeypatch):
    """Every test gets its own cache and reads assets from the local mirror."""
    monkeypatch.setenv("SKETCHRL_HOME", str(tmp_path_factory.mktemp("sketchrl_home")))
    if SHARED_ASSETS is not None:
        monkeypatch.setenv("SKETCHRL_ASSET_URL", str(SHARED_ASSETS))


def save_random_classifier(directory, categories=("owl", "bird", "cat"), seed: int = 0):
    """Save a CNN classifier of ``categories`` with random weights (from ``seed``) and
    non-trivial batch norm into ``directory``; returns the directory."""
    from sketchrl.classifiers import ClassifierConfig, build_classifier, save_classifier

    torch.manual_seed(seed)
    config = ClassifierConfig(categories=list(categories), arch="cnn")
    classifier = build_classifier(config.arch, config.categories)
    with torch.no_grad():
        classifier.train()(torch.rand(8, 1, 28, 28))
    return save_classifier(classifier.eval(), config, directory)


@pytest.fixture
def untrained_classifier_dir(tmp_path):
    """A saved owl/bird/cat CNN classifier with random weights and non-trivial batch norm."""
    return save_random_classifier(tmp_path / "classifier")


@pytest.fixture
def kill_on_call(monkeypatch):
    """``kill_on_call(owner, name, n)``: the n-th call of ``owner.name`` raises
    KeyboardInterrupt (a kill arriving there); ``monkeypatch.undo()`` restores it."""

    def patch(owner, name: str, n: int) -> None:
        real, calls = getattr(owner, name), {"count": 0}

        def dies_on_the_nth_call(*args, **kwargs):
            calls["count"] += 1
            if calls["count"] == n:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, dies_on_the_nth_call)

    return patch


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip without a GPU (``benchmarks/gpu_check.sh`` runs them)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def skip_or_fail(reason: str) -> None:
    """Skip locally when a tool (Node, Chromium, Ray) is missing; fail in CI (SKETCHRL_CI=1)."""
    if os.environ.get("SKETCHRL_CI"):
        pytest.fail(f"{reason} (required in CI: .ci/run installs it)")
    pytest.skip(reason)
