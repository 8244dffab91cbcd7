"""A member's weight format -> `from_pretrained` keyword arguments.

4bit is NF4 with double quantization and bf16 compute (QLoRA, Dettmers et al. 2023); 8bit is LLM.int8()
(Dettmers et al. 2022). bitsandbytes' own 4-bit defaults (fp4 with fp32 compute) are the slow path, so every
field is set here. Both run on the CPU too (bitsandbytes >= 0.48), which is how the tests exercise them.
"""

from __future__ import annotations

import logging
from collections import Counter

import torch

QUANTIZED = ("8bit", "4bit")
TORCH_DTYPES = {"auto": "auto", "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
COMPUTE_DTYPE = torch.bfloat16  # activations and the layers bitsandbytes leaves alone (embeddings, norms, lm_head)
BYTES_PER_PARAM = {"fp32": 4, "fp16": 2, "bf16": 2, "8bit": 1, "4bit": 0.5}  # of quantizable weights, roughly


def candidates(dtype: str, checkpoint: str) -> tuple[str, ...]:
    """Formats placement may pick, best first. `auto` starts at the checkpoint's own dtype and steps down through
    the smaller ones (bf16, 8bit, 4bit) until the set fits; any other dtype is taken as asked."""
    if dtype != "auto":
        return (dtype,)
    smaller = (d for d in ("bf16", "8bit", "4bit") if BYTES_PER_PARAM[d] < BYTES_PER_PARAM[checkpoint])
    return (checkpoint, *smaller)


def load_kwargs(dtype: str) -> dict:
    """`dtype` (a MemberSpec dtype, resolved: auto = the checkpoint's own) -> dtype/quantization_config kwargs."""
    from transformers import BitsAndBytesConfig

    if dtype == "4bit":
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                    bnb_4bit_compute_dtype=COMPUTE_DTYPE)
        return {"dtype": COMPUTE_DTYPE, "quantization_config": config}
    if dtype == "8bit":
        logging.getLogger("bitsandbytes.autograd._functions").addFilter(not_the_int8_cast_notice)
        return {"dtype": COMPUTE_DTYPE, "quantization_config": BitsAndBytesConfig(load_in_8bit=True)}
    return {"dtype": TORCH_DTYPES[dtype]}


def not_the_int8_cast_notice(record: logging.LogRecord) -> bool:
    """Int8 matmuls take fp16 inputs by design; bitsandbytes would log that on every bf16 forward."""
    return "inputs will be cast" not in record.getMessage()


def quantized_layers(model) -> Counter:
    """Count of bitsandbytes layer types in `model`: {"Linear4bit": n} or {"Linear8bitLt": n}; empty if none."""
    return Counter(type(m).__name__ for m in model.modules() if type(m).__module__.startswith("bitsandbytes"))
