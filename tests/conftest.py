"""Shared fixtures: a private model cache, the tiny-test base model, and small synthetic datasets."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before anything imports vlm: Ray workers inherit it, so every process shares one test cache.
os.environ.setdefault("FEDVLM_CACHE", tempfile.mkdtemp(prefix="fedvlm-test-cache-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from simulations.synth import write_scenario  # noqa: E402
from vlm.base_model import ensure_base_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The tiny-test preset, pre-trained briefly (seconds) and cached for the session."""
    return ensure_base_model("tiny-test")


@pytest.fixture(scope="session")
def hospital_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two small hospital sites plus server-eval."""
    return write_scenario("hospital", 2, tmp_path_factory.mktemp("hospital"), records_per_site=24, eval_records=16)


@pytest.fixture
def task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flower Messages need a run identity, as the ServerApp has under a SuperLink."""
    from flwr.supercore.task_identity import TaskIdentity  # here: the library-level tests run without Flower

    for name, value in (("_task_id", 1), ("_run_id", 1), ("_node_id", 0)):
        monkeypatch.setattr(TaskIdentity, name, value)
