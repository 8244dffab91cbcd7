"""The web app's backend (`app.Models`): every model load, the Ensembles built from them, and the answers,
with ZeroGPU's rules kept (ensemble/models/zerogpu.py).

    models = Models(keep=3, policy=policy)           # zero_gpu: SPACES_ZERO_GPU by default
    models.start_up([preset], progress)              # load before serving; on ZeroGPU nothing loads later
    models.load(config, progress)                    # policy check, then load what is missing
    for event in models.stream(config, messages, should_stop): ...

Imports nothing heavy at module level: app.py (the UI side) imports it without torch.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence

from ..config import EnsembleConfig, SamplingConfig
from ..errors import LoadError
from .policy import Policy
from .zerogpu import StopFlags, answer_duration, emulated_gpus, gpu, on_zero_gpu

log = logging.getLogger("ensemble.app")
SHORT = "short by"  # placement's words when a set does not fit (placement.describe)


def model_key(spec) -> tuple[str, str, bool, str]:
    return spec.model, spec.dtype, spec.trust_remote_code, spec.tokenizer  # = loading.load_key, without torch


class Models:
    """Specs -> `ModelPool` (placement before download, weights kept for the process and shared by sessions)
    -> an Ensemble (alignment built once) per member set. Keeps the `keep` most recent ensembles; idle ones
    beyond that, and members no kept ensemble uses, are unloaded *before* a new set is placed."""

    def __init__(self, keep: int = 3, pool=None, policy: Policy | None = None, zero_gpu: bool | None = None,
                 context: int | None = None, answer_seconds: float | None = None):
        from .pool import DEFAULT_CONTEXT, ModelPool

        self.zero_gpu = on_zero_gpu() if zero_gpu is None else zero_gpu
        self.policy = policy or Policy(max_params=None, token_for_visitors=True)
        self.pool = pool or ModelPool(gpus=emulated_gpus() if self.zero_gpu else None,
                                      context=context or DEFAULT_CONTEXT, policy=self.policy,
                                      move_to="cuda" if self.zero_gpu else None)
        self.keep, self.answer_seconds, self.frozen = keep, answer_seconds, False
        self.lock, self.busy_lock = threading.Lock(), threading.Lock()
        self.ensembles: OrderedDict[str, object] = OrderedDict()  # key -> Ensemble, least recently used first
        self.busy: Counter[str] = Counter()  # key -> answers running with it (never evicted while > 0)
        self.flags = StopFlags()  # made before any ZeroGPU worker forks, so the worker shares them
        self.gpu_stream = gpu(self._stream, duration=self.duration)

    @property
    def models(self) -> dict:
        return self.pool.models  # load key -> LoadedModel

    @staticmethod
    def key(config: EnsembleConfig) -> str:
        return repr(dataclasses.replace(config, sampling=SamplingConfig()))

    def start_up(self, configs: Iterable[EnsembleConfig], progress: Callable[[float, str], None]) -> None:
        """Load `configs` now (before serving). On ZeroGPU this is the only loading there is: the GPU worker
        forks from this process and sees only what was loaded before it (zerogpu.py)."""
        for config in configs:
            try:
                self.load(config, progress)
            except LoadError as e:
                log.warning("start-up: not loaded: %s", e)
        self.frozen = self.zero_gpu

    def load(self, config: EnsembleConfig, progress: Callable[[float, str], None], build: bool = False):
        """The Ensemble for `config`, loading what is missing; progress(fraction, message) along the way.
        Frozen (ZeroGPU after start-up): only sets of loaded members, built where they run (`build`)."""
        from ..decode.engine import Ensemble

        # one line, before anything is read; a served member's tokenizer source obeys the same rules
        self.policy.check_all([m.model for m in config.members] + [m.tokenizer for m in config.members if m.tokenizer])
        with self.lock:
            key = self.key(config)
            if key in self.ensembles:
                self.ensembles.move_to_end(key)
                return self.ensembles[key]
            if self.frozen:
                missing = [m.name for m in config.members if model_key(m) not in self.pool.models]
                if missing:
                    offered = ", ".join(sorted({s.model for s in self.pool.loaded()}))
                    raise LoadError(f"this Space answers only with the models it loaded at start-up ({offered}); "
                                    f"not loaded: {', '.join(missing)}")
                if not build:  # the GPU worker aligns the vocabularies on its first answer with this set
                    progress(1.0, "ready")
                    return None
            share = len(config.members) / (len(config.members) + 1)  # the last part is the alignment
            models = self.place(config, lambda p: progress(p.fraction * share, p.message))
            progress(share, "aligning the vocabularies")
            ensemble = self.ensembles[key] = Ensemble(models, config)
            self.evict(self.keep, config)
            progress(1.0, "ready")
            return ensemble

    def place(self, config: EnsembleConfig, report) -> list:
        """pool.load after evicting idle sets down to keep-1; if the set still does not fit, every idle set
        goes and it is tried once more."""
        self.evict(self.keep - 1, config)
        try:
            return self.pool.load(config.members, report)
        except LoadError as e:
            if SHORT not in str(e) or not self.evict(0, config):
                raise
            return self.pool.load(config.members, report)

    def evict(self, keep: int, wanted: EnsembleConfig) -> bool:
        """Drop idle ensembles (least recent first) until `keep` remain, then unload members that no kept
        ensemble and not `wanted` use. True if anything was unloaded."""
        with self.busy_lock:
            idle = [k for k in self.ensembles if not self.busy[k] and k != self.key(wanted)]
        while len(self.ensembles) > keep and idle:
            self.ensembles.pop(idle.pop(0))
        used = {model_key(m.spec) for e in self.ensembles.values() for m in e.models}
        used |= {model_key(m) for m in wanted.members}
        stale = [s for s in self.pool.loaded() if model_key(s) not in used]
        for spec in stale:
            self.pool.unload(spec)
        return bool(stale)

    def duration(self, config: EnsembleConfig, messages: list[dict], slot: int, solo: bool = True) -> int:
        """ZeroGPU's duration callable: called with `_stream`'s own arguments (spaces.GPU's contract)."""
        return answer_duration(len(config.members), config.sampling.max_new_tokens, solo, self.answer_seconds)

    def stream(self, config: EnsembleConfig, messages: list[dict], should_stop: Callable[[], bool],
               solo: bool = True):
        """Engine events for one answer. `should_stop` runs here (main process); the decoding side sees it
        through a shared stop flag, checked between tokens."""
        key, slot = self.key(config), self.flags.acquire()
        with self.busy_lock:
            self.busy[key] += 1
        events = self.gpu_stream(config, list(messages), slot, solo)
        try:
            for event in events:
                if should_stop():
                    self.flags.set(slot)
                yield event
        finally:
            events.close()  # on ZeroGPU this also stops the worker at its next yield
            self.flags.release(slot)
            with self.busy_lock:
                self.busy[key] -= 1

    def _stream(self, config: EnsembleConfig, messages: list[dict], slot: int, solo: bool = True):
        """The @spaces.GPU function: only picklable arguments (a config, messages, a flag slot, a bool)."""
        ensemble = self.load(config, lambda *_: None, build=True)  # loaded by now, unless evicted meanwhile
        yield from ensemble.stream(messages, solo=solo, sampling=config.sampling,
                                   should_stop=lambda: self.flags.is_set(slot))


def preset_models(configs: Sequence[EnsembleConfig]) -> frozenset[str]:
    return frozenset(m.model for c in configs for m in c.members)
