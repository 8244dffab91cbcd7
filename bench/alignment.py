"""Time and memory to build the alignment tables for the three offline default models, from scratch.

    python bench/alignment.py             # measure, append to bench/results/alignment.jsonl, write the doc
    python bench/alignment.py --report    # only rewrite docs/bench-alignment.md and the README line

Builds, in a fresh cache directory: each member's byte vocabulary, the union space (every distinct byte
string, 314k entries), and UniTE's first-token tables; then loads the union back from the disk cache.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from readme import write_block  # noqa: E402  (bench/readme.py)

from ensemble.models.offline import MANIFEST, model_dir  # noqa: E402

OUT = ROOT / "bench" / "results" / "alignment.jsonl"


class Member:
    """What the alignment needs from a loaded model: its tokenizer, byte vocabulary and encoder."""

    def __init__(self, tokenizer, vocab):
        from ensemble.decode.prompting import Continuation

        self.tokenizer, self.vocab, self.encode = tokenizer, vocab, Continuation(tokenizer, vocab)


def measure() -> dict:
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
    return {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "vocab_ids": [len(v.pieces) for v in vocabs],
            "union": len(space), "vocab_s": round(t1 - t0, 3), "union_s": round(t2 - t1, 3),
            "copy_s": round(t3 - t2, 3), "first_token_s": round(t4 - t3, 3), "reload_s": round(t6 - t5, 3),
            "extra_mib": round(extra), "cpus": os.cpu_count()}


def report(r: dict, doc_path: Path) -> None:
    build = r["vocab_s"] + r["union_s"] + r["first_token_s"]
    ids = " + ".join(f"{n // 1000}k" for n in r["vocab_ids"])
    rows = [(f"byte vocabularies ({ids} ids)", r["vocab_s"]),
            (f"union space ({r['union']:,} byte strings)", r["union_s"]),
            ("UniTE first-token tables (batched Rust encoding)", r["first_token_s"]),
            ("**total table building**", build), ("union space, loaded back from the disk cache", r["reload_s"])]
    doc = ["# Alignment tables: build time and memory", "",
           f"Made by `python bench/alignment.py` ({r['when']}, {r['cpus']} CPU cores, shared with other jobs) for "
           "SmolLM2 + Gemma-3 + Qwen2.5-Coder, from the last row of `bench/results/alignment.jsonl`.", "",
           "| Step | Seconds |", "|---|---|", *[f"| {name} | {sec:.2f} |" for name, sec in rows], "",
           f"Resident memory added while building (tables plus the encoders' tokenizer copies): {r['extra_mib']} MiB.",
           f"(Copying the three tokenizers for continuation encoding, part of loading a model: {r['copy_s']:.2f} s.)"]
    doc_path.write_text("\n".join(doc) + "\n")
    print("\n".join(doc))
    write_block("alignment", [readme_line(r)])


def readme_line(r: dict) -> str:
    build = r["vocab_s"] + r["union_s"] + r["first_token_s"]
    return (f"- **Alignment tables** (`docs/bench-alignment.md`): built from scratch for the trio in {build:.1f} s, "
            f"adding about {r['extra_mib'] / 1024:.2f} GiB of memory; the union loads back from the disk cache in "
            f"{r['reload_s']:.1f} s.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "bench-alignment.md")
    parser.add_argument("--report", action="store_true", help="only rewrite the doc from the last saved row")
    args = parser.parse_args()
    if not args.report:
        with OUT.open("a") as f:
            f.write(json.dumps(measure()) + "\n")
    report(json.loads(OUT.read_text().splitlines()[-1]), args.doc)


if __name__ == "__main__":
    main()
