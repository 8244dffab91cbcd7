"""The model pool: progress events, reuse across chats, clean unloads, refusal before download; ZeroGPU."""

import gc
import importlib.machinery
import json
import sys
import types
import weakref
from pathlib import Path

import pytest
from transformers import AutoConfig

import ensemble.models.pool
from ensemble.config import MemberSpec
from ensemble.errors import LoadError
from ensemble.models.memory import facts_from_config
from ensemble.models.placement import GIB
from ensemble.models.pool import LoadProgress, ModelPool
from ensemble.models.zerogpu import gpu

STAGES = ("estimating", "downloading", "loading", "quantizing", "placing", "ready")
LLAMA = Path(__file__).parent / "data" / "hub" / "llama-3.1-8b-instruct.json"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def specs(fixture_dirs, *names, dtype="auto"):
    return [MemberSpec(str(fixture_dirs[n]), dtype=dtype) for n in names]


def check_events(events: list[LoadProgress], n: int):
    assert all(e.stage in STAGES and 0 <= e.fraction <= 1 and e.message for e in events)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    for i in range(n):
        mine = [e.stage for e in events if e.member == i]
        assert mine[-1] == "ready"
        if "estimating" in mine:
            assert mine.index("estimating") < mine.index("placing") < mine.index("ready")


def test_load_reports_progress_and_places(fixture_dirs):
    pool, events = ModelPool(gpus=[24 * GIB]), []
    models = pool.load(specs(fixture_dirs, "bpe-qwen2", "uni-llama"), events.append)
    check_events(events, 2)
    assert [m.name for m in models] == ["bpe-qwen2", "uni-llama"]
    assert {e.stage for e in events} == {"estimating", "placing", "loading", "ready"}
    assert "cuda:0" in next(e.message for e in events if e.stage == "placing")  # planned for the simulated GPU
    assert pool.free()[0] < 24 * GIB  # the loaded members' budget is taken from the simulated GPU


def test_members_are_reused_across_requests(fixture_dirs):
    pool = ModelPool(gpus=[])
    first = pool.load(specs(fixture_dirs, "bpe-qwen2"))
    events = []
    again = MemberSpec(str(fixture_dirs["bpe-qwen2"]), weight=2.0, name="other name")
    second = pool.load([again, *specs(fixture_dirs, "uni-gemma3")], events.append)
    assert second[0].model is first[0].model and second[0].spec == again
    assert [e.stage for e in events if e.member == 0] == ["ready"]  # nothing estimated or loaded again
    check_events(events, 2)
    assert len(pool.loaded()) == 2


def test_quantizing_stage(fixture_dirs):
    events = []
    (lm,) = ModelPool(gpus=[]).load(specs(fixture_dirs, "bpe-qwen2", dtype="4bit"), events.append)
    assert "quantizing" in [e.stage for e in events] and lm.device.type == "cpu"


def test_unload_frees_the_model(fixture_dirs):
    pool = ModelPool(gpus=[])
    (spec,) = specs(fixture_dirs, "uni-llama")
    ref = weakref.ref(pool.load([spec])[0].model)
    pool.unload(spec)
    gc.collect()
    assert ref() is None and pool.loaded() == []
    pool.load([spec])
    pool.clear()
    assert pool.loaded() == []


def test_refuses_before_any_download(monkeypatch):
    record = json.loads(LLAMA.read_text())
    config = dict(record["config"])
    facts = facts_from_config(AutoConfig.for_model(config.pop("model_type"), **config), record["parameter_count"])
    monkeypatch.setattr(ensemble.models.pool, "member_facts", lambda *a: facts)
    monkeypatch.setattr(ensemble.models.pool, "download", lambda *a: pytest.fail("downloaded"))
    monkeypatch.setattr(ensemble.models.pool, "load_model", lambda *a: pytest.fail("loaded"))
    events = []
    with pytest.raises(LoadError, match=r"Llama-3.1-8B-Instruct.*short by .* GiB.*Try dtype: 8bit"):
        ModelPool(gpus=[16 * GIB]).load([MemberSpec(record["repo"], dtype="bf16")], events.append)
    assert {e.stage for e in events} == {"estimating"}


def test_hub_member_is_downloaded_then_loaded(monkeypatch, fixture_dirs):
    real = ensemble.models.pool.load_model
    tiny = MemberSpec(str(fixture_dirs["bpe-qwen2"]))
    downloads = []
    monkeypatch.setattr(ensemble.models.pool, "member_facts", lambda spec, *a: tiny_facts(tiny))
    monkeypatch.setattr(ensemble.models.pool, "download", lambda repo, token: downloads.append(repo))
    monkeypatch.setattr(ensemble.models.pool, "load_model",
                        lambda spec, device, slot, located: real(tiny, device, slot))
    events = []
    (lm,) = ModelPool(gpus=[80 * GIB]).load([MemberSpec("someone/tiny")], events.append)
    assert downloads == ["someone/tiny"] and lm.spec.model == "someone/tiny"
    stages = [e.stage for e in events]
    assert stages.index("placing") < stages.index("downloading") < stages.index("loading")
    check_events(events, 1)


def tiny_facts(spec):
    from ensemble.models.hub import member_facts
    from ensemble.models.locate import locate

    return member_facts(spec, *locate(spec.model))


def test_gpu_is_the_identity_without_spaces(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)

    def f():
        return 1

    assert gpu(f) is f and gpu(duration=5)(f) is f


def test_gpu_uses_spaces_when_present(monkeypatch):
    fake = types.ModuleType("spaces")
    fake.__spec__ = importlib.machinery.ModuleSpec("spaces", None)
    fake.GPU = lambda duration: (lambda fn: ("wrapped", fn, duration))
    monkeypatch.setitem(sys.modules, "spaces", fake)

    def f():
        return 1

    assert gpu(f) == ("wrapped", f, 120) and gpu(duration=30)(f) == ("wrapped", f, 30)


@pytest.mark.parametrize(("shares", "expected"), [({1: 100}, {"device_map": {"": "cuda:1"}}),
                                                  ({0: 60, 1: 40}, {"device_map": "auto",
                                                                    "max_memory": {0: 30, 1: 20}})])
def test_slot_becomes_device_map(monkeypatch, fixture_dirs, shares, expected):
    import transformers

    from ensemble.models.loading import load_model
    from ensemble.models.placement import Slot

    real, seen = transformers.AutoModelForCausalLM.from_pretrained, {}

    def on_cpu(where, **kwargs):  # what a GPU machine would get; loaded here on the CPU instead
        seen.update(kwargs)
        return real(where, **{k: v for k, v in kwargs.items() if k not in ("device_map", "max_memory")})

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", on_cpu)
    lm = load_model(MemberSpec(str(fixture_dirs["bpe-qwen2"])), "cpu", Slot(0, "m", "bf16", 100, shares, 50))
    assert {k: seen[k] for k in expected} == expected and seen["dtype"] is not None
    assert lm.device.type == "cpu"
