"""The vocabulary map and DTW on the real tokenizers (Qwen2.5-Coder -> SmolLM2). CI runs these."""

import numpy as np
import pytest

from ensemble.config import MemberSpec
from ensemble.fusellm.seqalign import dtw_path, one_to_one
from ensemble.fusellm.vocabmap import build_map, naive_nearest
from ensemble.models.offline import model_dir

pytestmark = pytest.mark.slow
NAMES = ("qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct")


@pytest.fixture(scope="module")
def pair():
    if not all((model_dir(n) / ".complete").exists() for n in NAMES):
        pytest.skip("offline models not prepared: run bash scripts/install-models.sh")
    from ensemble.models.pool import load_models

    return load_models([MemberSpec(f"offline:{n}", dtype="bf16") for n in NAMES])


def test_map_is_exact_where_bytes_agree_and_matches_the_naive_search(pair):
    qwen, smol = pair
    m = build_map(qwen.vocab, smol.vocab)
    assert m.exact > 30_000 and m.exact + m.mined == len([p for p in qwen.vocab.pieces if p]) + len(
        [i for i in qwen.vocab.end_ids if smol.vocab.end_ids])
    hello = qwen.tokenizer.convert_tokens_to_ids("Ġhello")
    assert smol.vocab.pieces[m.ids[hello]] == b" hello"
    for i in np.random.default_rng(0).choice(np.flatnonzero(m.distance > 0), 20, replace=False):
        assert m.ids[i] == naive_nearest(qwen.vocab.pieces[i], smol.vocab)


def test_dtw_aligns_most_tokens_of_real_code_one_to_one(pair):
    text = "def parse(path):\n    with open(path) as f:\n        return [line.strip() for line in f]\n"
    pieces = [[lm.vocab.pieces[i] for i in lm.tokenizer(text, add_special_tokens=False)["input_ids"]]
              for lm in pair]
    pairs = one_to_one(dtw_path(*pieces))
    same = sum(pieces[0][i] == pieces[1][j] for j, i in pairs.items())
    assert same >= 0.45 * len(pieces[1])  # indentation splits differently; the corpus run saw 65%
