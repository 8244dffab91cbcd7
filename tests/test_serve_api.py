"""`python -m ensemble serve` through the real OpenAI client, on tiny fixture models served on loopback:
models, chat and text completions (whole and streamed), attribution, logprobs, sampling settings, and each
member alone against the CLI's solo answer."""

from __future__ import annotations

import json
import math
import re

import openai
import pytest

from ensemble import cli
from tests.serve_helpers import serving, tiny_preset

PROMPT = "Write a haiku about the sea."


@pytest.fixture(scope="module")
def preset(fixture_dirs, tmp_path_factory):
    return tiny_preset(tmp_path_factory.mktemp("serve"), fixture_dirs)


@pytest.fixture(scope="module")
def server(preset):
    with serving(preset) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)


def chat(client, model="tiny", prompt=PROMPT, **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}], **kw)


def assert_attribution(extension: dict, names: set[str]):
    shares = extension["shares"]
    assert set(shares) == names
    assert math.isclose(sum(shares.values()), 1.0, abs_tol=1e-4), shares
    assert extension["driver"] == max(shares, key=shares.get)


def test_models_lists_the_ensemble_and_each_member(client, server):
    cards = {m.id: m for m in client.models.list().data}
    assert list(cards) == ["tiny", "bpe-qwen2", "uni-llama"]
    assert cards["tiny"].ensemble == {"members": ["bpe-qwen2", "uni-llama"], "method": "unite"}
    assert cards["uni-llama"].ensemble["members"] == ["uni-llama"]
    assert client.models.retrieve("bpe-qwen2").id == "bpe-qwen2"


def test_streamed_chat_equals_the_whole_answer_and_every_chunk_is_attributed(client):
    whole = chat(client, max_tokens=12)
    chunks = list(chat(client, max_tokens=12, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts and "".join(texts) == whole.choices[0].message.content
    for c in chunks:
        if c.choices and c.choices[0].delta.content:
            assert_attribution(c.ensemble, {"bpe-qwen2", "uni-llama"})
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert whole.usage.prompt_tokens > 0 and whole.usage.total_tokens == 12 + whole.usage.prompt_tokens
    assert whole.choices[0].finish_reason == "length"  # 12 tokens, no end: cut by max_tokens
    summary = whole.ensemble
    assert_attribution(summary, {"bpe-qwen2", "uni-llama"})
    assert "".join(p["text"] for p in summary["pieces"]) == whole.choices[0].message.content
    for piece in summary["pieces"]:
        assert_attribution(piece, {"bpe-qwen2", "uni-llama"})


def test_each_member_alone_equals_the_cli_solo_answer(client, preset, capsys):
    assert cli.main(["generate", "--preset", str(preset), "--prompt", PROMPT, "--solo", "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert chat(client).choices[0].message.content == expected["text"]
    for solo in expected["solo"]:
        answer = chat(client, model=solo["member"])
        assert answer.choices[0].message.content == solo["text"]
        assert answer.ensemble["shares"] == {solo["member"]: 1.0}
    assert len({s["text"] for s in expected["solo"]} | {expected["text"]}) > 1  # the comparison can tell them apart


def test_text_completion_continues_the_prompt_verbatim_like_the_cli_plain_mode(client, fixture_dirs, capsys):
    prompt = "def fibonacci(n):"
    assert cli.main(["generate", "--model", str(fixture_dirs["uni-llama"]), "--dtype", "fp32", "--plain",
                     "--prompt", prompt, "--max-new-tokens", "10", "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)["text"]
    whole = client.completions.create(model="uni-llama", prompt=prompt, max_tokens=10)
    assert whole.choices[0].text == expected
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="uni-llama", prompt=prompt, max_tokens=10, stream=True) if c.choices)
    assert streamed == expected


def test_greedy_logprobs_are_the_fused_argmax_and_spell_the_answer(client):
    answer = chat(client, max_tokens=12, logprobs=True, top_logprobs=5)
    content = answer.choices[0].logprobs.content
    assert len(content) >= 10  # every chosen token but the end of the answer
    spelled = b"".join(bytes(t.bytes) for t in content).decode("utf-8", "ignore")
    assert spelled == answer.choices[0].message.content
    for t in content:
        tops = [x.logprob for x in t.top_logprobs]
        assert len(tops) == 5 and tops == sorted(tops, reverse=True)
        assert t.logprob == tops[0] <= 0  # greedy: the chosen token is the fused distribution's most likely
        assert sum(math.exp(x) for x in tops) <= 1 + 1e-5


def test_sampled_logprobs_follow_the_sampled_tokens(client):
    kw = {"max_tokens": 12, "temperature": 1.5, "seed": 7, "logprobs": True, "top_logprobs": 3}
    first, again = chat(client, **kw), chat(client, **kw)
    assert first.choices[0].message.content == again.choices[0].message.content  # same seed, same answer
    content = first.choices[0].logprobs.content
    assert b"".join(bytes(t.bytes) for t in content).decode("utf-8", "ignore") == first.choices[0].message.content
    assert any(t.logprob < t.top_logprobs[0].logprob for t in content)  # it did sample below the top
    greedy = chat(client, max_tokens=12).choices[0].message.content
    assert first.choices[0].message.content != greedy


def test_completion_logprobs_in_the_legacy_shape(client):
    answer = client.completions.create(model="tiny", prompt="The sea is", max_tokens=8, logprobs=2)
    lp = answer.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) >= 7
    assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[0] == 0
    assert all(len(top) <= 2 and max(top.values()) >= logprob - 1e-6
               for top, logprob in zip(lp.top_logprobs, lp.token_logprobs, strict=True))


def test_stop_strings_end_the_answer_before_them(client):
    full = chat(client, max_tokens=16).choices[0].message.content
    stop = full[5:8]
    assert stop.strip(), full
    cut = chat(client, max_tokens=16, stop=[stop])
    assert cut.choices[0].message.content == full[: full.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_a_completion_prompt_ending_in_a_space_is_healed_and_its_logprobs_spell_the_text(client):
    """The trailing space is owed by the answer (decode/heal.py): the recorded tokens mirror that and never
    report it, so they still spell the text, and the text equals the unhealed prompt's answer minus its space."""
    healed = client.completions.create(model="tiny", prompt="The sea is ", max_tokens=8, logprobs=3)
    lp = healed.choices[0].logprobs
    spelled = re.sub(r"\\x[0-9a-f]{2}", "", "".join(lp.tokens))  # bytes of a half character are written \xNN
    assert spelled == healed.choices[0].text and not lp.tokens[0].startswith(" ")
    assert all(max(top.values()) >= logprob - 1e-6 for top, logprob in zip(lp.top_logprobs, lp.token_logprobs,
                                                                          strict=True))
