"""MemberSpec -> LoadedModel: weights, tokenizer and byte vocabulary, through `from_pretrained`.

A Hub id, a local folder, or a folder/file holding a `.gguf` all take the same path. Models load once per
spec; two members with the same spec share weights (each still gets its own KV cache). The format (bf16, 8bit,
4bit...) and the device come from a placement Slot (ensemble/placement.py, chosen by ensemble/pool.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import MemberSpec
from .errors import LoadError
from .hub import translate
from .kvcache import PromptCache
from .placement import Slot
from .prompting import Continuation
from .quantize import TORCH_DTYPES, load_kwargs
from .vocab import ByteVocab, build_byte_vocab


@dataclass(frozen=True)
class LoadedModel:
    spec: MemberSpec
    model: Any
    tokenizer: Any
    vocab: ByteVocab
    encode: Continuation  # answer bytes -> continuation ids
    context: int  # max positions
    prompts: PromptCache = field(default_factory=PromptCache, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def device(self) -> torch.device:
        """Where input ids go: the input embedding's device (a member split over GPUs starts there)."""
        return self.model.get_input_embeddings().weight.device


def locate(model: str) -> tuple[str, dict]:
    """Model string -> (from_pretrained path or id, extra kwargs). Raises LoadError for a missing folder
    or an id that can't be a Hub repo."""
    if model.startswith("offline:"):
        from .offline import resolve

        try:
            model = resolve(model)
        except ValueError as e:
            raise LoadError(str(e)) from None
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").exists() and len(ggufs) == 1:
            return str(path), {"gguf_file": ggufs[0].name}
        if not (path / "config.json").exists() and not (path / "compose.json").exists():
            raise LoadError(f"{model}: folder has no config.json (and not exactly one .gguf file)")
        return str(path), {}
    if model.startswith((".", "/", "~")) or path.suffix == ".gguf" or model.count("/") > 1:
        raise LoadError(f"{model}: no such folder or file")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError as e:
        raise LoadError(f"{model!r} is not a local folder nor a valid Hub id (owner/name): {e}") from None
    return model, {}


def load_model(spec: MemberSpec, device: str | None = None, slot: Slot | None = None) -> LoadedModel:
    """Load one member onto `device` (default: cuda if present, else cpu) in its own dtype, or as a placement
    `slot` says (device or GPU split, and the dtype placement chose)."""
    from transformers import AutoTokenizer

    where, extra = locate(spec.model)
    slot = slot or Slot(0, spec.name, spec.dtype, 0, {})
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        if (Path(where) / "compose.json").is_file():  # a CALM composition (docs/compose.md)
            from .compose import load_composed

            if slot.dtype not in TORCH_DTYPES:
                raise LoadError(f"{spec.model}: a CALM composition loads in auto/bf16/fp16/fp32, not {slot.dtype}")
            tokenizer, model = load_composed(where, TORCH_DTYPES[slot.dtype])
            model = model.to(slot.device if slot.shares else device)
        else:
            tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=spec.trust_remote_code, **extra)
            model = build_model(where, extra, spec, slot, device)
    except Exception as e:
        raise translate(e, spec.model) from e
    ends = model.generation_config.eos_token_id if model.generation_config else None
    ends = [ends] if isinstance(ends, int) else list(ends or [])
    vocab = build_byte_vocab(tokenizer, model.get_output_embeddings().weight.shape[0], ends)
    text_config = model.config.get_text_config()
    context = getattr(text_config, "max_position_embeddings", None) or 2048
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise LoadError(f"{spec.model}: needs a fast (Rust) tokenizer; this one is {type(tokenizer).__name__}")
    return LoadedModel(spec, model, tokenizer, vocab, Continuation(tokenizer, vocab), context)


def build_model(where: str, extra: dict, spec: MemberSpec, slot: Slot, device: str):
    """The one place a model object is built from a located path: format from the slot's dtype (quantize.py),
    device from the slot (a GPU split is device_map="auto" bounded by max_memory) or `device`."""
    from transformers import AutoModelForCausalLM

    if slot.max_memory:
        placed = {"device_map": "auto", "max_memory": slot.max_memory}
    else:
        placed = {"device_map": {"": slot.device if slot.shares else device}}
    kwargs = dict(extra, trust_remote_code=spec.trust_remote_code, **load_kwargs(slot.dtype), **placed)
    return AutoModelForCausalLM.from_pretrained(where, **kwargs).eval()


def load_models(specs: Sequence[MemberSpec], device: str | None = None) -> list[LoadedModel]:
    """Load each distinct model once; members with the same model and dtype share it. With a GPU and no
    `device`, members are placed over the GPUs by a ModelPool (estimates first, then first-fit-decreasing)."""
    if device is None and torch.cuda.is_available():
        from .pool import ModelPool

        return ModelPool().load(specs)
    loaded: dict[tuple[str, str, bool], LoadedModel] = {}
    out = []
    for spec in specs:
        if load_key(spec) not in loaded:
            loaded[load_key(spec)] = load_model(spec, device)
        out.append(dataclasses.replace(loaded[load_key(spec)], spec=spec))
    return out


def load_key(spec: MemberSpec) -> tuple[str, str, bool]:
    """What makes two members the same loaded model (weight and display name do not)."""
    return spec.model, spec.dtype, spec.trust_remote_code
