"""Per-prompt skill, read from the prompt's own worked examples (issue 14).

A few-shot prompt shows its task: earlier lines end in a cue (`A: `, `Answer:`, `Plausible/implausible? `)
followed by an answer, and the prompt ends with the same cue, open. How well a member predicts those
demonstrated answers, in context, estimates how well it does *this* task: an in-context dev set that a person
chatting never has to supply. Whole-prompt fluency does not: a base model predicts question text best and can
answer worst. Each member's score is its bits per byte of the same answer bytes, so tokenizers compare.

Cost: the scoring forward is the prefill. Its keys/values go to the member's prompt cache (kvcache.py), so
the first decode step feeds one token; only the answer positions get logits, at most `MAX_BYTES` of answer
bytes (never `[prompt_len, vocab]`), and their log-softmax runs `CHUNK` rows at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache

MAX_BYTES = 256  # the last demonstrated answers, up to this many bytes, are scored
CHUNK = 16  # rows of [k, V] logits turned into log-probabilities at once


def demo_spans(text: bytes) -> list[tuple[int, int]]:
    """Byte spans of the demonstrated answers in a completion prompt; [] when it shows none.

    The cue is the prompt's open last line (or, when the prompt ends in a newline, its last full line). Each
    earlier line that starts with the same cue is a demonstration. Its answer runs from the cue to the next
    blank line when one comes before the next cue (a worked solution keeps all its lines), else to the end
    of its line. Only the last `MAX_BYTES` of answers are kept."""
    end = len(text) - 1 if text.endswith(b"\n") else len(text)
    cue = text[text.rfind(b"\n", 0, end) + 1:]
    if not cue.strip() or len(cue) > 200:
        return []
    starts = [at for at in range(len(text) - len(cue)) if text.startswith(cue, at) and text[at - 1:at] in (b"", b"\n")]
    spans = []
    for at, nxt in zip(starts, starts[1:] + [len(text) - len(cue)], strict=False):
        s = at + len(cue)
        blank, line = text.find(b"\n\n", s, nxt), text.find(b"\n", s, nxt)
        spans.append((s, blank if blank >= 0 else line if line >= 0 else nxt))
    kept, total = [], 0
    for s, e in reversed([(s, e) for s, e in spans if e > s]):
        if total + e - s > MAX_BYTES:
            break
        kept.insert(0, (s, e))
        total += e - s
    return kept


def answer_positions(pieces: Sequence[bytes], ids: Sequence[int], text: bytes,
                     spans: Sequence[tuple[int, int]]) -> list[int] | None:
    """Positions j in `ids` whose token overlaps a span of `text` (each predicted from position j - 1); None
    when this member's prompt does not spell `text` (a normaliser rewrote it)."""
    spelled = [pieces[i] for i in ids]
    offset = b"".join(spelled).rfind(text)
    if offset < 0:
        return None
    ends, total = [], 0
    for p in spelled:
        total += len(p)
        ends.append(total)
    return [j for j in range(1, len(ids)) if spelled[j] and any(
        ends[j] > offset + s and ends[j] - len(spelled[j]) < offset + e for s, e in spans)]


def score_prompt(lm, ids: list[int], positions: list[int]) -> float:
    """Prefill `ids` (stored as `lm`'s prompt cache, for the first decode step to reuse) and return the bits of
    the tokens at `positions`."""
    device = lm.device
    keep = torch.tensor([p - 1 for p in positions], device=device)
    with torch.inference_mode():
        cache = DynamicCache()
        logits = lm.model(input_ids=torch.tensor([ids], device=device), past_key_values=cache, use_cache=True,
                          logits_to_keep=keep).logits[0]  # [k, V]
        targets = torch.tensor([ids[p] for p in positions], device=device)
        nats = sum(float(-logits[c:c + CHUNK].float().log_softmax(-1).gather(-1, targets[c:c + CHUNK, None]).sum())
                   for c in range(0, len(positions), CHUNK))
    lm.prompts.store(ids, cache)
    return nats / math.log(2)


@dataclass(frozen=True)
class PromptPlan:
    """One answer's members, decided from its prompt: weights (0 = dropped), main member, and why."""

    weights: tuple[float, ...]
    primary: int
    dropped: tuple[int, ...]
    bits_per_byte: tuple[float | None, ...]  # on the demonstrated answers; None: not scored


def decide(bits_per_byte: Sequence[float | None], weights: Sequence[float], primary: int,
           gap: float) -> PromptPlan:
    """The main member is the one that predicts the demonstrations best; a member whose bits per byte exceed
    the best's by more than `gap` (relative) sits this answer out (UniTE's "determine, then ensemble": a
    member far behind the others drags the vote). Unscored members keep their place and weight."""
    scored = [i for i, b in enumerate(bits_per_byte) if b is not None]
    if len(scored) < 2:
        return PromptPlan(tuple(weights), primary, (), tuple(bits_per_byte))
    best = min(scored, key=lambda i: bits_per_byte[i])
    dropped = tuple(i for i in scored if bits_per_byte[i] > (1 + gap) * bits_per_byte[best])
    return PromptPlan(tuple(0.0 if i in dropped else w for i, w in enumerate(weights)), best, dropped,
                      tuple(bits_per_byte))


def demo_bits_per_byte(models: Sequence, text: str, prompts: Sequence[list[int]],
                       memo: dict) -> list[float | None]:
    """Each local member's bits per byte on the demonstrated answers of `text` (the last user message);
    None for served members and members whose prompt does not spell the text. `memo` keeps scores of
    prompts already scored (a few-shot prefix reused over many questions is scored once)."""
    raw = text.encode()
    spans = demo_spans(raw)
    if not spans:
        return [None] * len(models)
    size = sum(e - s for s, e in spans)
    out: list[float | None] = []
    for i, (lm, ids) in enumerate(zip(models, prompts, strict=True)):
        positions = answer_positions(lm.vocab.pieces, ids, raw, spans) if hasattr(lm, "prompts") else None
        if not positions:
            out.append(None)
            continue
        key = (i, tuple(ids[: positions[-1] + 1]), tuple(positions))
        if key not in memo:
            if len(memo) > 64:
                memo.clear()
            memo[key] = score_prompt(lm, ids, positions)
        out.append(memo[key] / size)
    return out
