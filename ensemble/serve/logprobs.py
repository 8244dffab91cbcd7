"""Log-probabilities from the fused distribution, step by step.

The engine's events carry text and attribution, not the fused distribution, so for an answer that asks for
logprobs the server gives the Ensemble a `Recorder` in place of its alignment method. The Recorder passes
every call through; after each `align` it computes the fused distribution exactly as engine.step does
(`aligned.fused`, else `fuse(aligned.probs, weights · alive)`) and replays `choose` with a twin of the run's
seeded generator, so it knows the chosen token too (the generator is consumed by `choose` alone). This mirrors
engine.step, token healing included (`forced`: the prompt's backed-up white space, which the first tokens must
spell and which no token reports); the engine change that removes the mirror is described in docs/serve.md
("Limits").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import SamplingConfig
from ..decode.choose import choose
from ..decode.fuse import fuse
from ..decode.heal import Healing, owed


@dataclass(frozen=True)
class Choice:
    token: bytes | None  # the chosen token's bytes; None for the end of the answer
    logprob: float
    top: tuple[tuple[bytes | None, float], ...]  # the most likely tokens, most likely first


class Recorder:
    """Stands in for an Ensemble's alignment method during one answer; `take()` returns the steps so far."""

    def __init__(self, method, sampling: SamplingConfig, top: int, forced: bytes = b""):
        self._method = method
        self._forced, self._answer = forced, b""
        self._healing = Healing(method.space.pieces) if forced else None
        self._sampling = sampling
        self._rng = torch.Generator().manual_seed(sampling.seed)  # twin of engine.start_run's generator
        self._top = top
        self._steps: list[Choice] = []

    def __getattr__(self, name):  # space, gated, consult_all, ...: the method's own
        return getattr(self._method, name)

    def align(self, probs, weights: torch.Tensor, primary: int | None = None):
        """weights: [N] the engine's (0 for absent members), the same the engine fuses with."""
        aligned = self._method.align(probs, weights, primary)
        fused = aligned.fused if aligned.fused is not None else fuse(aligned.probs, weights)
        rest = owed(self._forced, self._answer)
        if rest:
            fused = fused * self._healing.allowed(rest)[aligned.support]
            if not bool(fused.any()):  # the engine writes the owed bytes itself; no token is chosen
                self._answer += rest
                return aligned
            fused = fused / fused.sum()
        k = choose(fused, self._sampling, self._rng)
        logp = fused.clamp_min(1e-30).log()  # [K]
        values, order = logp.topk(min(self._top, len(logp)))
        shown = lambda j: self._bytes(int(aligned.support[j]), len(rest))  # noqa: E731
        top = tuple((shown(j), _finite(v)) for v, j in zip(values, order, strict=True))
        chosen = self._bytes(int(aligned.support[k]))
        self._answer += chosen or b""
        self._steps.append(Choice(shown(k), _finite(logp[k]), top))
        return aligned

    def _bytes(self, shared_id: int, hidden: int = 0) -> bytes | None:
        """The token's bytes, less the first `hidden` (owed white space the user typed)."""
        space = self._method.space
        return None if shared_id in space.end else space.pieces[shared_id][hidden:]

    def take(self) -> tuple[Choice, ...]:
        steps, self._steps = tuple(self._steps), []
        return steps


def _finite(value: torch.Tensor) -> float:
    return max(float(value), -9999.0) if math.isfinite(float(value)) else -9999.0


def token_text(token: bytes | None) -> str:
    """A token as text: its UTF-8, with bytes that are part of a character written as \\xNN (as OpenAI does)."""
    return "<|end|>" if token is None else token.decode("utf-8", "backslashreplace")
