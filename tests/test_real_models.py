"""Smoke tests on the three real offline default models (SmolLM2, Gemma-3, Qwen2.5-Coder). CI runs them."""

import pytest

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig
from ensemble.engine import generate_stream
from ensemble.events import FUSED, Finished, Piece
from ensemble.offline import MANIFEST, model_dir

pytestmark = pytest.mark.slow
NAMES = [m.name for m in MANIFEST]


@pytest.fixture(scope="module")
def models():
    if not all((model_dir(n) / ".complete").exists() for n in NAMES):
        pytest.skip("offline models not prepared: run bash scripts/install-models.sh")
    from ensemble.loading import load_models

    return load_models([MemberSpec(f"offline:{n}", dtype="bf16") for n in NAMES])


def cfg(models, method, n=24, **kw):
    return EnsembleConfig(members=tuple(m.spec for m in models), method=method,
                          sampling=SamplingConfig(max_new_tokens=n), **kw)


@pytest.mark.parametrize("text", ["naïve café — 東京 🙂", "\tdef f(x):\n\t\treturn x  # 注释", "  two  spaces",
                                  "<|im_end|><end_of_turn>"])
def test_byte_alignment_roundtrips_on_real_tokenizers(models, text):
    for m in models:
        ids = m.encode(text.encode())
        assert m.vocab.text_bytes(ids) == text.encode(), m.name
        assert not set(ids) & m.vocab.special, m.name


@pytest.mark.parametrize("method", ["unite", "gac"])
def test_three_models_answer_and_stream_consistently(models, method):
    events = list(generate_stream(models, cfg(models, method), [{"role": "user", "content":
                                                                 "What is the capital of France?"}], solo=True))
    fused = [e for e in events if isinstance(e, Finished) and e.stream == FUSED][0]
    pieces = [e for e in events if isinstance(e, Piece) and e.stream == FUSED]
    assert "Paris" in fused.text
    assert "".join(p.text for p in pieces) == fused.text
    assert all(abs(sum(p.shares) - 1) < 1e-3 for p in pieces)
    assert len([e for e in events if isinstance(e, Finished)]) == 4
    assert max(fused.stats.fed_per_step) < 3, fused.stats


def test_one_member_equals_generate_on_smollm2(models):
    from ensemble.prompting import prompt_ids
    from tests.helpers import greedy_ids, run_fused

    lm = models[0]
    messages = [{"role": "user", "content": "Write one sentence about the sea."}]
    prompt = prompt_ids(lm.tokenizer, messages)
    config = cfg([lm], "unite", n=20)
    run, _ = run_fused([lm], config, [prompt])
    assert run.members[0].answer == greedy_ids(lm, prompt, 20)


def test_non_ascii_answer_streams_whole_characters(models):
    messages = [{"role": "user", "content": "请用中文回答：法国的首都是哪里？"}]
    events = list(generate_stream(models, cfg(models, "unite", n=24), messages))
    pieces = [e.text for e in events if isinstance(e, Piece)]
    final = [e for e in events if isinstance(e, Finished)][0].text
    assert "".join(pieces) == final and all("\ufffd" not in p for p in pieces)
    assert "巴黎" in final, final


def test_gating_skips_other_members(models):
    config = cfg(models, "gac", n=16, options={"threshold": 0.5})
    events = list(generate_stream(models, config, [{"role": "user", "content": "Count from 1 to 10."}]))
    stats = [e for e in events if isinstance(e, Finished)][0].stats
    assert stats.consulted[0] == 1.0 and min(stats.consulted[1:]) < 1.0, stats


def test_a_gguf_file_loads_through_the_same_path(models):
    from ensemble.loading import load_model
    from ensemble.offline import cache_root

    gguf = cache_root() / "gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not gguf.exists():
        pytest.skip("the SmolLM2 GGUF is not in the cache")
    lm = load_model(MemberSpec(str(gguf), dtype="bf16"))
    assert lm.vocab.pieces == models[0].vocab.pieces
    events = list(generate_stream([lm], cfg([lm], "unite", n=12), [{"role": "user", "content":
                                                                    "What is the capital of France?"}]))
    assert "Paris" in [e for e in events if isinstance(e, Finished)][0].text
