"""The three inference servers' request and reply shapes for "the top-k of the next token after these ids".

Each dialect turns an exact id sequence into one HTTP request that generates one token and returns the top-k
log-probabilities *with token ids*, and parses the reply into `TopK`. Nothing here does I/O (remote.py does),
so the contract tests (tests/test_remote_contract.py) check these shapes against recorded replies.

- llama.cpp `llama-server` POST /completion: `prompt` as ints, `n_predict: 1`, `n_probs: k`, `cache_prompt`.
  Reply: `completion_probabilities[0].top_logprobs[*].{id, logprob}` (tools/server/README.md).
- vLLM POST /v1/completions: `prompt` as ints, `max_tokens: 1`, `logprobs: k` (capped by `--max-logprobs`,
  default 20), `return_tokens_as_token_ids: true` so that keys are `token_id:N`; without it, two ids with the
  same text collapse into one key. Reply: `choices[0].logprobs.top_logprobs[0]` = {"token_id:N": logprob}.
- SGLang POST /generate: `input_ids`, `sampling_params.max_new_tokens: 1`, `return_logprob`,
  `top_logprobs_num: k`. Reply: `meta_info.output_top_logprobs[0]` = [[logprob, id, text-or-null], ...]
  (tokenizer_manager.detokenize_logprob_tokens).
All requests are greedy (`temperature: 0`): only the log-probabilities are used, never the server's token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol


class ReplyError(ValueError):
    """A reply that does not have the documented shape."""


@dataclass(frozen=True)
class TopK:
    ids: tuple[int, ...]  # descending by log-probability
    logprobs: tuple[float, ...]


class Dialect(Protocol):
    name: str
    path: str  # POST endpoint for one next-token request

    def body(self, ids: list[int], k: int, model: str) -> dict: ...

    def parse(self, reply: Any) -> TopK: ...


def _topk(pairs) -> TopK:
    """(id, logprob) pairs -> TopK, checked: ints, finite or -inf log-probabilities <= 0, no repeats."""
    clean = []
    for tid, lp in pairs:
        if isinstance(tid, bool) or not isinstance(tid, int) or tid < 0:
            raise ReplyError(f"token id {tid!r} is not a non-negative integer")
        if isinstance(lp, bool) or not isinstance(lp, int | float) or math.isnan(lp) or lp > 1e-3:
            raise ReplyError(f"log-probability {lp!r} of token {tid} is not a number <= 0")
        clean.append((tid, float(min(lp, 0.0))))
    if not clean:
        raise ReplyError("no top-k entries in the reply")
    if len({t for t, _ in clean}) != len(clean):
        raise ReplyError("the same token id appears twice in the top-k")
    clean.sort(key=lambda p: -p[1])
    return TopK(tuple(t for t, _ in clean), tuple(lp for _, lp in clean))


def _get(reply: Any, *path):
    node = reply
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            raise ReplyError(f"reply has no {'.'.join(map(str, path))}") from None
    return node


class LlamaCpp:
    name = "llama.cpp"
    path = "/completion"

    def body(self, ids: list[int], k: int, model: str) -> dict:
        # post_sampling_probs false (the default): probabilities of the model's own softmax, not of the sampler
        return {"prompt": list(ids), "n_predict": 1, "n_probs": k, "cache_prompt": True, "temperature": 0,
                "post_sampling_probs": False, "stream": False}

    def parse(self, reply: Any) -> TopK:
        entries = _get(reply, "completion_probabilities", 0, "top_logprobs")
        if not isinstance(entries, list):
            raise ReplyError("completion_probabilities[0].top_logprobs is not a list")
        return _topk((_get(e, "id"), _get(e, "logprob")) for e in entries)


class Vllm:
    name = "vLLM"
    path = "/v1/completions"

    def body(self, ids: list[int], k: int, model: str) -> dict:
        return {"model": model, "prompt": list(ids), "max_tokens": 1, "logprobs": k, "temperature": 0,
                "return_tokens_as_token_ids": True}

    def parse(self, reply: Any) -> TopK:
        top = _get(reply, "choices", 0, "logprobs", "top_logprobs", 0)
        if not isinstance(top, dict):
            raise ReplyError("choices[0].logprobs.top_logprobs[0] is not an object")
        pairs = []
        for key, lp in top.items():
            if not str(key).startswith("token_id:"):  # the server ignored return_tokens_as_token_ids
                raise ReplyError(f"top-k key {key!r} is not token_id:N (is return_tokens_as_token_ids supported?)")
            try:
                pairs.append((int(key.split(":", 1)[1]), lp))
            except ValueError:
                raise ReplyError(f"top-k key {key!r} is not token_id:N") from None
        return _topk(pairs)


class Sglang:
    name = "SGLang"
    path = "/generate"

    def body(self, ids: list[int], k: int, model: str) -> dict:
        return {"input_ids": list(ids), "sampling_params": {"max_new_tokens": 1, "temperature": 0},
                "return_logprob": True, "top_logprobs_num": k, "stream": False}

    def parse(self, reply: Any) -> TopK:
        if isinstance(reply, list) and len(reply) == 1:  # a batch of one
            reply = reply[0]
        entries = _get(reply, "meta_info", "output_top_logprobs", 0)
        if not isinstance(entries, list):
            raise ReplyError("meta_info.output_top_logprobs[0] is not a list")
        pairs = []
        for e in entries:
            if not isinstance(e, list | tuple) or len(e) < 2:
                raise ReplyError(f"top-k entry {e!r} is not [logprob, token_id, text]")
            pairs.append((e[1], e[0]))
        return _topk(pairs)


DIALECTS: dict[str, Dialect] = {"llamacpp": LlamaCpp(), "vllm": Vllm(), "sglang": Sglang()}


def dialect_of(models_reply: Any) -> str | None:
    """The server kind from its GET /v1/models reply (`owned_by`: llamacpp, vllm, sglang), else None."""
    try:
        owner = str(models_reply["data"][0].get("owned_by", "")).lower()
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return next((k for k in DIALECTS if k in owner.replace(".", "").replace("-", "")), None)


def served_facts(models_reply: Any) -> tuple[str, int]:
    """(served model id, context length or 0) from GET /v1/models: vLLM and SGLang give `max_model_len`,
    llama.cpp `meta.n_ctx` (newer) or `meta.n_ctx_train`."""
    try:
        first = models_reply["data"][0]
        served = str(first["id"])
    except (KeyError, IndexError, TypeError):
        raise ReplyError("GET /v1/models has no data[0].id") from None
    meta = first.get("meta") or {}
    context = first.get("max_model_len") or meta.get("n_ctx") or meta.get("n_ctx_train") or 0
    return served, int(context) if isinstance(context, int | float) else 0
