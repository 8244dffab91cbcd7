"""A member served by an inference server (llama.cpp, vLLM, SGLang): same decode state as a local Member,
but each forward is one HTTP call that sends the member's exact ids and returns its next-token top-k.

This process keeps the member's ids, chat template, byte alignment and re-sync, exactly as for local members;
the server keeps the keys/values, reusing its prefix cache for the growing sequence. `submit` starts the call
on the model's own thread pool and returns at once; `collect` waits at most the call's time budget, so calls
to every member overlap and a dead or hanging server fails that member (its `error`) instead of the answer.

The vector handed to alignment is the server's top-k probabilities at their ids, zeros elsewhere, *not*
renormalised: the primary's top-1 is its true probability (GaC's gate compares it), and UniTE/GaC renormalise
each member's row over the support themselves. docs/remote.md explains what top-k costs.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import httpx
import torch

from ..align.vocab import ByteVocab
from ..config import MemberSpec
from .prompting import Continuation
from .resync import plan_resync, retokenize_tail
from .servers import Dialect, ReplyError, TopK

TOP_K = 20  # ids per step; vLLM's default --max-logprobs cap
ATTEMPTS = 2  # a refused connection or a 5xx is tried once more; a timeout or a malformed reply is not
RETRY_PAUSE_S = 0.2


class ServerError(RuntimeError):
    """One call failed: the message names the server and what went wrong, in one line."""


@dataclass
class ServerClient:
    """HTTP to one server: a keep-alive connection pool and bounded retries. Thread-safe (httpx.Client)."""

    base: str  # http://host:port, no trailing /v1
    dialect: Dialect
    served: str  # the model id the server reports (vLLM requires it in the body)
    timeout: float
    top_k: int = TOP_K
    http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self):
        self.http = httpx.Client(timeout=httpx.Timeout(self.timeout), limits=httpx.Limits(max_connections=4))

    def next_token(self, ids: list[int]) -> TopK:
        """The top-k of the token after `ids`. Raises ServerError."""
        body = self.dialect.body(ids, self.top_k, self.served)
        where = f"{self.dialect.name} at {self.base}"
        for attempt in range(ATTEMPTS):
            try:
                reply = self.http.post(self.base + self.dialect.path, json=body)
            except httpx.TimeoutException:
                raise ServerError(f"{where}: no reply within {self.timeout:g}s") from None
            except httpx.TransportError as e:  # refused, reset, DNS
                if attempt + 1 < ATTEMPTS:
                    time.sleep(RETRY_PAUSE_S)
                    continue
                raise ServerError(f"{where}: cannot connect ({type(e).__name__}: {e})") from None
            if reply.status_code >= 500 and attempt + 1 < ATTEMPTS:
                time.sleep(RETRY_PAUSE_S)
                continue
            return self._parse(reply, where)
        raise ServerError(f"{where}: gave up")  # not reached: the last attempt returns or raises

    def _parse(self, reply: httpx.Response, where: str) -> TopK:
        if reply.status_code != 200:
            raise ServerError(f"{where}: HTTP {reply.status_code}: {_short(reply.text)}")
        try:
            return self.dialect.parse(reply.json())
        except ValueError as e:  # json.JSONDecodeError and ReplyError are ValueErrors
            kind = "malformed reply" if isinstance(e, ReplyError) else "reply is not JSON"
            raise ServerError(f"{where}: {kind}: {_short(str(e))}") from None

    def close(self) -> None:
        self.http.close()


def _short(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass(frozen=True)
class RemoteModel:
    """What the decode loop needs of a served member: the same fields as LoadedModel (spec, tokenizer, vocab,
    encode, context) plus the client. ensemble/models/remote.py builds it."""

    spec: MemberSpec
    tokenizer: Any
    vocab: ByteVocab
    encode: Continuation
    context: int
    client: ServerClient = field(compare=False, repr=False)
    calls: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(4), compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def budget_s(self) -> float:
        """The longest one step may wait for this member: every attempt's timeout plus the pauses."""
        return ATTEMPTS * (self.client.timeout + RETRY_PAUSE_S) + 1.0


class RemoteMember:
    """One served member's decode state: its ids, what the server last saw, and the timing counters that
    Stats reads (the same names as Member's)."""

    def __init__(self, lm: RemoteModel, prompt: list[int], window: int):
        self.lm = lm
        self.prompt = list(prompt)
        self.answer: list[int] = []
        self.window = window
        self.cached: list[int] = []  # the ids of the last request: what the server's prefix cache holds
        self.error: str | None = None
        self.forward_s = 0.0
        self.forwards = 0
        self.fed = 0  # ids the server had not seen in the previous request (its cache reuses the rest)
        self.cropped = 0
        self.prefilled = 0
        self._started = 0.0

    @property
    def target(self) -> list[int]:
        return self.prompt + self.answer

    def submit(self) -> Future:
        ids = self.target
        feed = len(plan_resync(self.cached, ids).feed)
        if self.forwards == 0:
            self.prefilled = feed
        self.fed += feed
        self.cached = ids
        self._started = time.perf_counter()
        return self.lm.calls.submit(self.lm.client.next_token, ids)

    def collect(self, call: Future) -> torch.Tensor | None:
        """The call's probabilities [V] (top-k at their ids, zeros elsewhere), or None with `error` set."""
        try:
            top = call.result(timeout=self.lm.budget_s)
            probs = self.vector(top)
        except FutureTimeout:
            call.cancel()
            self.error = f"ServerError: {self.lm.client.dialect.name} at {self.lm.client.base}: no reply " \
                         f"within {self.lm.budget_s:g}s"
            return None
        except (ServerError, ReplyError) as e:
            self.error = f"{type(e).__name__}: {e}"
            return None
        self.forward_s += time.perf_counter() - self._started
        self.forwards += 1
        return probs

    def vector(self, top: TopK) -> torch.Tensor:
        size = len(self.lm.vocab.pieces)
        if max(top.ids) >= size:
            where = f"{self.lm.client.dialect.name} at {self.lm.client.base}"
            raise ReplyError(f"{where} returned token id {max(top.ids)}, outside this tokenizer's {size} ids; "
                             "is `tokenizer` the served model's?")
        probs = torch.zeros(size)
        probs[list(top.ids)] = torch.tensor(top.logprobs).exp()
        return probs

    def take_prompt(self) -> None:
        """Nothing to take: the server holds the cache."""

    def advance(self, own: int | None, text: bytes):
        """As Member.advance: append the member's own token or re-tokenize the tail; the server's cache is
        cropped implicitly by the next request, which shares only the matching prefix."""
        if own is not None:
            self.answer.append(own)
        else:
            self.answer = retokenize_tail(self.answer, self.lm.vocab.pieces, text, self.lm.encode, self.window)
        plan = plan_resync(self.cached, self.target)
        self.cropped += len(self.cached) - plan.keep
        return plan

    def release(self) -> None:
        self.cached = []
