"""A preset, loaded once, as the models the server answers for; each request validated into a Job.

Targets: the ensemble, named after the preset, and each member alone (a one-member `average` ensemble, which
is the member's own decoding, as the CLI's `--solo`). All share the pool's loaded weights.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..config import EnsembleConfig, SamplingConfig
from ..decode.engine import Ensemble, fit_prompt
from ..decode.events import Event
from ..decode.prompting import check_messages, split_trailing_space
from ..errors import ConfigError, PromptError
from .errors import ApiError, bad_request, unsupported
from .gate import Gate
from .logprobs import Recorder
from .schemas import ChatMessage, ChatRequest, CompletionRequest, ModelCard, ModelList, Sampling


@dataclass(frozen=True)
class Limits:
    max_new_tokens: int = 512  # the most a request may ask for
    slots: int = 1  # answers on the device at once
    queue: int = 16  # requests waiting beyond those are refused (429)
    wait_s: float = 300.0  # a request waiting longer gives up (503)
    answer_s: float = 300.0  # an answer running longer stops (finish_reason "length")


@dataclass(frozen=True)
class Target:
    id: str
    ensemble: Ensemble
    names: tuple[str, ...]  # member ids, in member order

    @property
    def config(self) -> EnsembleConfig:
        return self.ensemble.config


@dataclass(frozen=True)
class Job:
    target: Target
    messages: list[dict]
    config: EnsembleConfig  # the target's, with this request's sampling and prompt format
    top_logprobs: int | None  # None: no logprobs
    answer_s: float

    def events(self, should_stop: Callable[[], bool]) -> tuple[Iterator[Event], Recorder | None]:
        """The engine's events for this answer, and the Recorder of its fused distributions (with logprobs).
        A shallow copy of the Ensemble carries this request's config (and Recorder): models, alignment and
        caches of prompts stay shared."""
        view = copy.copy(self.target.ensemble)
        view.config = self.config
        recorder = None
        if self.top_logprobs is not None:
            _, forced = split_trailing_space(self.messages, self.config.prompt_format == "chat")
            recorder = Recorder(view.method, self.config.sampling, self.top_logprobs, forced)
            view.method = recorder
        deadline = time.monotonic() + self.answer_s
        return view.stream(self.messages, should_stop=lambda: should_stop() or time.monotonic() > deadline), recorder


class Service:
    def __init__(self, targets: list[Target], limits: Limits = Limits()):
        self.targets = {t.id: t for t in targets}
        self.limits = limits
        self.gate = Gate(limits.slots, limits.queue, limits.wait_s)
        self.created = int(time.time())
        self.finished: Counter[str] = Counter()  # answers by the engine's finish reason

    def record(self, reason: str) -> None:
        self.finished[reason] += 1

    def target(self, model: str) -> Target:
        if model not in self.targets:
            raise ApiError(404, f"The model {model!r} does not exist; this server has: {', '.join(self.targets)}",
                           param="model", code="model_not_found")
        return self.targets[model]

    def cards(self) -> ModelList:
        return ModelList(data=[self.card(t) for t in self.targets.values()])

    def card(self, target: Target) -> ModelCard:
        return ModelCard(id=target.id, created=self.created,
                         ensemble={"members": list(target.names), "method": target.config.method})

    def chat_job(self, req: ChatRequest) -> Job:
        target = self.target(req.model)
        refuse_common(req)
        if req.tools:
            raise unsupported("tools", "tool calling")
        if req.response_format and req.response_format.get("type", "text") != "text":
            raise unsupported("response_format", "a structured response format")
        messages = [chat_message(m, i) for i, m in enumerate(req.messages)]
        sampling = self.sampling(req, target.config.sampling, req.max_completion_tokens or req.max_tokens)
        top = (req.top_logprobs or 0) if req.logprobs else None
        return self.job(target, messages, sampling, "messages", top, plain=False)

    def completion_job(self, req: CompletionRequest) -> Job:
        target = self.target(req.model)
        refuse_common(req)
        for name, given in (("echo", req.echo), ("suffix", req.suffix), ("best_of", (req.best_of or 1) > 1)):
            if given:
                raise unsupported(name, name)
        prompt = req.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1 or not isinstance(prompt[0], str):
                raise unsupported("prompt", "a list of prompts or token ids (send one string)")
            prompt = prompt[0]
        sampling = self.sampling(req, target.config.sampling, req.max_tokens)
        return self.job(target, [{"role": "user", "content": prompt}], sampling, "prompt", req.logprobs, plain=True)

    def job(self, target: Target, messages: list[dict], sampling: SamplingConfig, param: str, top: int | None,
            plain: bool) -> Job:
        """Validated here, before the request waits in line: the conversation, and whether it fits."""
        config = dataclasses.replace(target.config, sampling=sampling,
                                     prompt_format="plain" if plain else target.config.prompt_format)
        try:
            messages = check_messages(messages)
        except PromptError as e:
            raise bad_request(str(e), param) from None
        try:
            fit_prompt(target.ensemble.models, list(messages), config)
        except PromptError as e:
            raise bad_request(str(e), param, "context_length_exceeded") from None
        return Job(target, messages, config, top, self.limits.answer_s)

    def sampling(self, req: Sampling, base: SamplingConfig, max_tokens: int | None) -> SamplingConfig:
        """The request's settings over the preset's; stop strings add to the preset's."""
        cap = self.limits.max_new_tokens
        if max_tokens is not None and max_tokens > cap:
            raise bad_request(f"max_tokens is {max_tokens}, over this server's limit of {cap}", "max_tokens")
        stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        try:
            return SamplingConfig(
                max_new_tokens=max_tokens or min(base.max_new_tokens, cap),
                temperature=pick(req.temperature, base.temperature), top_p=pick(req.top_p, base.top_p),
                seed=pick(req.seed, base.seed), stop=tuple(dict.fromkeys((*base.stop, *stops))))
        except ConfigError as e:
            raise bad_request(str(e)) from None


