"""Corpus seeds draw different blocks (not the same ones reordered), held-out stays put, and the drawn corpus
is pinned by its content hash: another machine's different blocks are a one-line error."""

import pytest

from ensemble.errors import ConfigError
from ensemble.fusellm import corpus
from ensemble.fusellm.__main__ import main
from ensemble.fusellm.corpus import Block, CorpusConfig


def pool(prefix: str, n: int) -> list[Block]:
    return [Block(f"{prefix}/{kind}{i // 3}.txt", i % 3, kind, f"{kind} text {prefix} {i}\n" * 4)
            for kind in ("code", "prose") for i in range(n)]


TRAIN, TEST = pool("train", 30), pool("test", 12)


def keys(blocks):
    return [b.key for b in blocks]


def test_corpus_seeds_draw_disjoint_blocks_and_share_the_held_out_ones():
    cfg = CorpusConfig(block_chars=64, train_blocks=10, held_out_blocks=4)
    a, held_a = corpus.draw(TRAIN, TEST, cfg)
    b, held_b = corpus.draw(TRAIN, TEST, CorpusConfig(64, 10, 4, seed=1))
    assert len(a) == len(b) == 10 and [x.kind for x in a].count("prose") == 5
    assert not set(keys(a)) & set(keys(b))  # different blocks, not a reordering
    assert held_a == held_b
    assert corpus.draw(TRAIN, TEST, cfg) == (a, held_a)  # seeded
    with pytest.raises(ConfigError, match="at seed 6"):  # 30 code blocks hold 6 slices of 5
        corpus.draw(TRAIN, TEST, CorpusConfig(64, 10, 4, seed=6))


def test_the_content_hash_follows_the_text_and_a_mismatch_is_one_line(monkeypatch):
    cfg = CorpusConfig(64, 10, 4)
    train, test = corpus.draw(TRAIN, TEST, cfg)
    digest = corpus.content_hash(train, test)
    edited = [Block(train[0].doc, train[0].index, train[0].kind, train[0].text + "x"), *train[1:]]
    assert corpus.content_hash(edited, test) != digest
    assert corpus.content_hash(test, train) != digest  # which split a block is in counts too
    monkeypatch.setattr(corpus, "all_blocks", lambda block_chars: (TRAIN, TEST))
    assert corpus.sample(CorpusConfig(64, 10, 4, sha256=digest)) == (train, test)
    with pytest.raises(ConfigError) as err:
        corpus.sample(CorpusConfig(64, 10, 4, seed=1, sha256=digest))
    assert "\n" not in str(err.value) and digest[:16] in str(err.value)


def test_the_command_refuses_a_corpus_with_another_hash(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(corpus, "all_blocks", lambda block_chars: (TRAIN, TEST))
    args = ["--work", str(tmp_path), "--train-blocks", "10", "--held-out-blocks", "4", "--block-chars", "64"]
    assert main(["prepare", *args, "--corpus-sha256", "0" * 64]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: corpus content hash") and err.count("\n") == 1
