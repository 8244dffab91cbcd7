"""Sanity checks of the tiny fixture models in tests/fixtures.py."""

import json
import random
import unicodedata

import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests import fixtures

SAMPLES = [*fixtures.MULTILINGUAL, "", " ", "  ", "x", "<0x41> is not a byte token", "a\n\n\tb  c   "]
PROMPTS = ["def ", "The quick brown", " naïve café 東京 🙂", "Hello"]


def _tok(path):
    return AutoTokenizer.from_pretrained(path)


def _model(path):
    return AutoModelForCausalLM.from_pretrained(path).eval()


def test_cache_layout(fixture_dirs):
    assert set(fixture_dirs) == {"bpe-qwen2", "uni-llama", "uni-gemma3", "bpe-qwen2-permuted", "uni-llama-permuted"}
    for path in fixture_dirs.values():
        assert path.parent == fixtures.REPO_ROOT / ".fixture-cache" / fixtures.FIXTURE_VERSION
        assert {"config.json", "tokenizer.json", "model.safetensors"} <= {p.name for p in path.iterdir()}
    assert fixtures.fixture_dirs() == fixture_dirs


def test_corpus_is_small_and_multilingual():
    text = "".join(fixtures.corpus())
    assert 150_000 < len(text) <= 300_000
    assert "東京" in text and "🙂" in text and "\t" in text


def test_vocab_layout(tiny_bpe, tiny_uni):
    bpe, uni = _tok(tiny_bpe), _tok(tiny_uni)
    assert len(bpe) == fixtures.BPE_VOCAB_SIZE and len(uni) == fixtures.UNI_VOCAB_SIZE
    assert bpe.convert_tokens_to_ids(list(fixtures.BPE_SPECIALS)) == [0, 1, 2]
    assert (bpe.bos_token, bpe.eos_token, bpe.pad_token) == (None, "<|im_end|>", "<|endoftext|>")
    assert uni.convert_tokens_to_ids(list(fixtures.UNI_SPECIALS)) == [0, 1, 2]
    assert uni.convert_ids_to_tokens([3, 258]) == ["<0x00>", "<0xFF>"]
    assert (uni.bos_token, uni.eos_token, uni.unk_token) == ("<s>", "</s>", "<unk>")


def test_special_tokens_and_chat_template(tiny_bpe, tiny_uni):
    bpe, uni = _tok(tiny_bpe), _tok(tiny_uni)
    assert uni("hi")["input_ids"][0] == uni.bos_token_id  # Llama-like: BOS by default
    assert uni("hi", add_special_tokens=False)["input_ids"][0] != uni.bos_token_id
    assert bpe("hi")["input_ids"] == bpe("hi", add_special_tokens=False)["input_ids"]
    chat = bpe.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert uni.chat_template is None


@pytest.mark.parametrize("name", ["bpe-qwen2", "uni-llama"])
def test_roundtrip(fixture_dirs, name):
    tok = _tok(fixture_dirs[name])
    for s in SAMPLES:
        ids = tok.encode(s, add_special_tokens=False)
        assert tok.decode(ids) == s, (s, tok.convert_ids_to_tokens(ids))
        assert tok.unk_token_id not in ids or tok.unk_token_id is None


def test_known_lossy_cases(tiny_bpe, tiny_uni):
    bpe, uni = _tok(tiny_bpe), _tok(tiny_uni)
    nfd = unicodedata.normalize("NFD", "café")
    assert bpe.decode(bpe.encode(nfd)) == "café" != nfd  # Qwen2's NFC normalizer
    assert uni.decode(uni.encode(nfd, add_special_tokens=False)) == nfd
    # Llama-2 legacy: the dummy "▁" is prepended after every special token too, and decoding a
    # slice that starts with "▁word" loses that space.
    assert uni.decode(uni.encode("a <s> b", add_special_tokens=False)) == "a <s>  b"
    ids = uni.encode("x world", add_special_tokens=False)
    assert uni.convert_ids_to_tokens(ids)[2] == "▁" and uni.decode(ids[2:]) == "world"
    byte_ids = uni.convert_tokens_to_ids(["<0xE6>", "<0x9D>", "<0xB1>"])
    assert uni.decode(byte_ids) == "東" and uni.decode(byte_ids[:1]) == "\ufffd"


