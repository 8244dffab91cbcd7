"""Placement plans over simulated GPU sets (pure: no GPU, no download)."""

import importlib.util
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from transformers import AutoConfig

from ensemble.errors import LoadError
from ensemble.models.memory import estimate, facts_from_config
from ensemble.models.placement import CUDA_CONTEXT, GIB, Need, plan
from ensemble.models.quantize import candidates

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "tests" / "data" / "hub"
SETS = {"1x24": [24 * GIB], "2x16": [16 * GIB] * 2, "1x80": [80 * GIB], "none": []}
FORMATS = ("bf16", "8bit", "4bit")


def hub_needs(dtype="auto", names=("qwen2.5-7b-instruct", "llama-3.1-8b-instruct", "mistral-7b-instruct-v0.3")):
    needs = []
    for i, name in enumerate(names):
        config = dict(json.loads((HUB / f"{name}.json").read_text())["config"])
        facts = facts_from_config(AutoConfig.for_model(config.pop("model_type"), **config), {"BF16": 1})
        estimates = {d: estimate(facts, d, 4096) for d in FORMATS}
        needs.append(Need(i, name, {d: e.total for d, e in estimates.items()}, candidates(dtype, facts.checkpoint),
                          {d: e.weights for d, e in estimates.items()}))
    return needs


def check_valid(p, needs, free):
    """Every member placed once; no GPU over its usable memory; sizes are the chosen format's."""
    assert [s.member for s in p.slots] == sorted(n.member for n in needs)
    used = [0] * len(free)
    for s, n in zip(p.slots, sorted(needs, key=lambda n: n.member), strict=True):
        assert s.dtype in n.allowed and s.size == n.sizes[s.dtype]
        assert not s.shares or sum(s.shares.values()) == s.size
        for g, b in s.shares.items():
            used[g] += b
    for g, f in enumerate(free):
        usable = max(f - CUDA_CONTEXT, 0)
        assert used[g] <= usable and p.left[g] == usable - used[g]


def sim(*sizes_gib, dtype="bf16"):
    return [Need(i, f"m{i}", {dtype: int(s * GIB)}, (dtype,)) for i, s in enumerate(sizes_gib)]


def test_no_gpu_puts_everyone_on_the_cpu_as_asked():
    p = plan(hub_needs(), SETS["none"])
    assert [(s.device, s.dtype) for s in p.slots] == [("cpu", "bf16")] * 3


def test_no_gpu_checks_ram():
    with pytest.raises(LoadError, match=r"no GPU.*short by .*8bit/4bit"):
        plan(hub_needs(), [], ram=32 * GIB)
    assert len(plan(hub_needs("4bit"), [], ram=32 * GIB).slots) == 3


def test_80gb_takes_all_three_in_bf16_on_one_gpu():
    needs = hub_needs()
    p = plan(needs, SETS["1x80"])
    check_valid(p, needs, SETS["1x80"])
    assert {(s.device, s.dtype) for s in p.slots} == {("cuda:0", "bf16")}


def test_24gb_quantizes_auto_members_until_they_fit():
    needs = hub_needs()
    p = plan(needs, SETS["1x24"])
    check_valid(p, needs, SETS["1x24"])
    assert {s.device for s in p.slots} == {"cuda:0"}
    assert any(s.dtype in ("8bit", "4bit") for s in p.slots)
    # best that fits: no member could take its next better format in the room that is left
    for s, n in zip(p.slots, needs, strict=True):
        k = n.allowed.index(s.dtype)
        assert k == 0 or n.sizes[n.allowed[k - 1]] - s.size > p.left[0]


def test_member_too_big_for_any_single_gpu_is_split():
    needs = hub_needs("bf16", names=("llama-3.1-8b-instruct",))
    p = plan(needs, SETS["2x16"])
    check_valid(p, needs, SETS["2x16"])
    (slot,) = p.slots
    assert slot.device == "auto" and set(slot.max_memory) == {0, 1}
    # accelerate is given the weights' part of each share; the rest stays for that GPU's KV cache
    assert sum(slot.max_memory.values()) == pytest.approx(slot.weights, abs=2)
    assert all(slot.max_memory[g] < slot.shares[g] for g in (0, 1))


def test_members_that_fit_whole_are_never_split():
    needs = hub_needs("8bit", names=("qwen2.5-7b-instruct", "llama-3.1-8b-instruct"))
    p = plan(needs, SETS["2x16"])
    check_valid(p, needs, SETS["2x16"])
    assert all(len(s.shares) == 1 for s in p.slots)
    assert {s.device for s in p.slots} == {"cuda:0", "cuda:1"}


def test_first_fit_decreasing():
    free = [10 * GIB + CUDA_CONTEXT] * 2
    p = plan(sim(3, 7, 1, 5, 4), free)
    check_valid(p, sim(3, 7, 1, 5, 4), free)
    assert [s.device for s in p.slots] == ["cuda:0", "cuda:0", "cuda:1", "cuda:1", "cuda:1"]  # 7+3 | 5+4+1


def test_fixed_dtype_that_cannot_fit_names_member_shortfall_and_quantization():
    with pytest.raises(LoadError) as err:
        plan(hub_needs("bf16"), SETS["1x24"])
    text = str(err.value)
    assert "short by" in text and "Try dtype: 4bit (or auto) for every member" in text
    assert any(name in text for name in ("qwen2.5-7b-instruct", "mistral-7b-instruct-v0.3", "llama-3.1-8b"))


def test_set_too_big_even_at_4bit_says_so():
    with pytest.raises(LoadError, match="Even all at 4bit"):
        plan(hub_needs(), [8 * GIB])


@given(st.lists(st.floats(0.1, 30), min_size=1, max_size=4), st.lists(st.floats(0.5, 40), max_size=3))
def test_any_plan_is_valid_or_refused(sizes, gpus):
    """With splitting, fixed-format members are refused exactly when their sum exceeds the usable total."""
    needs, free = sim(*sizes), [int(g * GIB) for g in gpus]
    too_big = bool(free) and sum(n.sizes["bf16"] for n in needs) > sum(max(f - CUDA_CONTEXT, 0) for f in free)
    try:
        p = plan(needs, free)
    except LoadError as e:
        assert too_big and "short by" in str(e)
        return
    assert not too_big
    if free:
        check_valid(p, needs, free)


def load_doc_renderer():
    spec = importlib.util.spec_from_file_location("bench_placement", ROOT / "bench" / "placement.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_documented_plan_is_what_the_code_computes():
    doc = (ROOT / "docs" / "placement.md").read_text()
    assert load_doc_renderer().render() in doc, "docs/placement.md is stale: run python bench/placement.py --write"
