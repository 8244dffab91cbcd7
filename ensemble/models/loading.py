"""MemberSpec -> LoadedModel: weights, tokenizer and byte vocabulary, through `from_pretrained`.

A Hub id, a local folder, or a folder/file holding a `.gguf` all take the same path. Models load once per
spec; two members with the same spec share weights (each still gets its own KV cache). The format (bf16, 8bit,
4bit...) and the device come from a placement Slot (placement.py, chosen by pool.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..align.vocab import build_byte_vocab
from ..config import MemberSpec
from ..decode.model import LoadedModel
from ..decode.prompting import Continuation
from ..errors import LoadError
from .hub import translate
from .locate import locate
from .placement import Slot
from .quantize import TORCH_DTYPES, load_kwargs


def load_model(spec: MemberSpec, device: str | None = None, slot: Slot | None = None,
               located: tuple[str, dict] | None = None) -> LoadedModel:
    """Load one member onto `device` (default: cuda if present, else cpu) in its own dtype, or as a placement
    `slot` says (device or GPU split, and the dtype placement chose). `located`: (where, extra) as a
    policy.Policy resolved it (Hub only, token=False for a visitor's repo); default locate.locate."""
    from transformers import AutoTokenizer

    where, extra = located or locate(spec.model)
    slot = slot or Slot(0, spec.name, spec.dtype, 0, {})
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        if (Path(where) / "compose.json").is_file():  # a CALM composition (docs/compose.md)
            from ..compose import load_composed

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


def load_key(spec: MemberSpec) -> tuple[str, str, bool, str]:
    """What makes two members the same loaded model (weight and display name do not)."""
    return spec.model, spec.dtype, spec.trust_remote_code, spec.tokenizer
