import os

# The test machines have no Hugging Face Hub: fail fast instead of retrying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests import fixtures  # noqa: E402


@pytest.fixture(scope="session")
def fixture_dirs() -> dict[str, Path]:
    """All tiny fixture model folders, built once into .fixture-cache/ (see tests/fixtures.py)."""
    return fixtures.fixture_dirs()


@pytest.fixture(scope="session")
def tiny_bpe(fixture_dirs) -> Path:
    """Qwen2 with a byte-level BPE (vocab 1000) and a ChatML chat template."""
    return fixture_dirs["bpe-qwen2"]


@pytest.fixture(scope="session")
def tiny_uni(fixture_dirs) -> Path:
    """Llama base model with a Llama-2 style Unigram + byte fallback tokenizer (vocab 800)."""
    return fixture_dirs["uni-llama"]


@pytest.fixture(scope="session")
def tiny_gemma(fixture_dirs) -> Path:
    """Gemma3 text model, sliding_window=8, sharing tiny_uni's tokenizer."""
    return fixture_dirs["uni-gemma3"]
