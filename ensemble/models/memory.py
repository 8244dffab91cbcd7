"""How many bytes a member will take on its device, per weight format, before any weight is downloaded.

`facts_from_config` builds the model on the meta device (accelerate.init_empty_weights: shapes, no storage)
to count what bitsandbytes would quantize; `estimate` is then plain arithmetic, checked in
tests/test_memory.py against `measure` of really loaded models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CACHES = 3  # KV caches per member at once: the fused answer's, a solo answer's, the stored prompt (kvcache.py)
HEADROOM = 0.10  # allocator fragmentation and transient buffers, on top of the sum
BLOCK_4BIT = 64  # NF4 block size: one absmax per 64 weights
BLOCK_NESTED = 256  # double quantization: the absmaxes are themselves 8-bit, one fp32 scale per 256 of them
STATE_4BIT = (256 + 16 + 1) * 4  # per 4-bit layer: nested code book, NF4 code book, offset (fp32)
SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                     "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}  # fmt: skip
DTYPE_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


@dataclass(frozen=True)
class ModelFacts:
    """What the estimate needs, read from config.json and the safetensors header (no weights)."""

    params: int  # all parameters, tied ones once
    linear_params: int  # in the nn.Linear layers bitsandbytes converts (all but the output head)
    linear_rows: int  # their summed out_features (LLM.int8 keeps one fp32 scale per row)
    linear_layers: int
    checkpoint: str  # the checkpoint's own dtype: bf16, fp16 or fp32
    layers: int
    kv_heads: int
    head_dim: int
    hidden: int
    intermediate: int
    vocab: int
    context: int  # max_position_embeddings


@dataclass(frozen=True)
class Estimate:
    dtype: str
    weights: int
    kv_cache: int
    activations: int

    @property
    def headroom(self) -> int:
        return int(HEADROOM * (self.weights + self.kv_cache + self.activations))

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.activations + self.headroom


def compute_bytes(dtype: str, checkpoint: str) -> int:
    """Bytes per activation / KV element: fp32 stays fp32; quantized members compute in bf16."""
    resolved = checkpoint if dtype == "auto" else dtype
    return 4 if resolved == "fp32" else 2


def weight_bytes(facts: ModelFacts, dtype: str) -> int:
    """Bytes of parameters (plus bitsandbytes' quantization state) once loaded as `dtype`."""
    kept = facts.params - facts.linear_params  # embeddings, norms, biases, output head: compute dtype
    if dtype == "8bit":
        return facts.linear_params + 4 * facts.linear_rows + 2 * kept
    if dtype == "4bit":
        blocks = facts.linear_params / BLOCK_4BIT
        packed = facts.linear_params / 2 + blocks + 4 * blocks / BLOCK_NESTED
        return int(packed + STATE_4BIT * facts.linear_layers + 2 * kept)
    return facts.params * compute_bytes(dtype, facts.checkpoint)


def kv_bytes(facts: ModelFacts, dtype: str, context: int, caches: int = CACHES) -> int:
    """Keys and values of every layer for `context` positions, `caches` times. The engine's DynamicCache has no
    sliding-window layers (kvcache.py), so sliding-window models keep every position too."""
    per_token = 2 * facts.layers * facts.kv_heads * facts.head_dim * compute_bytes(dtype, facts.checkpoint)
    return caches * context * per_token


def activation_bytes(facts: ModelFacts, dtype: str, context: int) -> int:
    """Peak of a prefill of `context` tokens: the MLP's gate and up outputs plus a few residual-sized buffers,
    and fp32 logits of the last position only (the engine passes logits_to_keep=1)."""
    per_token = 2 * facts.intermediate + 4 * facts.hidden
    return context * per_token * compute_bytes(dtype, facts.checkpoint) + 8 * facts.vocab


def estimate(facts: ModelFacts, dtype: str, context: int, caches: int = CACHES) -> Estimate:
    """Bytes one member takes as `dtype` (auto = its checkpoint dtype) with `caches` KV caches of `context`
    positions each (capped at the model's own context)."""
    context = min(context, facts.context)
    return Estimate(dtype, weight_bytes(facts, dtype), kv_bytes(facts, dtype, context, caches),
                    activation_bytes(facts, dtype, context))


def checkpoint_dtype(parameter_count: Mapping[str, int] | None, config_dtype) -> str:
    """The dtype most parameters are stored in (safetensors header), else config.json's `dtype`, else fp32."""
    if parameter_count:
        name = max(parameter_count, key=parameter_count.get)
        return {"F32": "fp32", "BF16": "bf16", "F16": "fp16"}.get(name, "fp32")
    return DTYPE_NAMES.get(str(config_dtype).removeprefix("torch."), "fp32")


def facts_from_model(model, checkpoint: str) -> ModelFacts:
    """Count a (meta-device or loaded, unquantized) model's parameters by what bitsandbytes would do to them."""
    import torch

    head = model.get_output_embeddings()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head]
    text = model.config.get_text_config()
    heads = text.num_attention_heads
    return ModelFacts(
        params=sum(p.numel() for p in model.parameters()),
        linear_params=sum(m.weight.numel() for m in linears),
        linear_rows=sum(m.out_features for m in linears),
        linear_layers=len(linears),
        checkpoint=checkpoint,
        layers=text.num_hidden_layers,
        kv_heads=getattr(text, "num_key_value_heads", None) or heads,
        head_dim=getattr(text, "head_dim", None) or text.hidden_size // heads,
        hidden=text.hidden_size,
        intermediate=getattr(text, "intermediate_size", None) or 4 * text.hidden_size,
        vocab=text.vocab_size,
        context=getattr(text, "max_position_embeddings", None) or 2048,
    )


def facts_from_config(config, parameter_count: Mapping[str, int] | None = None,
                      trust_remote_code: bool = False) -> ModelFacts:
    """config (a transformers PretrainedConfig) + the safetensors parameter count per dtype -> ModelFacts."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    model.tie_weights()  # init_empty_weights leaves a tied output head as its own parameter
    return facts_from_model(model, checkpoint_dtype(parameter_count, getattr(config, "dtype", None)))


def measure(model) -> int:
    """Bytes a loaded model holds: parameters, buffers and bitsandbytes' quantization state (absmax, code books,
    int8 row scales), each tensor once."""
    import torch

    seen: dict[int, int] = {}

    def add(t):
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            seen[t.data_ptr()] = max(seen.get(t.data_ptr(), 0), t.numel() * t.element_size())

    for t in (*model.parameters(), *model.buffers()):
        add(t)
        state = getattr(t, "quant_state", None)
        for s in (state, getattr(state, "state2", None)) if state is not None else ():
            if s is not None:
                add(s.absmax), add(s.code), add(getattr(s, "offset", None))
        add(getattr(t, "SCB", None))
    for m in model.modules():  # after a forward, LLM.int8 layers keep their row scales on the layer's state
        add(getattr(getattr(m, "state", None), "SCB", None))
    return sum(seen.values())
