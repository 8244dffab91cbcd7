"""Memory estimates (made before any download) against what loaded models really hold."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, DynamicCache

from ensemble.config import MemberSpec
from ensemble.models.hub import member_facts
from ensemble.models.loading import load_model
from ensemble.models.locate import locate
from ensemble.models.memory import estimate, facts_from_config, kv_bytes, measure, weight_bytes

FORMATS = ["fp32", "bf16", "8bit", "4bit"]
HUB = sorted((Path(__file__).parent / "data" / "hub").glob("*.json"))
OFFLINE = ["smollm2-135m-instruct", "gemma-3-270m", "qwen2.5-coder-0.5b-instruct"]
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def facts_of(model: str):
    spec = MemberSpec(model)
    return member_facts(spec, *locate(model))


def hub_facts(path: Path):
    record = json.loads(path.read_text())
    config = dict(record["config"])
    config = AutoConfig.for_model(config.pop("model_type"), **config)
    return facts_from_config(config, record["parameter_count"]), record


def check_weights(model: str, dtype: str) -> float:
    facts = facts_of(model)
    lm = load_model(MemberSpec(model, dtype=dtype), "cpu")
    measured = measure(lm.model)
    assert measured > 0
    return weight_bytes(facts, dtype) / measured - 1


@pytest.mark.parametrize("dtype", FORMATS)
@pytest.mark.parametrize("name", ["bpe-qwen2", "uni-llama", "uni-gemma3"])
def test_weights_match_measured(fixture_dirs, name, dtype):
    assert abs(check_weights(str(fixture_dirs[name]), dtype)) < 0.05


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["bf16", "8bit", "4bit"])  # fp32: the fixtures and bench/memory.py
@pytest.mark.parametrize("name", OFFLINE)
def test_offline_weights_match_measured(name, dtype):
    assert abs(check_weights(f"offline:{name}", dtype)) < 0.05


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "4bit"])
@pytest.mark.parametrize("name", ["bpe-qwen2", "uni-gemma3"])
def test_kv_cache_matches_measured(fixture_dirs, name, dtype):
    facts = facts_of(str(fixture_dirs[name]))
    lm = load_model(MemberSpec(str(fixture_dirs[name]), dtype=dtype), "cpu")
    cache, n = DynamicCache(), 40  # as the engine makes it: no config, so no sliding-window layers
    with torch.inference_mode():
        lm.model(input_ids=torch.arange(3, 3 + n)[None], past_key_values=cache, use_cache=True)
    held = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert held == kv_bytes(facts, dtype, n, caches=1)


def test_checkpoint_dtype_from_safetensors_header(fixture_dirs):
    assert facts_of(str(fixture_dirs["bpe-qwen2"])).checkpoint == "fp32"  # the fixtures are saved in fp32


@pytest.mark.slow
def test_offline_checkpoints_are_bf16():
    assert {facts_of(f"offline:{n}").checkpoint for n in OFFLINE} == {"bf16"}


@pytest.mark.parametrize("path", HUB, ids=lambda p: p.stem)
def test_hub_fixture_counts_match_the_config(path):
    facts, record = hub_facts(path)
    assert facts.params == sum(record["parameter_count"].values())
    assert facts.checkpoint == "bf16"


@pytest.mark.parametrize("path", HUB, ids=lambda p: p.stem)
def test_estimates_order_and_scale(path):
    facts, _ = hub_facts(path)
    totals = [estimate(facts, d, 4096).total for d in FORMATS]
    assert totals == sorted(totals, reverse=True)  # fp32 > bf16 > 8bit > 4bit
    bf16 = weight_bytes(facts, "bf16")
    assert 0.25 < weight_bytes(facts, "4bit") / bf16 < 0.45 and 0.5 < weight_bytes(facts, "8bit") / bf16 < 0.6
    assert kv_bytes(facts, "bf16", 2048) * 2 == kv_bytes(facts, "bf16", 4096)
    capped = estimate(facts, "bf16", 10**9)  # the context is capped at the model's own
    assert capped.kv_cache == kv_bytes(facts, "bf16", facts.context)
