"""Time and memory to build the alignment tables for the three offline default models, from scratch.

    python bench/alignment.py

Builds, in a fresh cache directory: each member's byte vocabulary, the union space (every distinct byte
string, 314k entries), and UniTE's first-token tables; then loads the union back from the disk cache.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from ensemble.models.offline import MANIFEST, model_dir  # noqa: E402


class Member:
    """What the alignment needs from a loaded model: its tokenizer, byte vocabulary and encoder."""

    def __init__(self, tokenizer, vocab):
        from ensemble.decode.prompting import Continuation

        self.tokenizer, self.vocab, self.encode = tokenizer, vocab, Continuation(tokenizer, vocab)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "bench-alignment.md")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    from ensemble.align.shared import union_space
    from ensemble.align.unite import first_token_table
    from ensemble.align.vocab import build_byte_vocab

    tokenizers = [AutoTokenizer.from_pretrained(model_dir(m.name)) for m in MANIFEST]
    os.environ["ENSEMBLE_CACHE"] = tempfile.mkdtemp()  # tables only; the models are already loaded
    proc = psutil.Process()
    gc.collect()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    vocabs = [build_byte_vocab(t) for t in tokenizers]
    t1 = time.perf_counter()
    space = union_space(vocabs)
    t2 = time.perf_counter()
    members = [Member(t, v) for t, v in zip(tokenizers, vocabs, strict=True)]
    t3 = time.perf_counter()
    for i, m in enumerate(members):
        first_token_table(m, space, i)
    t4 = time.perf_counter()
    extra = (proc.memory_info().rss - rss0) / 2**20
    t5 = time.perf_counter()
    union_space(vocabs)
    t6 = time.perf_counter()
    rows = [
        ("byte vocabularies (49k + 262k + 152k ids)", t1 - t0),
        (f"union space ({len(space):,} byte strings)", t2 - t1),
        ("UniTE first-token tables (batched Rust encoding)", t4 - t3),
        ("**total table building**", (t1 - t0) + (t2 - t1) + (t4 - t3)),
        ("union space, loaded back from the disk cache", t6 - t5),
    ]
    doc = ["# Alignment tables: build time and memory", "",
           "Made by `python bench/alignment.py` on 2 CPU cores, for SmolLM2 + Gemma-3 + Qwen2.5-Coder.", "",
           "| Step | Seconds |", "|---|---|", *[f"| {name} | {sec:.2f} |" for name, sec in rows], "",
           f"Resident memory added while building (tables plus the encoders' tokenizer copies): {extra:.0f} MiB.",
           f"(Copying the three tokenizers for continuation encoding, part of loading a model: {t3 - t2:.2f} s.)"]
    args.doc.write_text("\n".join(doc) + "\n")
    print("\n".join(doc))


if __name__ == "__main__":
    main()
