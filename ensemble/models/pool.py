"""Members loaded once and reused across chats: estimate, place, then download and load, with progress events.

    pool = ModelPool()
    models = pool.load(config.members, progress=lambda p: print(p.stage, p.fraction, p.message))

Placement is planned for the new members before anything is downloaded, so a set that cannot fit fails in
seconds with a LoadError that names the member, the shortfall and a quantization to try.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import MemberSpec
from ..decode.model import LoadedModel
from .hub import member_facts, translate
from .loading import load_key, load_model
from .memory import estimate
from .placement import Need, Plan, Slot, describe, gb, plan
from .policy import Policy
from .quantize import QUANTIZED, candidates
from .remote import load_remote

DEFAULT_CONTEXT = 4096  # tokens of KV cache budgeted per cache (prompt + answer); capped at each model's own
FORMATS = ("fp32", "bf16", "fp16", "8bit", "4bit")
PLANNED = 0.1  # share of the progress bar for estimating and placing; loading the members takes the rest
SIDE_PATTERNS = ("*.json", "*.jinja", "*.model", "*.txt", "tokenizer*")  # config, tokenizer, chat template
INDEX = "model.safetensors.index.json"


@dataclass(frozen=True)
class LoadProgress:
    member: int  # index in the requested specs
    name: str  # MemberSpec.name
    stage: str  # "estimating" | "downloading" | "loading" | "quantizing" | "placing" | "ready"
    fraction: float  # 0..1 over the whole request
    message: str  # human readable


class ModelPool:
    """Loaded members keyed by what makes them the same model (model, dtype, trust_remote_code)."""

    def __init__(self, gpus: Sequence[int] | None = None, context: int = DEFAULT_CONTEXT,
                 policy: Policy | None = None, move_to: str | None = None):
        """`gpus`: simulated free bytes per GPU (tests, planning for another machine, ZeroGPU's emulated
        device); None reads torch.cuda. Simulated plans still load on the CPU when this machine has no CUDA.
        `policy`: what may load (ensemble/models/policy.py); default: anything, no size ceiling, the user's token.
        `move_to`: load on the CPU, then `.to(move_to)` (ZeroGPU: "cuda", which it emulates in the main process)."""
        self.gpus = None if gpus is None else list(gpus)
        self.move_to = move_to
        self.context = context
        self.policy = policy or Policy(max_params=None, token_for_visitors=True)
        self.models: dict[tuple, LoadedModel] = {}
        self.slots: dict[tuple, Slot] = {}
        self.lock = threading.RLock()

    def load(self, specs: Sequence[MemberSpec],
             progress: Callable[[LoadProgress], None] | None = None) -> list[LoadedModel]:
        report = progress or (lambda event: None)
        with self.lock:
            for i, spec in enumerate(specs):  # served members: no placement, only a tokenizer here
                if spec.remote and load_key(spec) not in self.models:
                    report(LoadProgress(i, spec.name, "loading", 0.0, f"{spec.name}: asking {spec.model}"))
                    self.models[load_key(spec)] = load_remote(spec)
            fresh = {}  # load key -> index of its first spec
            for i, spec in enumerate(specs):
                if load_key(spec) not in self.models:
                    fresh.setdefault(load_key(spec), i)
            chosen = self.place([(i, specs[i]) for i in fresh.values()], report) if fresh else []
            done = PLANNED
            total = sum(s.size for s in chosen) or 1
            for slot in chosen:
                share = (1 - PLANNED) * slot.size / total
                self.load_one(specs[slot.member], slot, report, done, share)
                done += share
            for i, spec in enumerate(specs):
                if i not in fresh.values():
                    report(LoadProgress(i, spec.name, "ready", 1.0, f"{spec.name}: already loaded"))
            return [dataclasses.replace(self.models[load_key(s)], spec=s) for s in specs]

    def place(self, members: Sequence[tuple[int, MemberSpec]], report) -> list[Slot]:
        """Estimate each new member from its metadata and plan where it goes; raises LoadError if it can't fit."""
        needs = []
        for n, (i, spec) in enumerate(members):
            report(LoadProgress(i, spec.name, "estimating", PLANNED * n / (2 * len(members)),
                                f"{spec.name}: reading config.json and the safetensors header"))
            needs.append(self.need(i, spec))
        chosen = plan(needs, self.free(), ram=None if self.gpus is not None else available_ram()).slots
        lines = dict(zip((s.member for s in chosen), describe(Plan(chosen, ())), strict=True))
        for i, spec in members:
            report(LoadProgress(i, spec.name, "placing", PLANNED, lines[i]))
        return list(chosen)

    def need(self, member: int, spec: MemberSpec) -> Need:
        where, extra = self.policy.locate(spec.model)
        facts = member_facts(spec, where, extra)
        self.policy.check_size(spec.name, facts.params)  # from the metadata: nothing downloaded yet
        estimates = {d: estimate(facts, d, self.context) for d in FORMATS}
        return Need(member, spec.name, {d: e.total for d, e in estimates.items()},
                    candidates(spec.dtype, facts.checkpoint), {d: e.weights for d, e in estimates.items()})

    def load_one(self, spec: MemberSpec, slot: Slot, report, start: float, share: float) -> None:
        """Download if needed, then load as `slot` says; progress runs from `start` to `start + share`."""

        def say(stage: str, part: float, message: str) -> None:
            report(LoadProgress(slot.member, spec.name, stage, min(start + share * part, 1.0), message))

        where, extra = self.policy.locate(spec.model)
        if not Path(where).exists():
            say("downloading", 0.0, f"{spec.name}: downloading {where} from the Hugging Face Hub")
            download(where, extra.get("token"))
        verb = f"loading and quantizing to {slot.dtype}" if slot.dtype in QUANTIZED else f"loading as {slot.dtype}"
        say("quantizing" if slot.dtype in QUANTIZED else "loading", 0.5, f"{spec.name}: {verb} on {slot.device}")
        here = slot if torch.cuda.is_available() and not self.move_to else dataclasses.replace(slot, shares={})
        lm = load_model(spec, "cpu", here, located=(where, extra))
        if self.move_to:
            lm.model.to(self.move_to)
        self.models[load_key(spec)], self.slots[load_key(spec)] = lm, slot
        say("ready", 1.0, f"{spec.name}: ready on {lm.device} ({gb(slot.size)} budgeted)")

    def free(self) -> list[int]:
        """Free bytes per GPU now. Simulated GPUs lose what this pool's loaded members were budgeted."""
        if self.gpus is not None:
            used = [0] * len(self.gpus)
            for slot in self.slots.values():
                for g, size in slot.shares.items():
                    used[g] += size
            return [f - u for f, u in zip(self.gpus, used, strict=True)]
        if not torch.cuda.is_available():
            return []
        return [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]

    def unload(self, spec: MemberSpec) -> None:
        """Drop the pool's model for `spec` and free its memory (callers must drop their own references too)."""
        with self.lock:
            self.models.pop(load_key(spec), None)
            self.slots.pop(load_key(spec), None)
            release()

    def clear(self) -> None:
        with self.lock:
            self.models.clear()
            self.slots.clear()
            release()

    def loaded(self) -> list[MemberSpec]:
        return [lm.spec for lm in self.models.values()]


