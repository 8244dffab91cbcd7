"""DeePEn on the three offline default models: matrix build time and memory, step time against the members'
solo steps, the inverse search's own cost, and how far the sparse matrices are from the dense ones.

    python bench/deepen_speed.py --rebuild  # appends a JSON line to bench/results/deepen_speed.jsonl
    python bench/deepen_speed.py --memory   # DeePEn's own extra memory, in a fresh process

Build: the relative matrices over the triple's anchors, timed member by member (`--rebuild` first
removes them from the cache), and the peak RSS above the loaded models. Step: `bench/speed.py`'s
`measure` (fused and solo answers decoded interleaved in one run). Search: `align()` of DeePEn
against GaC's on the same recorded distributions.
Sparse vs dense: on real steps, the dense fp32 rows of every candidate token (the published matrix,
restricted to the rows the step touches) against our top-k rows: the relative target's total variation
and whether the emitted token is the same.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from qa_wikidata import MEMBERS, load_task  # noqa: E402
from speed import context_text, measure  # noqa: E402

from ensemble.align import make_method  # noqa: E402
from ensemble.align.deepen import DeepenOptions, deepen_step, relative_matrix  # noqa: E402
from ensemble.align.relative import anchor_ids, exact  # noqa: E402
from ensemble.align.shared import cache_dir  # noqa: E402
from ensemble.config import MemberSpec  # noqa: E402
from ensemble.decode.prompting import prompt_ids  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(models, rebuild: bool) -> dict:
    """Build (or load) each member's sparse table over the triple's anchors, timed one by one (the
    default exact rows need no build)."""
    if rebuild:
        for path in cache_dir().glob("*deepen-*"):
            path.unlink()
    space = make_method("gac", models).space
    anchors = anchor_ids(space, [m.vocab for m in models])
    before, seconds, tables = rss_mb(), [], []
    for lm, a in zip(models, anchors, strict=True):
        start = time.perf_counter()
        tables.append(relative_matrix(lm, a, DeepenOptions(rows="sparse")))
        seconds.append(round(time.perf_counter() - start, 1))
    table_mb = sum((r.values.nbytes + r.index.nbytes) / 2**20 for r in tables)
    dense_gb = sum(len(r.values) * r.anchors * 4 / 2**30 for r in tables)
    exact_mb = sum(len(a) * lm.model.get_input_embeddings().weight.shape[1] * 2 / 2**20
                   for lm, a in zip(models, anchors, strict=True))
    return {"build_s": seconds, "exact_mb": round(exact_mb), "anchors": len(anchors[0]),
            "vocab": [len(r.values) for r in tables],
            "tables_mb": round(table_mb), "dense_fp32_gb": round(dense_gb, 1),
            "peak_rss_extra_mb": round(rss_mb() - before)}


def recorded_steps(models, n: int) -> list[list[torch.Tensor]]:
    """Each member's next-token distribution after n qa_wikidata prompts (prompt end, no answer yet)."""
    prefix, sample = load_task(n)
    out = []
    with torch.inference_mode():
        for _, ex in sample:
            text = [{"role": "user", "content": prefix + ex["input"]}]
            out.append([torch.softmax(m.model(input_ids=torch.tensor([prompt_ids(m.tokenizer, text, False)]))
                                      .logits[0, -1].float(), -1) for m in models])
    return out


def search_cost(models, steps) -> dict:
    deepen, gac = make_method("deepen", models), make_method("gac", models)
    times = {}
    for name, method in (("deepen", deepen), ("gac", gac)):
        start = time.perf_counter()
        for probs in steps:
            method.align(probs, torch.ones(len(probs)))
        times[f"{name}_align_ms"] = round((time.perf_counter() - start) * 1e3 / len(steps), 2)
    return times


def fidelity(models, steps) -> dict:
    """On real steps, DeePEn's token with the published fp32 rows against ours: the default exact rows
    (bf16 cosines) and the sparse top-64 tables; and the sparse rows' total variation from the fp32 rows."""
    space = make_method("gac", models).space
    anchors = anchor_ids(space, [m.vocab for m in models])
    embs = [lm.model.get_input_embeddings().weight.detach() for lm in models]
    published = [exact(e, a, 100.0, torch.float32) for e, a in zip(embs, anchors, strict=True)]
    ours = [exact(e, a, 100.0) for e, a in zip(embs, anchors, strict=True)]
    sparse = [relative_matrix(lm, a, DeepenOptions(rows="sparse")) for lm, a in zip(models, anchors, strict=True)]
    out = {"steps": len(steps), "published_changed_main": 0, "exact_same": 0, "sparse_same": 0, "sparse_row_tv": 0.0}
    ones = torch.ones(len(models))
    for probs in steps:
        ref = int(deepen_step(published, probs, ones, DeepenOptions()).argmax())
        out["published_changed_main"] += ref != 0
        out["exact_same"] += ref == int(deepen_step(ours, probs, ones, DeepenOptions()).argmax())
        out["sparse_same"] += ref == int(deepen_step(sparse, probs, ones, DeepenOptions()).argmax())
        ids = probs[0].topk(DeepenOptions().candidates).indices
        dense = published[0].take(ids, torch.device("cpu"))[0]
        values, index = sparse[0].take(ids, torch.device("cpu"))
        approx = torch.zeros_like(dense).scatter_(1, index, values)
        approx += (1 - approx.sum(-1, keepdim=True)) / dense.shape[1]
        out["sparse_row_tv"] += float(0.5 * (approx - dense).abs().sum(-1).mean()) / len(steps)
    out["sparse_row_tv"] = round(out["sparse_row_tv"], 4)
    return out


def memory(models, steps) -> dict:
    """Current RSS above the loaded models: after building the default (exact-rows) DeePEn, and its peak
    over the steps (psutil samples; ru_maxrss would hide it under the loading peak)."""
    import psutil

    proc = psutil.Process()
    base = proc.memory_info().rss
    method = make_method("deepen", models)
    built = peak = proc.memory_info().rss
    for probs in steps:
        method.align(probs, torch.ones(len(probs)))
        peak = max(peak, proc.memory_info().rss)
    return {"exact_after_build_mb": round((built - base) / 2**20), "exact_peak_steps_mb": round((peak - base) / 2**20)}


def main() -> None:
    from ensemble.models.pool import load_models

    torch.set_num_threads(2)
    rebuild = "--rebuild" in sys.argv
    models = load_models([MemberSpec(m, dtype="bf16") for m in MEMBERS])
    if "--memory" in sys.argv:  # a fresh process: measured before anything else is allocated
        row = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        row.update(memory(models, recorded_steps(models, 12)))
        with (ROOT / "bench" / "results" / "deepen_speed.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(row)
        return
    row = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "models_rss_mb": round(rss_mb())}
    row.update(build(models, rebuild))
    steps = recorded_steps(models, 40)
    row.update(search_cost(models, steps))
    row["fidelity"] = fidelity(models, steps)
    text = context_text(models, 100)
    measure(models, "deepen", context_text(models, 20), 4, {}, 8)  # warm-up
    for method in ("deepen", "gac"):
        runs = [measure(models, method, text, 32, {}, 8) for _ in range(3)]
        rep = sorted(runs, key=lambda r: r["ratio"])[1]
        row[f"step_{method}"] = {k: rep[k] for k in ("fused", "solo", "ratio", "steps")}
        row[f"step_{method}"]["ratios"] = [round(r["ratio"], 3) for r in runs]
    row["peak_rss_mb"] = round(rss_mb())
    out = ROOT / "bench" / "results" / "deepen_speed.jsonl"
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
