"""Every token id of a tokenizer -> its exact byte string.

Byte-level BPE (GPT-2, Llama-3, Qwen, SmolLM2) stores bytes through the GPT-2 byte-to-unicode table
(`Ġ` = b" ", `Ċ` = b"\\n", `Ã©` = b"\\xc3\\xa9"). SentencePiece-style vocabularies (Llama-2, Gemma) mark a
space with `▁` and spell raw bytes as `<0xNN>` byte-fallback tokens. Decoding both to bytes is what lets
members with different tokenizers agree on non-ASCII text; the published DeePEn/UniTE/GaC code compares
token *strings* and silently mis-aligns it (anchors-methods.md §1–3).

Special tokens (chat markers, BOS, padding) have no bytes. Each member's end-of-turn tokens are listed
apart, so the shared space can map all of them to one "end".
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache

END_MARKERS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|endoftext|>", "</s>", "<eos>",
               "<|end_of_text|>")
_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@dataclass(frozen=True)
class ByteVocab:
    """pieces[i] is token i's bytes (b"" for special tokens); end_ids are the member's end-of-turn ids."""

    pieces: tuple[bytes, ...]
    special: frozenset[int]
    end_ids: tuple[int, ...]
    byte_ids: tuple[int, ...]  # byte_ids[b] = a token spelling the single byte b, or -1
    digest: str  # hash of the tokenizer, keys the on-disk alignment caches

    def __len__(self) -> int:
        return len(self.pieces)

    def text_bytes(self, ids) -> bytes:
        return b"".join(self.pieces[i] for i in ids)


@cache
def gpt2_byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256 + n."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, n = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + n)] = b
            n += 1
    return chars


def decoder_kind(tokenizer) -> str:
    """'bytelevel', 'metaspace' or 'plain', read from the fast tokenizer's decoder spec."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = backend.decoder.__getstate__().decode() if backend is not None and backend.decoder else ""
    if '"ByteLevel"' in spec:
        return "bytelevel"
    if "▁" in spec or '"ByteFallback"' in spec or '"Metaspace"' in spec:
        return "metaspace"
    return "plain"


def piece_bytes(token: str, kind: str) -> bytes:
    if kind == "bytelevel":
        table = gpt2_byte_decoder()
        if all(c in table for c in token):
            return bytes(table[c] for c in token)
        return token.encode()
    if kind == "metaspace":
        m = _BYTE_FALLBACK.fullmatch(token)
        if m:
            return bytes([int(m.group(1), 16)])
        return token.replace("▁", " ").encode()
    return token.encode()


def tokenizer_digest(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    blob = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    extra = json.dumps([tokenizer.eos_token, tokenizer.bos_token, sorted(tokenizer.all_special_tokens)])
    return hashlib.sha256((blob + extra).encode()).hexdigest()[:16]


def build_byte_vocab(tokenizer, model_vocab_size: int = 0, extra_end_ids=()) -> ByteVocab:
    """Vocab ids beyond the tokenizer (padded lm_heads, e.g. Qwen's 151,936 rows) count as special."""
    kind = decoder_kind(tokenizer)
    vocab = tokenizer.get_vocab()
    size = max(model_vocab_size, max(vocab.values()) + 1)
    pieces = [b""] * size
    added = getattr(tokenizer, "added_tokens_decoder", {})
    special = {i for i, t in added.items() if getattr(t, "special", True)}
    special |= set(tokenizer.all_special_ids) | (set(range(size)) - set(vocab.values()))
    byte_ids = [-1] * 256
    for token, i in vocab.items():
        if i in special:
            continue
        pieces[i] = token.encode() if i in added else piece_bytes(token, kind)
        # a single byte prefers its ordinary token over a `<0xNN>` fallback spelling
        if len(pieces[i]) == 1 and (byte_ids[pieces[i][0]] == -1 or not _BYTE_FALLBACK.fullmatch(token)):
            byte_ids[pieces[i][0]] = i
    end_ids = {i for i in (tokenizer.eos_token_id, *extra_end_ids) if i is not None}
    # Only special tokens end a turn: Gemma-3's id 212 `</s>` is an added but non-special HTML tag, and
    # an answer writing strikethrough HTML must go on.
    end_ids |= {vocab[m] for m in END_MARKERS if vocab.get(m) in special}
    for i in end_ids:
        pieces[i] = b""
    return ByteVocab(tuple(pieces), frozenset(special | end_ids), tuple(sorted(end_ids)), tuple(byte_ids),
                     tokenizer_digest(tokenizer))
