"""The real bitsandbytes loader on tiny fixture models, on the CPU: layers are really quantized and the engine
still decodes through them exactly as the quantized model's own `generate`."""

import bitsandbytes as bnb
import pytest
import torch

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig
from ensemble.decode.events import MemberFailed
from ensemble.decode.prompting import prompt_ids
from ensemble.errors import ConfigError
from ensemble.models.pool import load_models
from ensemble.models.quantize import candidates, quantized_layers
from tests.helpers import greedy_ids, pieces_and_final, run_fused

LAYER = {"4bit": bnb.nn.Linear4bit, "8bit": bnb.nn.Linear8bitLt}
PROMPT = [{"role": "user", "content": "def main(argv):"}]
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def fp32_compute(monkeypatch):
    """Token equality runs in fp32: bf16 near-ties flip between kernels (generate's masked attention vs the
    engine's), so the equality tests compute in fp32 around the quantized weights."""
    import ensemble.models.quantize

    monkeypatch.setattr(ensemble.models.quantize, "COMPUTE_DTYPE", torch.float32)


def quantized(paths, dtypes, method="gac", n=16):
    members = tuple(MemberSpec(str(p), dtype=d) for p, d in zip(paths, dtypes, strict=True))
    cfg = EnsembleConfig(members=members, method=method, sampling=SamplingConfig(max_new_tokens=n))
    models = load_models(members)
    return models, cfg, [prompt_ids(m.tokenizer, PROMPT) for m in models]


@pytest.mark.parametrize("dtype", ["4bit", "8bit"])
@pytest.mark.parametrize("name", ["bpe-qwen2", "uni-gemma3"])
def test_linear_layers_are_bitsandbytes(fixture_dirs, name, dtype):
    (lm,), _, _ = quantized([fixture_dirs[name]], [dtype])
    head = lm.model.get_output_embeddings()
    linears = [m for m in lm.model.modules() if isinstance(m, torch.nn.Linear) and m is not head]
    assert linears and all(isinstance(m, LAYER[dtype]) for m in linears)
    assert not isinstance(head, LAYER[dtype])  # the output head stays in the compute dtype
    assert quantized_layers(lm.model) == {LAYER[dtype].__name__: len(linears)}
    assert lm.device.type == "cpu"


def test_4bit_is_nf4_double_quant_bf16_compute(fixture_dirs):
    (lm,), _, _ = quantized([fixture_dirs["bpe-qwen2"]], ["4bit"])
    q = lm.model.config.quantization_config
    assert (q.bnb_4bit_quant_type, q.bnb_4bit_use_double_quant, q.bnb_4bit_compute_dtype) == (
        "nf4", True, torch.bfloat16)
    layer = next(m for m in lm.model.modules() if isinstance(m, bnb.nn.Linear4bit))
    assert layer.weight.dtype == torch.uint8 and layer.weight.quant_state.nested
    assert layer.compute_dtype == torch.bfloat16


@pytest.mark.parametrize("dtype", ["4bit", "8bit"])
@pytest.mark.parametrize("name", ["bpe-qwen2", "uni-llama"])
def test_one_quantized_member_equals_its_generate(fixture_dirs, name, dtype, fp32_compute):
    models, cfg, prompts = quantized([fixture_dirs[name]], [dtype])
    run, events = run_fused(models, cfg, prompts)
    _, final = pieces_and_final(events)
    assert final.stats.steps > 0
    assert run.members[0].answer == greedy_ids(models[0], prompts[0], 16)


@pytest.mark.parametrize("dtype", ["4bit", "8bit"])
def test_two_quantized_copies_equal_one(fixture_dirs, dtype, fp32_compute):
    # (A vocabulary-permuted copy is no test here: bf16 logits tie, and ties break by token id.)
    models, cfg, prompts = quantized([fixture_dirs["uni-llama"]] * 2, [dtype, dtype])
    assert models[0].model is models[1].model  # loaded once, two KV caches
    run, events = run_fused(models, cfg, prompts)
    expected = greedy_ids(models[0], prompts[0], 16)
    assert run.members[0].answer == expected and run.members[1].answer == expected
    _, final = pieces_and_final(events)
    assert final.stats.fed_per_step == (1.0, 1.0)


def test_mixed_formats_ensemble_decodes(fixture_dirs):
    paths = [fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"]]
    models, cfg, prompts = quantized(paths, ["4bit", "8bit"], method="unite", n=24)
    run, events = run_fused(models, cfg, prompts)
    pieces, final = pieces_and_final(events)
    assert not [e for e in events if isinstance(e, MemberFailed)]
    assert final.stats.steps > 0 and "".join(p.text for p in pieces) == final.text
    assert {p.driver for p in pieces} <= {0, 1}


def test_quantized_weights_differ_from_bf16(fixture_dirs):
    (q,), _, _ = quantized([fixture_dirs["bpe-qwen2"]], ["4bit"])
    (b,), _, _ = quantized([fixture_dirs["bpe-qwen2"]], ["bf16"])
    ids = torch.tensor([prompt_ids(b.tokenizer, PROMPT)])
    with torch.inference_mode():
        lq, lb = q.model(ids).logits.float(), b.model(ids).logits.float()
    assert not torch.equal(lq, lb)  # really quantized, not a bf16 model under another name
    assert torch.corrcoef(torch.stack([lq.flatten(), lb.flatten()]))[0, 1] > 0.5  # yet the same model (0.84 here)


def test_candidates():
    assert candidates("auto", "bf16") == ("bf16", "8bit", "4bit")
    assert candidates("auto", "fp32") == ("fp32", "bf16", "8bit", "4bit")
    assert candidates("8bit", "bf16") == ("8bit",)


def test_unknown_dtype_is_a_config_error():
    with pytest.raises(ConfigError, match="4bit"):
        MemberSpec("x/y", dtype="3bit")
