"""Byte alignment: every token id maps to its exact bytes, across tokenizer families."""

import pytest

from ensemble.align.shared import END, union_space
from ensemble.align.vocab import gpt2_byte_decoder, piece_bytes
from tests.helpers import load

SAMPLES = ["naïve café — 東京 🙂", "\tdef f(x):\n\t\treturn x", "  two leading spaces", "中文文本测试，你好世界。",
           "Emoji party 🙂🎉👍🚀 ❤️", "a\u200bb", " x"]


def test_gpt2_byte_table_is_a_bijection():
    table = gpt2_byte_decoder()
    assert sorted(table.values()) == list(range(256))
    assert table["Ġ"] == 32 and table["Ċ"] == 10


@pytest.mark.parametrize("token,kind,expected", [
    ("Ġthe", "bytelevel", b" the"), ("Ã©", "bytelevel", "é".encode()), ("ĊĊ", "bytelevel", b"\n\n"),
    ("▁the", "metaspace", b" the"), ("<0xE6>", "metaspace", b"\xe6"), ("<0x0A>", "metaspace", b"\n"),
    ("東京", "metaspace", "東京".encode()),
])
def test_piece_bytes(token, kind, expected):
    assert piece_bytes(token, kind) == expected


@pytest.mark.parametrize("name", ["bpe-qwen2", "uni-llama"])
@pytest.mark.parametrize("text", SAMPLES)
def test_continuation_roundtrip(fixture_dirs, name, text):
    lm = load([fixture_dirs[name]])[0]
    ids = lm.encode(text.encode())
    assert lm.vocab.text_bytes(ids) == text.encode()
    assert not set(ids) & lm.vocab.special


@pytest.mark.parametrize("name", ["bpe-qwen2", "uni-llama"])
def test_half_characters_become_byte_tokens(fixture_dirs, name):
    lm = load([fixture_dirs[name]])[0]
    data = "ab東".encode()[:-1]
    assert lm.vocab.text_bytes(lm.encode(data)) == data


def test_model_written_special_text_stays_text(fixture_dirs):
    lm = load([fixture_dirs["bpe-qwen2"]])[0]
    ids = lm.encode(b"<|im_end|>")
    assert not set(ids) & lm.vocab.special and lm.vocab.text_bytes(ids) == b"<|im_end|>"


def test_union_space_matches_bytes_across_families(fixture_dirs):
    a, b = load([fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"]])
    space = union_space([a.vocab, b.vocab])
    for text in ["東", " the", "\n", "é"]:
        ia = [i for i, p in enumerate(a.vocab.pieces) if p == text.encode()]
        ib = [i for i, p in enumerate(b.vocab.pieces) if p == text.encode()]
        if ia and ib:
            assert space.to_shared[0][ia[0]] == space.to_shared[1][ib[0]]
    for lm, table in ((a, space.to_shared[0]), (b, space.to_shared[1])):
        for e in lm.vocab.end_ids:
            assert table[e] == END
    assert len(set(space.pieces)) == len(space.pieces)


def test_alignment_at_step_time_calls_no_tokenizer(fixture_dirs):
    import torch

    from ensemble.align import make_method

    models = load([fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"]])
    methods = [make_method(name, models) for name in ("deepen", "gac", "unite")]

    class Explodes:
        def __getattr__(self, name):
            raise AssertionError(f"tokenizer.{name} called at step time")

    for m in models:
        object.__setattr__(m, "tokenizer", Explodes())
    probs = [torch.softmax(torch.randn(len(m.vocab)), -1) for m in models]
    for method in methods:
        aligned = method.align(probs, torch.ones(2))
        assert torch.allclose(aligned.probs.sum(-1), torch.ones(2))