def download(repo: str, token: bool | str | None = None) -> None:
    """The repo's config, tokenizer and the one set of weights its index names (token=False: anonymous)."""
    from huggingface_hub import hf_hub_download, list_repo_files, snapshot_download

    try:
        files = list_repo_files(repo, token=token)
        index = None
        if INDEX in files:
            index = json.loads(Path(hf_hub_download(repo, INDEX, token=token)).read_text())
        snapshot_download(repo, allow_patterns=[*SIDE_PATTERNS, *weight_files(files, index)], token=token)
    except Exception as e:
        raise translate(e, repo) from e


def weight_files(files: Sequence[str], index: dict | None) -> list[str]:
    """The safetensors files transformers will read: the shards `index` (model.safetensors.index.json) names,
    else model.safetensors, else every .safetensors file. A repo that also ships a consolidated copy (Mistral's
    consolidated.safetensors) or another format's shards has those left out."""
    if index is not None:
        return sorted(set(index["weight_map"].values()))
    if "model.safetensors" in files:
        return ["model.safetensors"]
    return sorted(f for f in files if f.endswith(".safetensors") and "/" not in f)


def available_ram() -> int:
    import psutil

    return psutil.virtual_memory().available


def release() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_models(specs: Sequence[MemberSpec], device: str | None = None) -> list[LoadedModel]:
    """Load each distinct model once; members with the same model and dtype share it. With a GPU and no
    `device`, members are placed over the GPUs by a ModelPool (estimates first, then first-fit-decreasing)."""
    if device is None and torch.cuda.is_available():
        return ModelPool().load(specs)
    loaded: dict[tuple, LoadedModel] = {}
    out = []
    for spec in specs:
        if load_key(spec) not in loaded:
            loaded[load_key(spec)] = load_remote(spec) if spec.remote else load_model(spec, device)
        out.append(dataclasses.replace(loaded[load_key(spec)], spec=spec))
    return out
