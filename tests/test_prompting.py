"""Each member renders the conversation its own way; answers continue it as plain continuation ids."""

from ensemble.decode.prompting import prompt_ids, render_plain
from tests.helpers import load

TURNS = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
         {"role": "user", "content": "Name a colour."}]


def test_chat_template_member_gets_chatml(fixture_dirs):
    lm = load([fixture_dirs["bpe-qwen2"]])[0]
    ids = prompt_ids(lm.tokenizer, TURNS)
    text = lm.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>user\nHi<|im_end|>") and text.endswith("<|im_start|>assistant\n")
    assert ids.count(lm.tokenizer.convert_tokens_to_ids("<|im_start|>")) == 4


def test_member_without_template_gets_plain_text_with_its_own_bos(fixture_dirs):
    lm = load([fixture_dirs["uni-llama"]])[0]
    one = prompt_ids(lm.tokenizer, TURNS[-1:], chat=False)
    assert one[0] == lm.tokenizer.bos_token_id
    assert lm.vocab.text_bytes(one[1:]) == b" Name a colour."  # the tokenizer's own dummy prefix, as it encodes
    many = prompt_ids(lm.tokenizer, TURNS)
    assert lm.tokenizer.decode(many, skip_special_tokens=True).strip().endswith("Assistant:")


def test_plain_format_ignores_templates(fixture_dirs):
    lm = load([fixture_dirs["bpe-qwen2"]])[0]
    ids = prompt_ids(lm.tokenizer, TURNS[-1:], chat=False)
    assert lm.vocab.text_bytes(ids) == b"Name a colour."


def test_render_plain():
    assert render_plain(TURNS[-1:]) == "Name a colour."
    assert render_plain(TURNS) == "User: Hi\nAssistant: Hello!\nUser: Name a colour.\nAssistant:"
    assert render_plain(TURNS[-1:], transcript=True) == "User: Name a colour.\nAssistant:"


def test_chat_without_a_template_is_a_transcript(fixture_dirs):
    # A base model given the bare question continues it (repeats it) instead of answering.
    lm = load([fixture_dirs["uni-llama"]])[0]
    ids = prompt_ids(lm.tokenizer, TURNS[-1:], chat=True)
    assert ids[0] == lm.tokenizer.bos_token_id
    assert lm.vocab.text_bytes(ids[1:]) == b" User: Name a colour.\nAssistant:"


def test_terminal_chat_runs_two_turns(fixture_dirs, monkeypatch, capsys):
    import io

    from ensemble.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("def f(x):\n/reset\nclass A:\n"))
    code = main(["chat", "--model", str(fixture_dirs["bpe-qwen2"]), "--model", str(fixture_dirs["uni-llama"]),
                 "--max-new-tokens", "6", "--dtype", "fp32", "--solo"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("ensemble> ") == 2 and out.count("--- uni-llama alone ---") == 2


def test_continuation_of_characters_above_the_surrogate_escapes(fixture_dirs):
    # Characters above U+DC80 (fullwidth forms, emoji) are text, not raw bytes; they used to raise IndexError.
    for lm in load([fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"]]):
        for data in ("🙂".encode(), "a🙂".encode(), "，x".encode(), "é".encode()[:1]):
            assert lm.vocab.text_bytes(lm.encode(data)) == data


NO_SYSTEM_TEMPLATE = (  # like Gemma's and Mistral's: no system role
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SYSTEM = [{"role": "system", "content": "Answer in French."}]


def test_system_prompt_reaches_every_kind_of_member(fixture_dirs):
    chatml, plain = load([fixture_dirs["bpe-qwen2"], fixture_dirs["uni-llama"]])
    text = chatml.tokenizer.decode(prompt_ids(chatml.tokenizer, SYSTEM + TURNS))
    assert text.startswith("<|im_start|>system\nAnswer in French.<|im_end|>\n<|im_start|>user\nHi<|im_end|>")
    ids = prompt_ids(plain.tokenizer, SYSTEM + TURNS)  # no template: a transcript that starts with it
    text = plain.tokenizer.decode(ids, skip_special_tokens=True).strip()
    assert text.startswith("System: Answer in French.\nUser: Hi")


def test_template_without_a_system_role_gets_it_in_the_first_user_turn(fixture_dirs):
    lm = load([fixture_dirs["bpe-qwen2"]])[0]
    original, lm.tokenizer.chat_template = lm.tokenizer.chat_template, NO_SYSTEM_TEMPLATE
    try:
        text = lm.tokenizer.decode(prompt_ids(lm.tokenizer, SYSTEM + TURNS))
        assert text.startswith("<|im_start|>user\nAnswer in French.\n\nHi<|im_end|>") and "system" not in text
        assert lm.tokenizer.decode(prompt_ids(lm.tokenizer, TURNS)).startswith("<|im_start|>user\nHi<|im_end|>")
    finally:
        lm.tokenizer.chat_template = original
