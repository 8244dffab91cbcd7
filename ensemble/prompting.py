"""Conversation -> per-member prompt ids, and answer bytes -> member ids.

Each member renders the conversation with its own chat template. A member without one (Gemma-3-270M is a
base model) gets a plain completion rendering, tokenized the way its tokenizer does by default, so BOS is
added exactly when that tokenizer adds it. The fused answer is appended to each member's assistant turn as
*continuation* ids: no BOS, no SentencePiece dummy-prefix space, and special-token text written by a
model stays text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from .errors import PromptError
from .vocab import ByteVocab

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}
_RAW_BYTES = re.compile("([\udc80-\udcff]+)")


def check_messages(messages: Sequence[Message]) -> list[Message]:
    if not messages or messages[-1].get("role") != "user":
        raise PromptError("the conversation must end with a user message")
    if not str(messages[-1].get("content", "")).strip():
        raise PromptError("the prompt is empty: type a question or some text to continue")
    return [{"role": m["role"], "content": str(m["content"])} for m in messages]


def render_plain(messages: Sequence[Message]) -> str:
    """One user turn is continued verbatim; a longer conversation becomes a plain transcript."""
    if len(messages) == 1:
        return messages[0]["content"]
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def prompt_ids(tokenizer, messages: Sequence[Message], chat: bool = True) -> list[int]:
    if chat and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(render_plain(messages))["input_ids"])


PROBES = ("ab c", " x", "東京 🙂", "\tx  y")


def continuation_prefix(tokenizer, vocab: ByteVocab) -> str:
    """"" if plain encoding round-trips mid-answer text. Otherwise "\n", encoded before the text and
    then dropped, which hides a SentencePiece dummy-prefix space (Llama-2 "legacy", Gemma)."""
    for prefix in ("", "\n"):
        if all(vocab.text_bytes(encode_text(tokenizer, vocab, [p], prefix)[0]) == p.encode() for p in PROBES):
            return prefix
    return ""


def encode_text(tokenizer, vocab: ByteVocab, texts: list[str], prefix: str) -> list[list[int]]:
    """Continuation ids of each text, batched in Rust. Special-token text written by a model stays text."""
    batch = tokenizer([prefix + t for t in texts], add_special_tokens=False, split_special_tokens=True)["input_ids"]
    if not prefix:
        return [list(ids) for ids in batch]
    skip = len(vocab.text_bytes(encode_text(tokenizer, vocab, [prefix], "")[0]))
    out = []
    for text, ids in zip(texts, batch, strict=True):
        k, n = 0, 0
        while n < skip and k < len(ids):
            n, k = n + len(vocab.pieces[ids[k]]), k + 1
        out.append(list(ids[k:]) if n == skip else encode_text(tokenizer, vocab, [text], "")[0])
    return out


def continuation_encoder(tokenizer, vocab: ByteVocab) -> Callable[[bytes], list[int]]:
    """bytes -> ids whose bytes equal the input. Bytes that are not valid UTF-8 (half a character)
    become single-byte tokens; a member with no token for such a byte skips it."""
    prefix = continuation_prefix(tokenizer, vocab)

    def encode(data: bytes) -> list[int]:
        ids: list[int] = []
        for seg in _RAW_BYTES.split(data.decode("utf-8", "surrogateescape")):
            if seg and seg[0] >= "\udc80":
                ids += [vocab.byte_ids[ord(c) - 0xDC00] for c in seg if vocab.byte_ids[ord(c) - 0xDC00] >= 0]
            elif seg:
                ids += encode_text(tokenizer, vocab, [seg], prefix)[0]
        return ids

    return encode
