"""CALM composition invariants on tiny fixture models (different tokenizers, seconds each)."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, DynamicCache

from ensemble.compose import ComposeConfig, Connection, compose, load_composed, save_composed
from ensemble.decode.prompting import prompt_ids
from ensemble.errors import ConfigError
from tests.helpers import config, load, run_fused

TEXT = "def main(argv):\n    return argv"


def composed(fixture_dirs, augments=("bpe-qwen2",), conns=None, seed=None):
    cfg = ComposeConfig(str(fixture_dirs["uni-llama"]), tuple(str(fixture_dirs[a]) for a in augments),
                        conns or (Connection(0, 0, 0), Connection(0, 1, 1)), heads=2)
    model = compose(cfg, dtype=torch.float32)
    if seed is not None:
        perturb(model, seed)
    return model


def perturb(model, seed):
    """A trained-looking composition: the zero-initialised output projections get random weights. The
    fixture models' hidden states are ~1e2, so the projections are scaled down to keep the attention
    softmax unsaturated (a saturated one turns float noise between two exact paths into a flip)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in model.blocks:
            block.proj.weight.mul_(0.01)
            w = block.attn.out_proj.weight
            w.copy_(torch.randn(w.shape, generator=g) * 0.3)


def ids_of(model, text=TEXT):
    return torch.tensor([model.tokenizer(text)["input_ids"]])


def test_zero_initialised_composition_equals_anchor(fixture_dirs):
    model = composed(fixture_dirs)
    anchor = AutoModelForCausalLM.from_pretrained(fixture_dirs["uni-llama"], dtype=torch.float32).eval()
    ids = ids_of(model)
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, anchor(input_ids=ids).logits)
        perturb(model, 0)  # the comparison can fail: a non-zero output changes the logits
        assert not torch.allclose(model(input_ids=ids).logits, anchor(input_ids=ids).logits)


