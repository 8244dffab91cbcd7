"""The `/generate` API endpoint: named, typed parameters, streaming the same JSON object as the CLI's `--json`
(ensemble/cli.py run_generate), growing as the answer does; the last one is complete.

    {"text", "pieces": [{"text", "driver", "shares"}], "members", "method", "finish_reason", "timing",
     "failures", "solo": [{"member", "text"}] (with solo=True)}

While streaming, finish_reason and timing are null. Bad input is one gr.Error line; nothing is loaded then.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

import gradio as gr

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig
from ensemble.decode.events import FUSED, Finished, MemberFailed, Piece
from ensemble.errors import EnsembleError

from .picker import MAX_MODEL_CHARS, MIN_MEMBERS, SLOTS

ROLES = ("system", "user", "assistant")


def check_request(members: list[str], prompt: str, messages: list[dict] | None, max_new_tokens: int,
                  max_prompt_chars: int, max_new: int, max_turns: int) -> list[dict]:
    """The conversation to answer, or gr.Error with the first problem."""
    if not isinstance(members, list) or not MIN_MEMBERS <= len(members) <= SLOTS:
        raise gr.Error(f"members: give {MIN_MEMBERS} to {SLOTS} models (Hub ids, local paths, offline:NAME)")
    if any(not isinstance(m, str) or not m.strip() or len(m) > MAX_MODEL_CHARS or not m.isprintable()
           for m in members):
        raise gr.Error("members: each one must be a model id or path")
    if bool(prompt) == bool(messages):
        raise gr.Error("give either prompt or messages, not both")
    messages = messages or [{"role": "user", "content": prompt}]
    if not isinstance(messages, list) or len(messages) > 2 * max_turns + 1 or not all(
            isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in messages):
        raise gr.Error(f"messages: up to {2 * max_turns + 1} of {{'role': system|user|assistant, 'content': str}}")
    if messages[-1]["role"] != "user" or not messages[-1]["content"].strip():
        raise gr.Error("messages: the last one must be a non-empty user message")
    if any(len(m["content"]) > max_prompt_chars for m in messages):
        raise gr.Error(f"messages: at most {max_prompt_chars} characters each")
    if not 1 <= int(max_new_tokens) <= max_new:
        raise gr.Error(f"max_new_tokens must be from 1 to {max_new}")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def result(config: EnsembleConfig, pieces: list, finished: dict, failures: list, solo: bool) -> dict:
    """The CLI's --json object for what has arrived so far."""
    fused = finished.get(FUSED)
    timing = None
    if fused is not None:
        timing = dataclasses.asdict(fused.stats)
    out = {"text": fused.text if fused else "".join(p["text"] for p in pieces), "pieces": pieces,
           "members": [m.name for m in config.members], "method": config.method,
           "finish_reason": fused.reason if fused else None, "timing": timing, "failures": failures}
    if solo:
        out["solo"] = [{"member": m.name, "text": finished[i].text if i in finished else ""}
                       for i, m in enumerate(config.members)]
    return out


def generate_endpoint(ctx) -> Callable:
    """The function behind /generate for a ui.handlers.Context (its backend, methods and limits)."""
    limits = ctx.limits

    def generate(members: list[str], prompt: str = "", messages: list[dict] | None = None, method: str = "unite",
                 options: dict | None = None, max_new_tokens: int = 64, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, solo: bool = False) -> Iterator[dict]:
        """Answer with an ensemble of 2-4 models, streaming the CLI's --json object (fused text, pieces with
        driver and shares, timing, and with solo=True each member's own answer)."""
        conversation = check_request(members, prompt, messages, max_new_tokens, limits.max_prompt_chars,
                                     limits.max_new_tokens, limits.max_turns)
        if method not in ctx.methods:
            raise gr.Error(f"method must be one of {', '.join(ctx.methods)}")
        try:
            sampling = SamplingConfig(max_new_tokens=int(max_new_tokens), temperature=float(temperature),
                                      top_p=float(top_p), seed=int(seed))
            config = EnsembleConfig(members=tuple(MemberSpec(m.strip()) for m in members), method=method,
                                    options=dict(options or {}), sampling=sampling)
            ctx.backend.load(config, lambda *_: None)
        except EnsembleError as e:
            raise gr.Error(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        yield from stream(ctx, config, conversation, solo)

    return generate


def stream(ctx, config: EnsembleConfig, conversation: list[dict], solo: bool) -> Iterator[dict]:
    deadline = time.monotonic() + ctx.limits.answer_seconds
    events = ctx.backend.stream(config, conversation, lambda: time.monotonic() > deadline, solo=solo)
    pieces, finished, failures, last = [], {}, [], 0.0
    try:
        for event in events:
            if isinstance(event, Piece) and event.stream == FUSED:
                pieces.append({"text": event.text, "driver": event.driver, "shares": list(event.shares)})
            elif isinstance(event, MemberFailed):
                failures.append({"type": "MemberFailed", **dataclasses.asdict(event)})
            elif isinstance(event, Finished):
                finished[event.stream] = event
            if time.monotonic() - last >= 1 / ctx.limits.updates_per_second:
                last = time.monotonic()
                yield result(config, pieces, finished, failures, solo)
    except EnsembleError as e:
        raise gr.Error(str(e)) from None
    finally:
        events.close()
    yield result(config, pieces, finished, failures, solo)
