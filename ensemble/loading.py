"""MemberSpec -> LoadedModel: weights, tokenizer and byte vocabulary, through `from_pretrained`.

A Hub id, a local folder, or a folder/file holding a `.gguf` all take the same path. Models load once per
spec; two members with the same spec share weights (each still gets its own KV cache).
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
from .kvcache import PromptCache
from .prompting import Continuation
from .vocab import ByteVocab, build_byte_vocab

DTYPES = {"auto": "auto", "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


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
        return next(self.model.parameters()).device


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


def load_model(spec: MemberSpec, device: str | None = None) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, extra = locate(spec.model)
    kwargs = dict(extra, trust_remote_code=spec.trust_remote_code)
    try:
        if (Path(where) / "compose.json").is_file():  # a CALM composition (docs/compose.md)
            from .compose import load_composed

            tokenizer, model = load_composed(where, DTYPES[spec.dtype])
        else:
            tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(where, dtype=DTYPES[spec.dtype], **kwargs)
    except (OSError, ValueError, KeyError) as e:
        raise LoadError(f"could not load {spec.model!r}: {str(e).splitlines()[0]}") from e
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    ends = model.generation_config.eos_token_id if model.generation_config else None
    ends = [ends] if isinstance(ends, int) else list(ends or [])
    vocab = build_byte_vocab(tokenizer, model.get_output_embeddings().weight.shape[0], ends)
    text_config = model.config.get_text_config()
    context = getattr(text_config, "max_position_embeddings", None) or 2048
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise LoadError(f"{spec.model}: needs a fast (Rust) tokenizer; this one is {type(tokenizer).__name__}")
    return LoadedModel(spec, model, tokenizer, vocab, Continuation(tokenizer, vocab), context)


def load_models(specs: Sequence[MemberSpec], device: str | None = None) -> list[LoadedModel]:
    """Load each distinct model once; members with the same model and dtype share it."""
    loaded: dict[tuple[str, str, bool], LoadedModel] = {}
    out = []
    for spec in specs:
        key = (spec.model, spec.dtype, spec.trust_remote_code)
        if key not in loaded:
            loaded[key] = load_model(spec, device)
        base = loaded[key]
        out.append(dataclasses.replace(base, spec=spec))
    return out

