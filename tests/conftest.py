"""Shared fixtures. Tests never reach a hub: HF_HUB_OFFLINE=1 and tiny models built here."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_server import fake_hub, hub_env, hub_model_dir, online_hub  # noqa: E402, F401 - the local hub's fixtures


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama (untied embeddings) with a test-made ChatML tokenizer, saved once per session."""
    from tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny Llama after a few steps of pre-training (engine_support.pretrain_tiny): answers that a
    fine-tune visibly changes. Once per session and worker."""
    from engine_support import pretrained_tiny_dir

    return pretrained_tiny_dir(tiny_model_dir, tmp_path_factory)


@pytest.fixture
def tiny_model_copy(tiny_model_dir, tmp_path) -> Path:
    """A private copy for tests that write next to the model."""
    dst = tmp_path / "model"
    shutil.copytree(tiny_model_dir, dst)
    return dst
