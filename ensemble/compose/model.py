"""A CALM composition (arXiv 2401.02412) as one causal LM: a frozen anchor whose chosen decoder layers
cross-attend, through `layers.CrossAttention`, to the hidden states of frozen augmenting models.

The augmenting models read the *prompt* text through their own tokenizers (lucidrains/CALM-pytorch): the
anchor ids of a prompt are decoded with the anchor's tokenizer, re-encoded by each augmenting tokenizer,
and their layer outputs are computed once and kept beside the anchor's KV cache (as an attribute of the
`DynamicCache`, so `deepcopy` and prompt reuse carry it). Generated tokens are not shown to the augmenting
models: every later forward on the same cache attends to the prompt's states. A cache cropped into its
prompt (prompt reuse for a new question) gets its context recomputed on the next forward.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import torch
from torch import nn

from .layers import CrossAttention
from .spec import ComposeConfig

CONTEXT_ATTR = "calm_context"


@dataclass(frozen=True)
class AugStates:
    """One augmenting model's view of a batch of texts: layer -> hidden states [B, S, D_aug], pad [B, S]."""

    layers: dict[int, torch.Tensor]
    pad: torch.Tensor


@dataclass(frozen=True)
class CacheContext:
    ids: tuple[int, ...]  # the anchor ids whose keys/values the cache holds
    n_prompt: int  # the first n_prompt of them are the text the augmenting models read
    states: tuple[AugStates, ...]


def decoder_layers(model) -> nn.ModuleList:
    return model.get_decoder().layers


class ComposedLM(nn.Module):
    """Frozen anchor + frozen augmenting models + trainable `blocks` (one per connection).

    `forward` takes the anchor's arguments and returns the anchor's output, so the engine treats it like
    any causal LM. Pass `augment=` (from `encode_augments`) to fix the augmenting context explicitly
    (training, or decoding without a cache); otherwise it is read from / stored on `past_key_values`.
    """

    def __init__(self, cfg: ComposeConfig, anchor, tokenizer, augments, aug_tokenizers):
        super().__init__()
        self.cfg, self.tokenizer, self.aug_tokenizers = cfg, tokenizer, list(aug_tokenizers)
        self.anchor, self.augments = anchor, nn.ModuleList(augments)
        for m in (anchor, *augments):
            m.requires_grad_(False).eval()
        for tok in self.aug_tokenizers:
            tok.padding_side = "right"  # causal models: right padding leaves the real positions unchanged
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
        width = anchor.config.get_text_config().hidden_size
        self.blocks = nn.ModuleList(
            CrossAttention(width, augments[c.augment].config.get_text_config().hidden_size, cfg.heads)
            for c in cfg.connections
        )
        self._active: tuple[AugStates, ...] | None = None
        self._lock = threading.Lock()  # the hooks read `_active`; one forward at a time per model
        layers = decoder_layers(anchor)
        for block, conn in zip(self.blocks, cfg.connections, strict=True):
            layers[conn.anchor_layer].register_forward_hook(self._hook(block, conn.augment, conn.aug_layer))

    # ------------------------------------------------------------ what the engine reads
    @property
    def config(self):
        return self.anchor.config

    @property
    def generation_config(self):
        return self.anchor.generation_config

    def get_output_embeddings(self):
        return self.anchor.get_output_embeddings()

    def get_input_embeddings(self):
        return self.anchor.get_input_embeddings()

    def composition_state(self) -> dict[str, torch.Tensor]:
        return dict(self.blocks.state_dict())

    def train(self, mode: bool = True):
        super().train(mode)
        self.anchor.eval()  # frozen members never train: no dropout
        self.augments.eval()
        return self

    # ------------------------------------------------------------ augmenting context
    def _hook(self, block: CrossAttention, augment: int, aug_layer: int):
        def inject(module, args, output):
            if self._active is None:  # the anchor called on its own
                return None
            states = self._active[augment]
            hidden = output[0] if isinstance(output, tuple) else output
            mixed = block(hidden, states.layers[aug_layer], states.pad)
            return (mixed, *output[1:]) if isinstance(output, tuple) else mixed

        return inject

    def encode_augments(self, texts: list[str]) -> tuple[AugStates, ...]:
        """Each augmenting model's layer outputs for `texts` (its own tokenizer, right padding)."""
        out = []
        for k, (model, tok) in enumerate(zip(self.augments, self.aug_tokenizers, strict=True)):
            wanted = sorted({c.aug_layer for c in self.cfg.connections if c.augment == k})
            device = next(model.parameters()).device
            batch = tok(texts, padding=True, return_tensors="pt").to(device)
            caught: dict[int, torch.Tensor] = {}
            layers = decoder_layers(model)
            hooks = [layers[i].register_forward_hook(_catch(caught, i)) for i in wanted]
            try:
                with torch.no_grad():
                    model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)
            finally:
                for h in hooks:
                    h.remove()
            out.append(AugStates(caught, batch["attention_mask"] == 0))
        return tuple(out)

    def _context(self, input_ids: torch.Tensor, cache) -> tuple[AugStates, ...]:
        if cache is None:  # no cache: the whole input is the prompt
            return self.encode_augments(self.tokenizer.batch_decode(input_ids, skip_special_tokens=True))
        if input_ids.shape[0] != 1:
            raise ValueError("a cached composed forward takes one sequence; pass augment= for batches")
        seen = cache.get_seq_length()
        ctx: CacheContext | None = getattr(cache, CONTEXT_ATTR, None)
        ids = (ctx.ids[:seen] if ctx is not None else ()) + tuple(input_ids[0].tolist())
        if ctx is None or seen < ctx.n_prompt:
            text = self.tokenizer.decode(list(ids), skip_special_tokens=True)
            ctx = CacheContext(ids, len(ids), self.encode_augments([text]))
        else:
            ctx = replace(ctx, ids=ids)
        setattr(cache, CONTEXT_ATTR, ctx)
        return ctx.states

    def forward(self, input_ids: torch.Tensor, past_key_values=None, augment=None, **kwargs):
        if augment is None:
            augment = self._context(input_ids, past_key_values)
        with self._lock:
            self._active = augment
            try:
                return self.anchor(input_ids=input_ids, past_key_values=past_key_values, **kwargs)
            finally:
                self._active = None


def _catch(store: dict[int, torch.Tensor], index: int):
    def hook(module, args, output):
        store[index] = output[0] if isinstance(output, tuple) else output

    return hook