def refuse_common(req: Sampling) -> None:
    if (req.n or 1) != 1:
        raise unsupported("n", "more than one choice")
    for name in ("presence_penalty", "frequency_penalty", "logit_bias"):
        if getattr(req, name):
            raise unsupported(name, name.replace("_", " "))


def chat_message(message: ChatMessage, i: int) -> dict:
    if message.role in ("tool", "function"):
        raise unsupported(f"messages[{i}].role", f"the role {message.role!r}")
    content = message.content
    if isinstance(content, list):
        kinds = {part.type for part in content} - {"text"}
        if kinds:
            raise unsupported(f"messages[{i}].content", f"content of type {sorted(kinds)[0]!r} (text only)")
        content = "\n".join(part.text or "" for part in content)
    return {"role": "system" if message.role == "developer" else message.role, "content": content or ""}


def pick(value, default):
    return default if value is None else value


def unique_ids(ensemble_id: str, names: list[str]) -> tuple[str, ...]:
    """Member ids for /v1/models: their names, with -2, -3... where a name is taken."""
    taken, ids = {ensemble_id}, []
    for name in names:
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name}-{n}", n + 1
        taken.add(candidate)
        ids.append(candidate)
    return tuple(ids)


def build_service(name: str, config: EnsembleConfig, models: list, limits: Limits = Limits()) -> Service:
    """Targets over loaded `models` (in `config.members` order): the ensemble `name`, then each member alone."""
    ids = unique_ids(name, [m.name for m in models])
    targets = [Target(name, Ensemble(models, config), ids)]
    for i, lm in enumerate(models):
        alone = EnsembleConfig(members=(config.members[i],), method="average", sampling=config.sampling,
                               resync_window=config.resync_window, max_prompt_tokens=config.max_prompt_tokens,
                               prompt_format=config.prompt_format)
        targets.append(Target(ids[i], Ensemble([lm], alone), (ids[i],)))
    return Service(targets, limits)
