"""Conversation -> per-member prompt ids, and answer bytes -> member ids.

Each member renders the conversation with its own chat template. A member without one (Gemma-3-270M is a
base model) gets a plain completion rendering, tokenized the way its tokenizer does by default, so BOS is
added exactly when that tokenizer adds it. The fused answer is appended to each member's assistant turn as
*continuation* ids: no BOS, no SentencePiece dummy-prefix space, and special-token text written by a
model stays text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tokenizers import Tokenizer

from ..align.vocab import ByteVocab
from ..errors import PromptError

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}
_RAW_BYTES = re.compile("([\udc80-\udcff]+)")
_WORDS = re.compile(r"\s*\S+|\s+")  # a word with the white space before it, or trailing white space


def check_messages(messages: Sequence[Message]) -> list[Message]:
    if not messages or messages[-1].get("role") != "user":
        raise PromptError("the conversation must end with a user message")
    if not str(messages[-1].get("content", "")).strip():
        raise PromptError("the prompt is empty: type a question or some text to continue")
    return [{"role": m["role"], "content": str(m["content"])} for m in messages]


def render_plain(messages: Sequence[Message], transcript: bool = False) -> str:
    """A `User:`/`Assistant:` transcript ending in `Assistant:`. Without `transcript`, one user turn is
    continued verbatim (few-shot completion prompts); a chat always gets the transcript, else a base model
    continues the user's text instead of answering it."""
    if len(messages) == 1 and not transcript:
        return messages[0]["content"]
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def split_trailing_space(messages: Sequence[Message], chat: bool) -> tuple[list[Message], bytes]:
    """A completion prompt (plain format, one user turn continued verbatim) that ends in spaces or tabs: the
    prompt without them, and the bytes the answer must start with (token healing, decode/heal.py). Chat
    templates and transcripts end in the model's own turn marker, so they are left as they are."""
    if chat or len(messages) != 1:
        return list(messages), b""
    text = messages[0]["content"]
    kept = text.rstrip(" \t")
    if kept == text or not kept.strip():
        return list(messages), b""
    return [{**messages[0], "content": kept}], text[len(kept):].encode()


def fold_system(messages: Sequence[Message]) -> list[Message]:
    """System messages joined into the first user message (blank line between), for a chat template that has no
    system role (Gemma's, Mistral's raise "System role not supported")."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if system and rest:
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
    return rest


def prompt_ids(tokenizer, messages: Sequence[Message], chat: bool = True) -> list[int]:
    if chat and getattr(tokenizer, "chat_template", None):
        try:
            text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        except Exception:  # jinja2's TemplateError from raise_exception(); a second failure is raised as it is
            if not any(m["role"] == "system" for m in messages):
                raise
            text = tokenizer.apply_chat_template(fold_system(messages), add_generation_prompt=True, tokenize=False)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(render_plain(messages, transcript=chat))["input_ids"])


PROBES = ("ab c", " x", "東京 🙂", "\tx  y")


class Continuation:
    """Answer bytes -> member ids: no BOS, no SentencePiece dummy-prefix space, and special-token text
    written by a model stays text. Uses a private copy of the Rust tokenizer with special-token splitting
    switched on once, so concurrent callers never toggle shared state."""

    def __init__(self, tokenizer, vocab: ByteVocab):
        self.vocab = vocab
        self.backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self.backend.encode_special_tokens = True
        self.prefix, self.skip = "", 0
        if not self._round_trips():
            self.prefix = "\n"  # encoded first and dropped, hiding a dummy-prefix space
            self.skip = len(vocab.text_bytes(self.backend.encode(self.prefix, add_special_tokens=False).ids))
            if not self._round_trips():
                self.prefix, self.skip = "", 0

    def _round_trips(self) -> bool:
        return all(self.vocab.text_bytes(self.texts([p])[0]) == p.encode() for p in PROBES)

    def texts(self, texts: list[str]) -> list[list[int]]:
        """Continuation ids of each text, batched in Rust."""
        batch = [e.ids for e in self.backend.encode_batch_fast([self.prefix + t for t in texts],
                                                                 add_special_tokens=False)]
        if not self.prefix:
            return batch
        out = []
        for text, ids in zip(texts, batch, strict=True):
            k, n = 0, 0
            while n < self.skip and k < len(ids):
                n, k = n + len(self.vocab.pieces[ids[k]]), k + 1
            out.append(ids[k:] if n == self.skip else self.backend.encode(text, add_special_tokens=False).ids)
        return out

    def __call__(self, data: bytes) -> list[int]:
        """bytes -> ids whose bytes equal the input. Bytes that are not valid UTF-8 (half a character)
        become single-byte tokens; a member with no token for such a byte skips it."""
        ids: list[int] = []
        for seg in _RAW_BYTES.split(data.decode("utf-8", "surrogateescape")):
            if seg and "\udc80" <= seg[0] <= "\udcff":  # a run of raw bytes (surrogateescape), not a char above it
                ids += self.raw(seg.encode("utf-8", "surrogateescape"))
            elif seg:
                ids += self.exact(seg)
        return ids

    def raw(self, data: bytes) -> list[int]:
        return [self.vocab.byte_ids[b] for b in data if self.vocab.byte_ids[b] >= 0]

    def exact(self, text: str) -> list[int]:
        """Ids spelling exactly `text`'s bytes. A tokenizer's normalizer may rewrite text (Qwen2.5's NFC
        turns "e\u0301" into "é", Gemma's turns "\u2581" into a space): then each word that does not
        survive encoding is spelled with byte tokens, so the member reads what was emitted and re-sync
        stays incremental."""
        ids = self.texts([text])[0]
        if self.vocab.text_bytes(ids) == text.encode():
            return ids
        words = _WORDS.findall(text)
        out: list[int] = []
        for word, wids in zip(words, self.texts(words), strict=True):
            out += wids if self.vocab.text_bytes(wids) == word.encode() else self.raw(word.encode())
        return out
