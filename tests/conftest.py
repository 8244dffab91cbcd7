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


def pytest_addoption(parser):
    parser.addoption("--order", choices=("file", "reverse", "random"), default="file",
                     help="test order: file order, reversed, or shuffled with --order-seed (modules, then the "
                          "tests inside each module, so module fixtures load once)")
    parser.addoption("--order-seed", type=int, default=0, help="seed of --order random")


def pytest_collection_modifyitems(config, items):
    import random

    order = config.getoption("--order")
    if order == "file":
        return
    modules: dict = {}
    for item in items:
        modules.setdefault(item.module.__name__, []).append(item)
    groups = list(modules.values())
    if order == "reverse":
        groups = [g[::-1] for g in groups[::-1]]
    else:
        rng = random.Random(config.getoption("--order-seed"))
        rng.shuffle(groups)
        for g in groups:
            rng.shuffle(g)
    items[:] = [item for g in groups for item in g]


def pytest_report_header(config):
    return f"test order: {config.getoption('--order')} (seed {config.getoption('--order-seed')})"