@pytest.mark.parametrize("name", ["bpe-qwen2", "uni-llama", "bpe-qwen2-permuted", "uni-llama-permuted"])
def test_auto_tokenizer_matches_tokenizer_json(fixture_dirs, name):
    # AutoTokenizer picks Qwen2Tokenizer for qwen2 and rebuilds the pipeline; it must agree with the file.
    tok, raw = _tok(fixture_dirs[name]), Tokenizer.from_file(str(fixture_dirs[name] / "tokenizer.json"))
    for s in [*SAMPLES, fixtures.corpus()[5][:2000]]:
        assert tok.encode(s) == raw.encode(s).ids


def test_segmentations_differ(tiny_bpe, tiny_uni):
    bpe, uni = _tok(tiny_bpe), _tok(tiny_uni)
    for s in ["The quick brown fox", " naïve café 東京 🙂", "def f(x):\n    return x"]:
        a = bpe(s, return_offsets_mapping=True)["offset_mapping"]
        b = uni(s, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        assert {end for _, end in a} != {end for _, end in b}, s


def test_tokenizer_training_is_deterministic(tiny_bpe, tiny_uni):
    texts = fixtures.corpus()
    for train, path in ((fixtures.train_bpe_tokenizer, tiny_bpe), (fixtures.train_unigram_tokenizer, tiny_uni)):
        fresh = json.loads(train(texts).backend_tokenizer.to_str())["model"]
        saved = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))["model"]
        assert fresh == saved


def test_canonical_pieces_ignore_tie_order():
    jitter = [-12.0001, -12.0002, -12.0003]
    pieces = [["a", -1.0], ["b", -2.0]]
    runs = []
    for seed in range(3):
        rare = ["x", "y", "z"]
        random.Random(seed).shuffle(rare)
        runs.append(fixtures._canonical_pieces(pieces + [list(p) for p in zip(rare, jitter, strict=True)]))
    assert runs[0] == runs[1] == runs[2]
    assert runs[0] == [("a", -1.0), ("b", -2.0), ("x", -12.0001), ("y", -12.0002), ("z", -12.0003)]


@pytest.mark.parametrize(
    "name, cls",
    [("bpe-qwen2", "Qwen2ForCausalLM"), ("uni-llama", "LlamaForCausalLM"), ("uni-gemma3", "Gemma3ForCausalLM")],
)
def test_models_generate_varied_text(fixture_dirs, name, cls):
    tok, model = _tok(fixture_dirs[name]), _model(fixture_dirs[name])
    assert type(model).__name__ == cls and model.dtype == torch.float32
    assert model.config.vocab_size == len(tok) and model.config.max_position_embeddings == 512
    gc = model.generation_config
    assert gc.eos_token_id == tok.eos_token_id and gc.bos_token_id == tok.bos_token_id
    assert gc.pad_token_id == (tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    for prompt in PROMPTS:
        enc = tok(prompt, return_tensors="pt")
        out = model.generate(**enc, max_new_tokens=30, do_sample=False)[0, enc["input_ids"].shape[1] :]
        assert len(out) == 30 and len(set(out.tolist())) >= 6, (prompt, tok.decode(out))


def test_gemma_cache_past_sliding_window(tiny_gemma):
    model = _model(tiny_gemma)
    assert model.config.sliding_window == 8
    assert set(model.config.layer_types) == {"sliding_attention", "full_attention"}
    ids = torch.randint(3, 800, (1, 24), generator=torch.Generator().manual_seed(0))
    full = model(ids).logits
    with torch.no_grad():
        out = model(ids[:, :4], use_cache=True)
        steps = [out.logits]
        for t in range(4, ids.shape[1]):
            out = model(ids[:, t : t + 1], past_key_values=out.past_key_values, use_cache=True)
            steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("base", ["bpe-qwen2", "uni-llama"])
def test_permuted_copy(fixture_dirs, base):
    src, dst = fixture_dirs[base], fixture_dirs[f"{base}-permuted"]
    perm = fixtures.load_permutation(dst)
    specials = range(3)
    assert sorted(perm) == list(range(len(perm))) and all(perm[i] == i for i in specials)
    assert sum(perm[i] != i for i in range(len(perm))) > 0.9 * len(perm)
    tok, ptok = _tok(src), _tok(dst)
    for s in SAMPLES:
        assert ptok.encode(s) == [perm[i] for i in tok.encode(s)], s
    model, pmodel = _model(src), _model(dst)
    ids = torch.tensor([tok.encode("The quick brown fox 東京 🙂 jumps")])
    perm_t = torch.tensor(perm)
    with torch.no_grad():
        logits, plogits = model(ids).logits, pmodel(perm_t[ids]).logits
    torch.testing.assert_close(plogits[..., perm_t], logits, atol=1e-5, rtol=1e-5)
