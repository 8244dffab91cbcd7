"""Deltas -> OpenAI's chat / text-completion responses and stream chunks, with the `ensemble` extension."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

from .answer import Delta
from .logprobs import Choice, token_text
from .schemas import (
    AssistantMessage,
    Attribution,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatLogprobs,
    ChunkChoice,
    ChunkDelta,
    Completion,
    CompletionChoice,
    CompletionLogprobs,
    PieceOut,
    Summary,
    TokenLogprob,
    TopLogprob,
    Usage,
)


class Shape:
    """One answer's response (chat or text completion) built from its Deltas, whole or chunk by chunk."""

    def __init__(self, chat: bool, model: str, names: Sequence[str], top_logprobs: int | None,
                 include_usage: bool = False):
        self.chat, self.model, self.names = chat, model, tuple(names)
        self.top, self.include_usage = top_logprobs, include_usage
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.written = b""  # the answer's bytes so far, for text_offset
        self.started = False

    def chunks(self, d: Delta) -> list[dict]:
        """The stream chunks for one Delta: chat opens with the assistant role; usage follows the last."""
        first, self.started = not self.started, True
        out = []
        if d.text or d.failed or d.steps or d.finish or (first and self.chat):
            out.append(self.chunk(d, first))
        if d.finish and self.include_usage:
            kind = ChatCompletionChunk if self.chat else Completion
            out.append(kind(id=self.id, created=self.created, model=self.model, choices=[],
                            usage=usage(d.prompt_tokens, d.completion_tokens)).model_dump(exclude_none=True))
        return out

    def chunk(self, d: Delta, first: bool) -> dict:
        head = {"id": self.id, "created": self.created, "model": self.model, "ensemble": self.attribution(d)}
        if self.chat:
            delta = ChunkDelta(role="assistant" if first else None, content=d.text if d.text or first else None)
            choice = ChunkChoice(delta=delta, logprobs=self.chat_logprobs(d.steps), finish_reason=d.finish)
            return ChatCompletionChunk(choices=[choice], **head).model_dump(exclude_none=True)
        choice = CompletionChoice(text=d.text, logprobs=self.text_logprobs(d.steps), finish_reason=d.finish)
        return Completion(choices=[choice], **head).model_dump(exclude_none=True)

    def response(self, deltas: Sequence[Delta]) -> dict:
        text = "".join(d.text for d in deltas)
        last = deltas[-1]
        finish = last.finish or "length"  # no last Delta: the client left before the end
        steps = tuple(c for d in deltas for c in d.steps)
        head = {"id": self.id, "created": self.created, "model": self.model, "ensemble": self.summary(deltas),
                "usage": usage(deltas[0].prompt_tokens, last.completion_tokens)}
        if self.chat:
            choice = ChatChoice(message=AssistantMessage(content=text), logprobs=self.chat_logprobs(steps),
                                finish_reason=finish)
            return ChatCompletion(choices=[choice], **head).model_dump(exclude_none=True)
        choice = CompletionChoice(text=text, logprobs=self.text_logprobs(steps), finish_reason=finish)
        return Completion(choices=[choice], **head).model_dump(exclude_none=True)

    def shares(self, shares: Sequence[float]) -> dict[str, float]:
        return dict(zip(self.names, shares, strict=True))

    def attribution(self, d: Delta) -> Attribution | None:
        failed = {self.names[i]: error for i, error in d.failed} or None
        if not d.shares and not failed:
            return None
        if not d.shares:
            return Attribution(failed=failed)
        return Attribution(driver=self.names[d.driver], shares=self.shares(d.shares), failed=failed)

    def summary(self, deltas: Sequence[Delta]) -> Summary:
        """Every piece with its driver and shares; overall shares are the mean over pieces."""
        pieces = [d for d in deltas if d.shares]
        failed = {self.names[i]: error for d in deltas for i, error in d.failed} or None
        out = [PieceOut(text=d.text, driver=self.names[d.driver], shares=self.shares(d.shares)) for d in pieces]
        if not pieces:
            return Summary(pieces=out, failed=failed)
        mean = [sum(d.shares[i] for d in pieces) / len(pieces) for i in range(len(self.names))]
        driver = max(range(len(mean)), key=mean.__getitem__)
        return Summary(driver=self.names[driver], shares=self.shares([round(s, 6) for s in mean]), pieces=out,
                       failed=failed)

    def chat_logprobs(self, steps: Sequence[Choice]) -> ChatLogprobs | None:
        if self.top is None:
            return None
        return ChatLogprobs(content=[
            TokenLogprob(token=token_text(c.token), logprob=c.logprob, bytes=list(c.token),
                         top_logprobs=[top_entry(t, lp) for t, lp in c.top[: self.top]]) for c in steps])

    def text_logprobs(self, steps: Sequence[Choice]) -> CompletionLogprobs | None:
        if self.top is None:
            return None
        offsets = []
        for c in steps:
            offsets.append(len(self.written.decode("utf-8", "ignore")))
            self.written += c.token
        return CompletionLogprobs(tokens=[token_text(c.token) for c in steps],
                                  token_logprobs=[c.logprob for c in steps],
                                  top_logprobs=[{token_text(t): lp for t, lp in c.top[: self.top]} for c in steps],
                                  text_offset=offsets)


def top_entry(token: bytes | None, logprob: float) -> TopLogprob:
    return TopLogprob(token=token_text(token), logprob=logprob, bytes=None if token is None else list(token))


def usage(prompt: int, completion: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)
