"""Token healing: a completion prompt that ends in white space is backed up, and the answer must spell it."""

import pytest
import torch

from ensemble.decode.engine import Ensemble
from ensemble.decode.events import FUSED, Finished
from ensemble.decode.heal import Healing
from ensemble.decode.prompting import prompt_ids, split_trailing_space
from tests.helpers import config, greedy_ids, load, run_fused

PLAIN = "def main(argv):"


def user(text):
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(("text", "chat", "kept", "forced"), [
    ("Q: x\nA: ", False, "Q: x\nA:", b" "),
    ("Q: x\nA:\t ", False, "Q: x\nA:", b"\t "),
    ("Q: x\nA:", False, "Q: x\nA:", b""),
    ("Q: x\nA: ", True, "Q: x\nA: ", b""),  # a chat template ends in the model's own turn marker
    ("Q: x\n", False, "Q: x\n", b""),  # a newline is not folded into the next word
])
def test_split_trailing_space(text, chat, kept, forced):
    messages, owed = split_trailing_space(user(text), chat)
    assert messages[0]["content"] == kept and owed == forced


def test_transcripts_are_not_healed():
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, *user("c ")]
    assert split_trailing_space(messages, chat=False) == (messages, b"")


def test_healing_mask():
    mask = Healing([b"", b" ", b"  x", b" y", b"x", b"\t"]).allowed(b"  ")
    assert mask.tolist() == [False, True, True, False, False, False]


def final_text(ensemble, text):
    events = list(ensemble.stream(user(text)))
    return next(e.text for e in events if isinstance(e, Finished) and e.stream == FUSED)


@pytest.mark.parametrize("name", ["bpe-qwen2", "uni-gemma3"])
def test_healed_answer_is_the_best_token_that_spells_the_space(fixture_dirs, name):
    """fp32: the first token is the argmax over tokens starting with " " after the backed-up prompt, then greedy."""
    models = load([fixture_dirs[name]])
    lm = models[0]
    cfg = config([fixture_dirs[name]], "average", max_new_tokens=10, prompt_format="plain")
    prompt = prompt_ids(lm.tokenizer, user(PLAIN), chat=False)
    with torch.inference_mode():
        logits = lm.model(torch.tensor([prompt])).logits[0, -1]
    starts = torch.tensor([p.startswith(b" ") for p in lm.vocab.pieces])
    first = int(logits.masked_fill(~starts[: len(logits)], float("-inf")).argmax())
    rest = greedy_ids(lm, prompt + [first], 9)
    expected = lm.vocab.text_bytes([first, *rest])[1:].decode(errors="ignore")
    assert final_text(Ensemble(models, cfg), PLAIN + " ") == expected


def test_no_candidate_spells_the_space_falls_back_to_the_prompt_as_typed(fixture_dirs, monkeypatch):
    """When no candidate token spells the owed bytes, they are written as the prompt had them."""
    path = fixture_dirs["bpe-qwen2"]
    models = load([path])
    cfg = config([path], "unite", max_new_tokens=10, prompt_format="plain")
    typed = prompt_ids(models[0].tokenizer, user(PLAIN + " "), chat=False)
    assert typed == prompt_ids(models[0].tokenizer, user(PLAIN), chat=False) + models[0].encode(b" ")
    as_typed, _ = run_fused(models, cfg, [typed])
    monkeypatch.setattr(Healing, "allowed", lambda self, rest: torch.zeros(len(self.pieces), dtype=torch.bool))
    assert final_text(Ensemble(models, cfg), PLAIN + " ") == as_typed.text.text