def test_gradients_reach_only_the_composition(fixture_dirs):
    model = composed(fixture_dirs, seed=1).train()
    ids = ids_of(model)
    model(input_ids=ids, labels=ids).loss.backward()
    frozen = [*model.anchor.parameters(), *model.augments.parameters()]
    assert frozen and all(p.grad is None and not p.requires_grad for p in frozen)
    trainable = list(model.blocks.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
    assert {id(p) for p in model.parameters() if p.requires_grad} == {id(p) for p in trainable}


def greedy(model, prompt, n, cached):
    """Greedy ids and last logits: one cached forward per token, or the whole sequence every step with
    the augmenting context fixed to the prompt."""
    ids, logits, cache = list(prompt), [], DynamicCache()
    context = model.encode_augments([model.tokenizer.decode(prompt, skip_special_tokens=True)])
    with torch.no_grad():
        for _ in range(n):
            if cached:
                feed = ids[cache.get_seq_length():]
                out = model(input_ids=torch.tensor([feed]), past_key_values=cache, use_cache=True, logits_to_keep=1)
            else:
                out = model(input_ids=torch.tensor([ids]), augment=context)
            logits.append(out.logits[0, -1])
            ids.append(int(out.logits[0, -1].argmax()))
    return ids[len(prompt):], torch.stack(logits)


def test_cached_generation_equals_uncached(fixture_dirs):
    model = composed(fixture_dirs, seed=2)
    prompt = ids_of(model)[0].tolist()
    got, got_logits = greedy(model, prompt, 12, cached=True)
    want, want_logits = greedy(model, prompt, 12, cached=False)
    assert got == want
    torch.testing.assert_close(got_logits, want_logits, rtol=1e-4, atol=1e-3)  # logits ~1e2


def test_augmenting_models_read_the_text_with_their_own_tokenizers(fixture_dirs):
    model = composed(fixture_dirs, augments=("bpe-qwen2", "uni-gemma3"),
                     conns=(Connection(0, 1, 0), Connection(1, 2, 1)), seed=3)
    ids = ids_of(model)
    aug_lens = [len(t(TEXT)["input_ids"]) for t in model.aug_tokenizers]
    assert aug_lens[0] != ids.shape[1]  # the tokenizers really differ
    cache = DynamicCache()
    with torch.no_grad():
        out = model(input_ids=ids, past_key_values=cache, use_cache=True)
    states = cache.calm_context.states
    assert [s.layers[c.aug_layer].shape[1] for s, c in zip(states, model.cfg.connections, strict=True)] == aug_lens
    # the augmenting text matters: a different text under the same anchor ids changes the logits
    other = model.encode_augments(["something else entirely"])
    with torch.no_grad():
        assert not torch.allclose(out.logits, model(input_ids=ids, augment=other).logits)


def test_cropping_into_the_prompt_recomputes_the_context(fixture_dirs):
    model = composed(fixture_dirs, seed=4)
    first, second = ids_of(model)[0].tolist(), ids_of(model, TEXT + " + 1")[0].tolist()
    keep = 3
    cache = DynamicCache()
    with torch.no_grad():
        model(input_ids=torch.tensor([first]), past_key_values=cache, use_cache=True)
        cache.crop(keep - len(first))
        reused = model(input_ids=torch.tensor([second[keep:]]), past_key_values=cache, use_cache=True).logits
        fresh = model(input_ids=torch.tensor([second]), past_key_values=DynamicCache(), use_cache=True).logits
    torch.testing.assert_close(reused[0, -1], fresh[0, -1], rtol=1e-4, atol=1e-3)


def test_save_and_load_round_trip(fixture_dirs, tmp_path):
    model = composed(fixture_dirs, seed=5)
    save_composed(model, tmp_path / "calm")
    saved = json.loads((tmp_path / "calm" / "compose.json").read_text())
    assert not saved["anchor"].startswith("/")  # local members are referenced relative to the folder
    _, loaded = load_composed(tmp_path / "calm", torch.float32)
    ids = ids_of(model)
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, loaded(input_ids=ids).logits)
    saved["layers"] = 3
    (tmp_path / "calm" / "compose.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match="unknown keys"):
        load_composed(tmp_path / "calm")


def test_composed_model_is_one_engine_member(fixture_dirs, tmp_path):
    model = composed(fixture_dirs, seed=6)
    save_composed(model, tmp_path / "calm")
    messages = [{"role": "user", "content": TEXT}]
    solo = load([tmp_path / "calm"])
    prompt = prompt_ids(solo[0].tokenizer, messages)
    run, _ = run_fused(solo, config([tmp_path / "calm"], "gac"), [prompt])
    answer = run.members[0].answer
    expected, _ = greedy(model, prompt, len(answer) + 1, cached=False)
    ends = set(solo[0].vocab.end_ids)
    assert answer and answer == [t for t in expected[: len(answer)] if t not in ends]
    plain, _ = greedy(composed(fixture_dirs), prompt, len(answer), cached=False)
    assert plain != answer  # the composition changed what the anchor says

    paths = [tmp_path / "calm", fixture_dirs["bpe-qwen2"]]
    pair = load(paths)
    prompts = [prompt_ids(m.tokenizer, messages) for m in pair]
    run, events = run_fused(pair, config(paths, "gac"), prompts)
    assert run.members[0].error is None and run.members[1].error is None
    assert events[-1].reason in ("end", "length") and events[-1].text


def test_composition_goes_through_the_pool_with_an_estimate(fixture_dirs, tmp_path):
    from ensemble.config import MemberSpec
    from ensemble.models.hub import member_facts
    from ensemble.models.locate import locate
    from ensemble.models.pool import ModelPool

    save_composed(composed(fixture_dirs, seed=7), tmp_path / "calm")
    spec = MemberSpec(str(tmp_path / "calm"), dtype="fp32")
    facts = member_facts(spec, *locate(spec.model))
    anchor = member_facts(MemberSpec(str(fixture_dirs["uni-llama"])), *locate(str(fixture_dirs["uni-llama"])))
    assert facts.layers == anchor.layers and facts.params > anchor.params  # the anchor's shape, both members' weights
    stages = []
    [lm] = ModelPool(gpus=[]).load([spec], progress=lambda p: stages.append(p.stage))
    assert "estimating" in stages and stages[-1] == "ready" and lm.model.__class__.__name__ == "ComposedLM"
    with pytest.raises(Exception, match="CALM composition loads in"):
        ModelPool(gpus=[]).load([MemberSpec(str(tmp_path / "calm"), dtype="4bit")])
