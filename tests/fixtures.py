"""Tiny offline fixture models whose tokenizers really differ, for unit tests that take seconds.

Two tokenizers are trained locally with the `tokenizers` library on a small corpus (Python stdlib
sources plus a fixed multilingual list): a GPT-2 style byte-level BPE with ChatML specials, and a
Llama-2 style Unigram with a "▁" dummy prefix and <0xXX> byte fallback. Three tiny causal LMs get
seeded random weights (see INIT_STD); they know nothing, but their greedy output is varied and
deterministic. Everything is built once into `.fixture-cache/<FIXTURE_VERSION>/` and reused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import sysconfig
import tempfile
from pathlib import Path

import tokenizers
import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX as QWEN2_PRETOKENIZE_REGEX

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_ROOT = REPO_ROOT / ".fixture-cache"

STDLIB_FILES = (
    "abc.py", "base64.py", "bisect.py", "calendar.py", "colorsys.py", "contextlib.py", "copy.py",
    "csv.py", "difflib.py", "fnmatch.py", "fractions.py", "functools.py", "glob.py", "heapq.py",
    "json/__init__.py", "queue.py", "random.py", "shlex.py", "string.py", "textwrap.py",
)  # fmt: skip
CHARS_PER_FILE = 14_000  # 20 files -> ~280k characters; Unigram training stays under a second

MULTILINGUAL = (
    "The quick brown fox jumps over the lazy dog.", "Hello, world! How are you today?",
    "naïve café — 東京 🙂", " naïve café 東京 🙂", "Ünïcödé façade résumé, déjà vu, coöperate.",
    "日本語のテキストです。東京は大きい都市です。", "中文文本测试，你好世界。", "한국어 텍스트입니다.",
    "Emoji party 🙂🎉👍🚀 and a heart ❤️ too.", "\tindented\twith\ttabs", "  two leading spaces",
    "double  spaced  words  here", "trailing space ", "Zahlen: 3.14159, 42, -7, 1e-5 and 100%.",
    "def f(x):\n    return x * 2  # comment\n",
)  # fmt: skip
MULTILINGUAL_REPEATS = 20  # so rare characters are frequent enough to get their own pieces

BPE_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
UNI_SPECIALS = ("<unk>", "<s>", "</s>")
BPE_VOCAB_SIZE = 1000
UNI_VOCAB_SIZE = 800  # 3 specials + 256 byte tokens + 541 learned pieces
BYTE_SCORE = -1000.0
# Random weights with this std give peaked but varied next-token distributions; at the usual 0.02
# they are almost uniform (greedy choices hinge on ~1e-3 logit gaps).
INIT_STD = 0.5
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

BASE_NAMES = ("bpe-qwen2", "uni-llama", "uni-gemma3")
PERMUTED = {"bpe-qwen2-permuted": ("bpe-qwen2", 1234), "uni-llama-permuted": ("uni-llama", 5678)}
PERMUTATION_FILE = "permutation.json"


def _version_tag() -> str:
    # The cache key follows this file and the library versions, so edits rebuild automatically.
    h = hashlib.sha256(Path(__file__).read_bytes())
    for v in (platform.python_version(), torch.__version__, transformers.__version__, tokenizers.__version__):
        h.update(v.encode())
    return "v1-" + h.hexdigest()[:10]


FIXTURE_VERSION = _version_tag()


# ---------------------------------------------------------------- corpus and tokenizers


def corpus() -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    texts = [(root / name).read_text(encoding="utf-8")[:CHARS_PER_FILE] for name in STDLIB_FILES]
    return texts + list(MULTILINGUAL) * MULTILINGUAL_REPEATS


def train_bpe_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    # Exactly the pipeline that Qwen2Tokenizer rebuilds on load (AutoTokenizer always uses that class
    # for model_type "qwen2", whatever tokenizer_config.json says): NFC, Qwen2's split regex, then
    # GPT-2 byte-level without its own regex.
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        special_tokens=list(BPE_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", bos_token=None, pad_token="<|endoftext|>"
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def _canonical_pieces(pieces: list[list]) -> list[tuple[str, float]]:
    """Make the Unigram trainer's output reproducible.

    The trainer gives rare characters scores min - k*1e-4 in hash-set order, so which piece gets
    which of those scores varies between runs. The multiset of scores does not: group scores that
    are closer than 5e-4 and hand each group's scores out in piece-string order. Scores also carry
    ~1e-15 summation-order noise, hence the rounding.
    """
    ordered = sorted(pieces, key=lambda ps: -ps[1])
    out: list[tuple[str, float]] = []
    group: list[list] = []
    for piece in ordered + [[None, float("-inf")]]:
        if group and group[-1][1] - piece[1] > 5e-4:
            scores = [s for _, s in group]
            out.extend((p, round(s, 8)) for p, s in zip(sorted(p for p, _ in group), scores, strict=True))
            group = []
        group.append(piece)
    return out


def train_unigram_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.Unigram())
    # Training splits at spaces like sentencepiece, so no learned piece has an inner "▁".
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.UnigramTrainer(
        vocab_size=UNI_VOCAB_SIZE - 256,
        special_tokens=list(UNI_SPECIALS),
        unk_token="<unk>",
        max_piece_length=16,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    learned = [p for p in json.loads(tok.to_str())["model"]["vocab"] if p[0] not in UNI_SPECIALS]
    # Llama layout: specials, <0x00>..<0xFF>, learned pieces. The byte tokens score far below any
    # character path so that a literal "<0x41>" in text is spelled out, never matched as a piece.
    vocab = [(s, 0.0) for s in UNI_SPECIALS] + [(f"<0x{b:02X}>", BYTE_SCORE) for b in range(256)]
    vocab += _canonical_pieces(learned)
    final = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=True))
    final.add_special_tokens(list(UNI_SPECIALS))
    # Llama-2 ("legacy") layout: an always-added dummy "▁" and a decoder that strips one space,
    # which makes decode(encode(s)) == s even for leading spaces.
    final.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    final.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    final.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=final, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


# ---------------------------------------------------------------- models


def _common(tok) -> dict:
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return dict(
        vocab_size=len(tok), max_position_embeddings=512, hidden_size=64, intermediate_size=128,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False, initializer_range=INIT_STD,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=pad,
    )  # fmt: skip


def _seeded(seed: int, make):
    # fork_rng: building a fixture must not disturb the global RNG of the tests that use it.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make().eval()


def tiny_qwen2(tok) -> Qwen2ForCausalLM:
    return _seeded(0, lambda: Qwen2ForCausalLM(Qwen2Config(num_hidden_layers=2, **_common(tok))))


def tiny_llama(tok) -> LlamaForCausalLM:
    return _seeded(1, lambda: LlamaForCausalLM(LlamaConfig(num_hidden_layers=2, **_common(tok))))


def tiny_gemma3(tok) -> Gemma3ForCausalLM:
    # sliding_window=8 with mixed layer types, so cached decoding runs past the window early.
    # Untied, unlike real Gemma: with tied rows and the sqrt(hidden) embedding scale a random
    # model just repeats its last input token.
    cfg = Gemma3TextConfig(
        num_hidden_layers=3, sliding_window=8, head_dim=16, query_pre_attn_scalar=16,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"], **_common(tok),
    )  # fmt: skip
    return _seeded(2, lambda: Gemma3ForCausalLM(cfg))


def _mute_added_tokens(model, tok) -> None:
    # A random model would pick EOS/<unk>/<s> about once per vocab-size steps, ending or spoiling
    # greedy runs. A zero lm_head row gives logit 0, near the median: never greedy, rarely sampled.
    with torch.no_grad():
        model.get_output_embeddings().weight[sorted(tok.added_tokens_decoder)] = 0.0


def _save(model, tok, dst: Path) -> None:
    _mute_added_tokens(model, tok)
    gc, cfg = model.generation_config, model.config
    gc.bos_token_id, gc.eos_token_id, gc.pad_token_id = cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id
    model.save_pretrained(dst)
    tok.save_pretrained(dst)


# ---------------------------------------------------------------- permuted copies


def _permute_tokenizer_json(tj: dict, perm: list[int]) -> None:
    model = tj["model"]
    if model["type"] == "BPE":
        model["vocab"] = {piece: perm[i] for piece, i in model["vocab"].items()}
    elif model["type"] == "Unigram":
        new = [None] * len(model["vocab"])
        for i, entry in enumerate(model["vocab"]):
            new[perm[i]] = entry
        model["vocab"], model["unk_id"] = new, perm[model["unk_id"]]
    else:
        raise ValueError(f"cannot permute a {model['type']} tokenizer")


def _random_permutation(tj: dict, n_rows: int, seed: int) -> list[int]:
    # Added tokens keep their ids; so do embedding rows past the tokenizer's model vocab (padding).
    fixed = {t["id"] for t in tj["added_tokens"]}
    movable = [i for i in range(min(n_rows, len(tj["model"]["vocab"]))) if i not in fixed]
    order = torch.randperm(len(movable), generator=torch.Generator().manual_seed(seed)).tolist()
    perm = list(range(n_rows))
    for old, k in zip(movable, order, strict=True):
        perm[old] = movable[k]
    return perm


def _permute_rows(module, perm_t: torch.Tensor) -> None:
    # new row perm[i] = old row i; `bias` exists only for some heads.
    with torch.no_grad():
        for param in (module.weight, getattr(module, "bias", None)):
            if param is not None:
                param[perm_t] = param.clone()


def permuted_copy(src_dir: Path, dst_dir: Path, seed: int) -> list[int]:
    """Copy a saved model with its non-added token ids permuted; returns perm (old id -> new id).

    The permutation is also written to `dst_dir/permutation.json`.
    """
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    tj = json.loads((src_dir / "tokenizer.json").read_text(encoding="utf-8"))
    model = AutoModelForCausalLM.from_pretrained(src_dir)
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    perm = _random_permutation(tj, emb.weight.shape[0], seed)
    _permute_rows(emb, torch.tensor(perm))
    if head is not None and head.weight.data_ptr() != emb.weight.data_ptr():  # untied
        _permute_rows(head, torch.tensor(perm))
    dst_dir.mkdir(parents=True, exist_ok=True)
    for f in src_dir.iterdir():
        if f.is_file() and f.suffix != ".safetensors":
            shutil.copy2(f, dst_dir / f.name)
    _permute_tokenizer_json(tj, perm)
    (dst_dir / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
    (dst_dir / PERMUTATION_FILE).write_text(json.dumps(perm), encoding="utf-8")
    model.save_pretrained(dst_dir)
    return perm


def load_permutation(model_dir: Path) -> list[int]:
    return json.loads((Path(model_dir) / PERMUTATION_FILE).read_text(encoding="utf-8"))


# ---------------------------------------------------------------- build and cache


def build_all(out: Path) -> None:
    texts = corpus()
    bpe, uni = train_bpe_tokenizer(texts), train_unigram_tokenizer(texts)
    for name, make, tok in (
        ("bpe-qwen2", tiny_qwen2, bpe),
        ("uni-llama", tiny_llama, uni),
        ("uni-gemma3", tiny_gemma3, uni),
    ):
        _save(make(tok), tok, out / name)
    for name, (base, seed) in PERMUTED.items():
        permuted_copy(out / base, out / name, seed)


def fixture_dirs() -> dict[str, Path]:
    """Paths of the saved fixture models, building them on first use (a few seconds)."""
    final = CACHE_ROOT / FIXTURE_VERSION
    if not final.is_dir():
        CACHE_ROOT.mkdir(parents=True, exist_ok=True)
        # The lock saves duplicate work; the rename keeps interrupted builds invisible.
        with open(CACHE_ROOT / f"{FIXTURE_VERSION}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not final.is_dir():
                for stale in CACHE_ROOT.glob(f"{FIXTURE_VERSION}.tmp-*"):  # left by a killed build
                    shutil.rmtree(stale, ignore_errors=True)
                tmp = Path(tempfile.mkdtemp(prefix=f"{FIXTURE_VERSION}.tmp-", dir=CACHE_ROOT))
                try:
                    tmp.chmod(0o755)  # mkdtemp makes it private
                    build_all(tmp)
                    os.rename(tmp, final)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
    return {name: final / name for name in (*BASE_NAMES, *PERMUTED)}
