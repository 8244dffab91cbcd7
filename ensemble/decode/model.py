"""What the decode loop needs of a loaded local member: weights, tokenizer, byte vocabulary, the encoder of
answer bytes, the context length and its reusable prompt cache. `ensemble/models/loading.py` builds these;
nothing here imports the loading stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..align.vocab import ByteVocab
from ..config import MemberSpec
from .kvcache import PromptCache
from .prompting import Continuation


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
