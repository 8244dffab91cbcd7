"""The decode loop: a generator of typed events.

prompt -> per-member prompt ids -> forward with KV caches -> per-member probabilities -> alignment into the
shared space -> fusion -> token choice -> attribution -> re-sync of each member -> events.
Solo answers are the same loop with one member and exact averaging, so they equal `model.generate`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from ..align import Method, make_method
from ..config import EnsembleConfig, SamplingConfig
from ..decode.model import LoadedModel
from ..errors import PromptError
from .attribution import Attribution, attribute, merge
from .backend import forward_all, open_member
from .choose import choose
from .demos import PromptPlan, decide, demo_bits_per_byte
from .events import FUSED, Event, Finished, MemberFailed, Piece, Started, Stats
from .fuse import fuse
from .heal import Healing, owed
from .member import Member
from .prompting import check_messages, prompt_ids, split_trailing_space
from .resync import incomplete_tail
from .solo import Ride, ridden
from .textstream import TextStream


@dataclass
class Run:
    """One answer being decoded: the ensemble's (stream FUSED) or one member's solo answer."""

    stream: int
    members: list[Member]
    method: Method
    weights: torch.Tensor  # [N]
    primary: int
    text: TextStream
    rng: torch.Generator
    healing: Healing
    forced: bytes = b""  # the prompt's trailing white space, which the answer must spell first (heal.py)
    answer: bytes = b""
    steps: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    pending: list[Attribution] = field(default_factory=list)  # tokens not yet released as text
    fed_mark: list[int] = field(default_factory=list)
    reported: set[int] = field(default_factory=set)
    owners: tuple[int, ...] = ()  # members that finish a half-written character; () = everyone votes
    done: Finished | None = None
    ride: Ride | None = None  # a solo answer reading its fused twin's forward while their ids agree


class Ensemble:
    """Loaded members plus their alignment, built once (at load time, not per answer) and reused."""

    def __init__(self, models: Sequence[LoadedModel], config: EnsembleConfig):
        if len(models) != len(config.members):
            raise ValueError(f"{len(models)} models for {len(config.members)} member specs")
        self.models, self.config = list(models), config
        self.method = make_method(config.method, models, config.options, config.primary)
        self.solo_methods = [make_method("average", [m]) for m in models]
        self.healing = [Healing(m.space.pieces) for m in [self.method, *self.solo_methods]]  # masks built on use
        self.demo_memo: dict = {}  # scored few-shot prompts (decode/demos.py)

    def stream(self, messages: Sequence[dict], solo: bool = False, sampling: SamplingConfig | None = None,
               should_stop: Callable[[], bool] | None = None, ride_along: bool = True) -> Iterator[Event]:
        """Stream the fused answer (and, with `solo`, each member's own answer, interleaved step by step).

        With `ride_along`, a solo answer reads its member's forward in the fused run while their ids agree
        (decode/solo.py); the events are the same either way, but for `fed` on the steps it saves.
        Closing the generator, or `should_stop()` turning true, stops every stream and frees its caches.
        """
        config = self.config if sampling is None else dataclasses.replace(self.config, sampling=sampling)
        messages, forced = split_trailing_space(check_messages(messages), config.prompt_format == "chat")
        prompts = fit_prompt(self.models, messages, config)
        plan = self.plan(messages[-1]["content"], prompts, config)
        runs = [start_run(FUSED, self.models, prompts, self.method, torch.tensor(plan.weights), config,
                          self.healing[0], forced)]
        runs[0].primary = plan.primary
        if solo:
            runs += [start_run(i, [m], [prompts[i]], self.solo_methods[i], torch.ones(1), config,
                               self.healing[i + 1], forced) for i, m in enumerate(self.models)]
            for run in runs[1:] if ride_along else ():  # each solo stream steps right after the fused one
                run.ride = Ride(runs[0].members[run.stream])
        try:
            for run in runs:
                yield Started(run.stream, tuple(m.lm.name for m in run.members),
                              config.method if run.stream == FUSED else "solo", tuple(len(p) for p in prompts),
                              tuple(run.weights.tolist()), run.primary, plan.dropped if run.stream == FUSED else (),
                              plan.bits_per_byte if run.stream == FUSED else ())
            while any(r.done is None for r in runs):
                for run in runs:
                    if run.done is None:
                        yield from (cancel(run) if should_stop and should_stop() else step(run, config.sampling))
        finally:
            for run in runs:
                for m in run.members:
                    m.release()


    def plan(self, text: str, prompts: list[list[int]], config: EnsembleConfig) -> PromptPlan:
        """This answer's weights and main member: the config's, or read from the prompt (decode/demos.py)."""
        scores = [None] * len(self.models)
        if config.per_prompt == "demos" and len(self.models) > 1:
            scores = demo_bits_per_byte(self.models, text, prompts, self.demo_memo)
        return decide(scores, config.weights, config.primary, config.drop_gap)


def generate_stream(models: Sequence[LoadedModel], config: EnsembleConfig, messages: Sequence[dict],
                    solo: bool = False, should_stop: Callable[[], bool] | None = None,
                    ride_along: bool = True) -> Iterator[Event]:
    """One-off `Ensemble(models, config).stream(...)`; keep an Ensemble to reuse its alignment."""
    return Ensemble(models, config).stream(messages, solo=solo, should_stop=should_stop, ride_along=ride_along)


def start_run(stream: int, models: Sequence[LoadedModel], prompts: Sequence[list[int]], method: Method,
              weights: torch.Tensor, config: EnsembleConfig, healing: Healing | None = None,
              forced: bytes = b"") -> Run:
    members = [open_member(lm, p, config.resync_window) for lm, p in zip(models, prompts, strict=True)]
    healing = healing or Healing(method.space.pieces)
    rng = torch.Generator().manual_seed(config.sampling.seed)
    return Run(stream, members, method, weights, config.primary if stream == FUSED else 0,
               TextStream(config.sampling.stop), rng, healing, forced, fed_mark=[0] * len(members))


def step(run: Run, sampling: SamplingConfig) -> Iterator[Event]:
    """One fused token: forward, align, fuse, choose, attribute, re-sync, release text."""
    start = time.perf_counter()
    if any(m.error is None and len(m.target) > m.lm.context for m in run.members):
        yield from release(run, run.text.finish())  # one fused piece can be several member tokens:
        yield finish(run, "length", start)  # the budget is each member's own context, in its own tokens
        return
    probs = consult(run)
    yield from report_failures(run)
    if all(p is None for p in probs):
        yield finish(run, "error")
        return
    weights = run.weights * torch.tensor([p is not None for p in probs], dtype=torch.float32)
    aligned = run.method.align(probs, weights, run.primary)
    fused = fuse(aligned.probs, weights) if aligned.fused is None else aligned.fused
    rest = owed(run.forced, run.answer)
    if rest:  # token healing: only tokens that spell the prompt's backed-up white space (heal.py)
        fused = fused * run.healing.allowed(rest)[aligned.support]
        if not bool(fused.any()):  # no candidate spells it: write it as the prompt had it, and go on
            advance(run, None, rest)
            return
    k = choose(fused, sampling, run.rng)
    token = int(aligned.support[k])
    run.pending.append(attribute(aligned, weights, k))
    run.steps += 1
    if token in run.method.space.end:
        yield from release(run, run.text.finish())
        yield finish(run, "end", start)
        return
    piece = run.method.space.pieces[token]
    advance(run, [int(p.argmax()) if p is not None and top == token else None
                  for p, top in zip(probs, aligned.top, strict=True)], piece)
    yield from release(run, run.text.push(piece[len(rest):]))  # the backed-up white space is the user's
    if run.text.stopped or run.steps >= sampling.max_new_tokens:
        yield from release(run, run.text.finish())
        yield finish(run, "stop" if run.text.stopped else "length", start)
    else:
        record_time(run, start)


def advance(run: Run, own: list[int | None] | None, piece: bytes) -> None:
    """Append the chosen piece to the answer and re-sync every live member to it (`own[i]`: member i's own
    argmax id when it was the chosen token, so it is appended as is)."""
    run.answer += piece
    run.owners = owners(run.pending[-1]) if run.pending and incomplete_tail(run.answer) else ()
    for i, m in enumerate(run.members):
        if m.error is None and run.weights[i] > 0:  # a member that sits this answer out is never re-synced
            m.advance(own[i] if own else None, run.answer)


def owners(att: Attribution) -> tuple[int, ...]:
    """Who finishes a character whose first bytes were just chosen: the members that chose those bytes
    themselves (else the driver). Others would append their own idea of the next byte and spell a
    character nobody meant, as byte-level members do when mixed naively."""
    agreeing = tuple(i for i, a in enumerate(att.agree) if a)
    return agreeing or (att.driver,)


def consult(run: Run) -> list[torch.Tensor | None]:
    """Forward the members that vote this step. With gating, the primary runs first and the others only
    when it is unsure; while a character is half written, only its owners run. A solo answer riding
    along reads its fused twin's forward instead (solo.py)."""
    shared = ridden(run.ride, run.members[0])
    if shared is not None:
        return shared
    alive = [m.error is None and w > 0 for m, w in zip(run.members, run.weights.tolist(), strict=True)]
    if any(alive[i] for i in run.owners):
        return forward_all(run.members, [a and i in run.owners for i, a in enumerate(alive)])
    if not run.method.gated or len(run.members) == 1 or not alive[run.primary]:
        return forward_all(run.members, alive)
    only_primary = [i == run.primary for i in range(len(run.members))]
    probs = forward_all(run.members, only_primary)
    if run.members[run.primary].error is None and not run.method.consult_all(probs[run.primary]):
        return probs
    rest = forward_all(run.members, [a and not b for a, b in zip(alive, only_primary, strict=True)])
    return [p if p is not None else r for p, r in zip(probs, rest, strict=True)]


def release(run: Run, text: str) -> Iterator[Piece]:
    if not text or not run.pending:
        return
    att = merge(run.pending) if len(run.pending) > 1 else run.pending[0]
    fed = tuple(m.fed - mark for m, mark in zip(run.members, run.fed_mark, strict=True))
    run.pending, run.fed_mark = [], [m.fed for m in run.members]
    yield Piece(run.stream, text, att.driver, att.shares, att.agree, fed)


def report_failures(run: Run) -> Iterator[MemberFailed]:
    for i, m in enumerate(run.members):
        if m.error is not None and i not in run.reported:
            run.reported.add(i)
            yield MemberFailed(run.stream, i, m.lm.name, m.error)


def cancel(run: Run) -> Iterator[Event]:
    yield from release(run, run.text.finish())
    yield finish(run, "cancelled")


def record_time(run: Run, start: float) -> None:
    elapsed = time.perf_counter() - start
    if run.steps == 1:
        run.prefill_s = elapsed
    else:
        run.decode_s += elapsed


def finish(run: Run, reason: str, start: float | None = None) -> Finished:
    if start is not None:
        record_time(run, start)
    n = max(run.steps - 1, 1)
    stats = Stats(
        steps=run.steps,
        prefill_ms=round(run.prefill_s * 1e3, 3),
        decode_ms=round(run.decode_s * 1e3, 3),
        ms_per_step=round(run.decode_s * 1e3 / n, 3),
        member_ms=tuple(round(m.forward_s * 1e3 / max(m.forwards, 1), 3) for m in run.members),
        fed_per_step=tuple(round((m.fed - m.prefilled) / n, 3) for m in run.members),
        cropped_per_step=tuple(round(m.cropped / n, 3) for m in run.members),
        consulted=tuple(round(m.forwards / max(run.steps, 1), 3) for m in run.members),
        rode=run.ride.steps if run.ride else 0,
    )
    run.done = Finished(run.stream, run.text.text, reason, stats)
    return run.done


def fit_prompt(models: Sequence[LoadedModel], messages: list[dict], config: EnsembleConfig) -> list[list[int]]:
    """Per-member prompt ids. Drops the oldest turns while any member's context is exceeded; a single
    turn that still does not fit is an error."""
    budget = [m.context - config.sampling.max_new_tokens for m in models]
    limit = config.max_prompt_tokens
    while True:
        prompts = [prompt_ids(m.tokenizer, messages, config.prompt_format == "chat") for m in models]
        too_long = [i for i, p in enumerate(prompts) if len(p) > budget[i] or (limit and len(p) > limit)]
        if not too_long:
            return prompts
        first_user = next(i for i, m in enumerate(messages) if m["role"] == "user")
        if first_user == len(messages) - 1:
            i = too_long[0]
            cap = min(budget[i], limit) if limit else budget[i]
            raise PromptError(f"the prompt is {len(prompts[i])} tokens for {models[i].name}, over its limit of "
                              f"{max(cap, 0)} (context {models[i].context} minus max_new_tokens "
                              f"{config.sampling.max_new_tokens}); shorten it")
        del messages[first_user: first_user + 2]
