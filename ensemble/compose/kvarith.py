"""CALM's key-value arithmetic (arXiv 2401.02412 §4.1, Table 1) at CPU size.

Random string keys map to integers. The augmenting model learns key -> value recall ("qzkf" -> "37"), the
anchor learns integer arithmetic ("23+45=68"), each with its own tokenizer: the anchor reads a key letter
by letter and a number as one piece, the augmenting model reads each key as one piece. The composition is
trained on arithmetic over the keys of a 20% split ("qzkf+abcd=82"). The other keys split in two, disjoint:
validation keys (10%), on which settings are chosen, and held-out keys, on which the chosen setting is
reported once.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from ..errors import ConfigError
from .train import Pair

SPECIALS = ("<pad>", "<s>", "</s>")


@dataclass(frozen=True)
class KVTask:
    values: dict[str, int]  # key -> value
    train_keys: tuple[str, ...]  # the composition trains on arithmetic over these
    valid_keys: tuple[str, ...]  # settings are chosen on these
    held_out: tuple[str, ...]  # reported once, for the chosen setting
    max_value: int

    def recall(self, keys) -> list[Pair]:
        """The value follows the key directly ("qzkf" -> "37"), so the augmenting model holds it at the
        key's own position, as LMs hold an entity's attributes at its last token. With a separator
        ("qzkf=37") the lookup happens at the separator, and in "qzkf+abcd=" only the last key's value
        is anywhere in the augmenting states (docs/bench-calm.md)."""
        return [(k, str(self.values[k])) for k in keys]

    def key_arithmetic(self, keys, n: int, seed: int) -> list[Pair]:
        rng = random.Random(seed)
        pairs = [(rng.choice(keys), rng.choice(keys)) for _ in range(n)]
        return [(f"{a}+{b}=", str(self.values[a] + self.values[b])) for a, b in pairs]

    def arithmetic(self, n: int, seed: int) -> list[Pair]:
        rng = random.Random(seed)
        nums = [(rng.randint(0, self.max_value), rng.randint(0, self.max_value)) for _ in range(n)]
        return [(f"{a}+{b}=", str(a + b)) for a, b in nums]

    def all_arithmetic(self) -> list[Pair]:
        r = range(self.max_value + 1)
        return [(f"{a}+{b}=", str(a + b)) for a in r for b in r]


def make_task(n_keys: int = 1000, key_len: int = 4, max_value: int = 49, train_frac: float = 0.2,
              valid_frac: float = 0.1, seed: int = 0) -> KVTask:
    rng = random.Random(seed)
    keys: set[str] = set()
    while len(keys) < n_keys:
        keys.add("".join(rng.choice(string.ascii_lowercase) for _ in range(key_len)))
    ordered = sorted(keys)
    rng.shuffle(ordered)
    values = {k: rng.randint(0, max_value) for k in ordered}
    cut = int(round(train_frac * n_keys))
    valid = cut + int(round(valid_frac * n_keys))
    if not 0 < cut < valid < n_keys:
        raise ConfigError(f"{n_keys} keys leave an empty train, validation or held-out split")
    return KVTask(values, tuple(ordered[:cut]), tuple(ordered[cut:valid]), tuple(ordered[valid:]), max_value)


# ---------------------------------------------------------------- tokenizers and members


def _byte_level_bpe(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def anchor_tokenizer(number_pieces: bool = True) -> PreTrainedTokenizerFast:
    """Letters and signs one token each; every integer below 1000 one piece (as in Llama-3's and GPT-4's
    tokenizers), or with `number_pieces=False` one token per digit too.

    Digits make the composition much harder: the anchor reads an operand's tens and units at positions
    it finds from the "+" after them, which a causal model cannot know while it is still reading a key.
    """
    numbers = [str(n) for n in range(1000)] * 3 if number_pieces else []
    return _byte_level_bpe(numbers + ["0123456789+-="], 1500 if number_pieces else 256 + len(SPECIALS))


def augment_tokenizer(task: KVTask, vocab_size: int = 3000) -> PreTrainedTokenizerFast:
    """A BPE trained on the recall lines with room for every key to become one piece, as names a real LM
    knows well are (with 600 pieces, keys split into 2-3 pieces and the values the augmenting model keeps
    at a key's position no longer generalise linearly from 20% of the keys; docs/bench-calm.md)."""
    return _byte_level_bpe([f"{p}{a}" for p, a in task.recall(task.values)], vocab_size)


def small_model(kind: str, tok, layers: int, width: int, seed: int):
    common = dict(vocab_size=len(tok), hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers,
                  num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                  tie_word_embeddings=False, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                  eos_token_id=tok.eos_token_id)  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == "llama":
            return LlamaForCausalLM(LlamaConfig(**common))
        return Qwen2ForCausalLM(Qwen2Config(**common))


def save_member(model, tok, folder: Path) -> None:
    gc, cfg = model.generation_config, model.config
    gc.bos_token_id, gc.eos_token_id, gc.pad_token_id = cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
