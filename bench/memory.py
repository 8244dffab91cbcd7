"""Estimated (from config.json + safetensors header, before loading) against measured memory, per format.

    python bench/memory.py                 # fixtures + the three offline models, fp32/bf16/8bit/4bit
    python bench/memory.py --table         # only rewrite docs/bench-memory.md from the results file

Rows are appended to bench/results/memory.jsonl, one per (model, format); a rerun skips rows already there, so
the run can be stopped and resumed. Measured weights: every parameter, buffer and bitsandbytes quantization
state tensor of the loaded model (ensemble.models.memory.measure), right after loading and again after the prefill.
Measured KV cache: the tensors of a DynamicCache after a prefill of --tokens positions. RSS growth: the
process's resident memory after loading minus before, on this CPU machine (it includes allocator slack and
load-time buffers, so it is not what the estimate models).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import torch  # noqa: E402
from readme import write_block  # noqa: E402  (bench/readme.py)
from transformers import DynamicCache  # noqa: E402

from ensemble.config import MemberSpec  # noqa: E402
from ensemble.models.hub import member_facts  # noqa: E402
from ensemble.models.loading import load_model  # noqa: E402
from ensemble.models.locate import locate  # noqa: E402
from ensemble.models.memory import kv_bytes, measure, weight_bytes  # noqa: E402
from ensemble.models.offline import MANIFEST  # noqa: E402

FORMATS = ("fp32", "bf16", "8bit", "4bit")
OUT = ROOT / "bench" / "results" / "memory.jsonl"
DOC = ROOT / "docs" / "bench-memory.md"
MIB = 2**20


def models() -> list[tuple[str, str]]:
    from tests.fixtures import BASE_NAMES, fixture_dirs

    dirs = fixture_dirs()
    return [(f"fixture:{n}", str(dirs[n])) for n in BASE_NAMES] + [(f"offline:{m.name}",) * 2 for m in MANIFEST]


def row(label: str, model: str, dtype: str, tokens: int) -> dict:
    facts = member_facts(MemberSpec(model), *locate(model))
    gc.collect()
    rss = psutil.Process().memory_info().rss
    start = time.perf_counter()
    lm = load_model(MemberSpec(model, dtype=dtype), "cpu")
    load_s = time.perf_counter() - start
    grown = psutil.Process().memory_info().rss - rss
    loaded = measure(lm.model)
    n = min(tokens, lm.context)
    cache = DynamicCache()
    with torch.inference_mode():
        lm.model(input_ids=torch.arange(3, 3 + n)[None] % len(lm.vocab), past_key_values=cache, use_cache=True)
    kv = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    return {"model": label, "dtype": dtype, "weights_est": weight_bytes(facts, dtype), "weights": loaded,
            "weights_after_forward": measure(lm.model),
            "kv_est": kv_bytes(facts, dtype, n, caches=1), "kv": kv, "tokens": n, "rss_growth": grown,
            "load_s": round(load_s, 2)}


def table(rows: list[dict]) -> str:
    lines = ["| model | format | weights est. MiB | measured MiB | error | after a forward MiB | KV est. MiB | "
             "measured MiB | error | RSS growth MiB | load s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r["model"], r["dtype"], mib(r["weights_est"]), mib(r["weights"]), err(r["weights_est"], r["weights"]),
                 mib(r["weights_after_forward"]), mib(r["kv_est"]), mib(r["kv"]), err(r["kv_est"], r["kv"]),
                 f"{r['rss_growth'] / MIB:.0f}", str(r["load_s"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mib(n: int) -> str:
    return f"{n / MIB:.2f}"


def err(estimated: int, measured: int) -> str:
    return f"{(estimated / measured - 1) * 100:+.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256, help="prefill length for the KV-cache measurement")
    parser.add_argument("--table", action="store_true", help="only rewrite the doc table from the results")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    done = [json.loads(line) for line in OUT.read_text().splitlines()] if OUT.exists() else []
    if not args.table:
        have = {(r["model"], r["dtype"]) for r in done}
        for label, model in models():
            for dtype in FORMATS:
                if (label, dtype) in have:
                    continue
                r = row(label, model, dtype, args.tokens)
                print(json.dumps(r), flush=True)
                with OUT.open("a") as f:
                    f.write(json.dumps(r) + "\n")
                done.append(r)
    doc = DOC.read_text()
    begin, end = doc.index("<!-- table:begin -->"), doc.index("<!-- table:end -->")
    DOC.write_text(doc[:begin] + "<!-- table:begin -->\n" + table(done) + "\n" + doc[end:])
    write_block("memory", [readme_line(done)])


def readme_line(done: list[dict]) -> str:
    """The README's memory line, from the same rows: the worst relative error of the weight estimate, and
    whether every KV estimate was exact."""
    worst = max(abs(r["weights_est"] - r["weights"]) / r["weights"] for r in done)
    kv_exact = all(r["kv_est"] == r["kv"] for r in done)
    formats = sorted({r["dtype"] for r in done}, key=FORMATS.index)
    line = (f"- **Memory estimates** (`docs/bench-memory.md`): estimated weights within {100 * worst:.2g}% of measured "
            f"for {len({r['model'] for r in done})} models (the tiny fixtures and the offline trio) at "
            f"{', '.join(formats)}; KV cache {'exact' if kv_exact else 'not always exact: see the table'}.")
    return line


if __name__ == "__main__":
    main()
