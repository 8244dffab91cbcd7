"""DeePEn on the three offline default models: matrix build time and memory, step time against the members'
solo steps, the inverse search's own cost, and how far the sparse matrices are from the dense ones.

    python bench/deepen_speed.py --rebuild  # appends a JSON line to bench/results/deepen_speed.jsonl

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
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from qa_wikidata import MEMBERS, load_task  # noqa: E402
from speed import context_text, measure  # noqa: E402

from ensemble.align import make_method  # noqa: E402
from ensemble.align.deepen import DeepenOptions, inverse_search, relative_matrix  # noqa: E402
from ensemble.config import MemberSpec  # noqa: E402
from ensemble.prompting import prompt_ids  # noqa: E402
from ensemble.relative import Relative, anchor_ids, dense_rows  # noqa: E402
from ensemble.shared import cache_dir  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(models, rebuild: bool) -> dict:
    """Build (or load) each member's matrix over the triple's anchors, timed one by one."""
    if rebuild:
        for path in cache_dir().glob("*deepen-*"):
            path.unlink()
    space = make_method("gac", models).space
    anchors = anchor_ids(space, [m.vocab for m in models])
    before, seconds, tables = rss_mb(), [], []
    for lm, a in zip(models, anchors, strict=True):
        start = time.perf_counter()
        tables.append(relative_matrix(lm, a, DeepenOptions()))
        seconds.append(round(time.perf_counter() - start, 1))
    table_mb = sum((r.values.nbytes + r.index.nbytes) / 2**20 for r in tables)
    dense_gb = sum(len(r.values) * r.anchors * 4 / 2**30 for r in tables)
    return {"build_s": seconds, "anchors": len(anchors[0]), "vocab": [len(r.values) for r in tables],
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
            method.align(probs)
        times[f"{name}_align_ms"] = round((time.perf_counter() - start) * 1e3 / len(steps), 2)
    return times


def dense_at(lm, anchors: torch.Tensor, ids: torch.Tensor) -> Relative:
    """The published fp32 rows, for `ids` only (indexed by position in `ids`)."""
    emb = lm.model.get_input_embeddings().weight.detach()
    return Relative(dense_rows(emb[ids], F.normalize(emb[anchors].float(), dim=-1), 100.0), None, len(anchors))


def sparse_vs_dense(models, steps) -> dict:
    method = make_method("deepen", models)
    anchors = anchor_ids(method.space, [m.vocab for m in models])
    opt, m = DeepenOptions(), DeepenOptions().candidates
    tv, same, changed, changed_same = [], 0, 0, 0
    for probs in steps:
        tops = [p.topk(m) for p in probs]
        dense = [dense_at(lm, a, t.indices) for lm, a, t in zip(models, anchors, tops, strict=True)]
        local = torch.arange(m)
        q_dense = sum(d.mix(local, t.values.double()) for d, t in zip(dense, tops, strict=True)) / len(models)
        q_sparse = method.target(probs, list(range(len(models))))
        tv.append(0.5 * float((q_dense - q_sparse).abs().sum()))
        main = tops[0]
        exact = int(inverse_search(dense[0], local, main.values.double(), q_dense, opt).argmax())
        ours = int(inverse_search(method.relative[0], main.indices, main.values.double(), q_sparse, opt).argmax())
        same += exact == ours
        if exact != 0:
            changed += 1
            changed_same += exact == ours
    return {"steps": len(steps), "target_tv_mean": round(sum(tv) / len(tv), 4), "target_tv_max": round(max(tv), 4),
            "same_token": same, "dense_changed_main": changed, "of_those_same": changed_same}


def main() -> None:
    from ensemble.loading import load_models

    torch.set_num_threads(2)
    rebuild = "--rebuild" in sys.argv
    models = load_models([MemberSpec(m, dtype="bf16") for m in MEMBERS])
    row = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "models_rss_mb": round(rss_mb())}
    row.update(build(models, rebuild))
    steps = recorded_steps(models, 40)
    row.update(search_cost(models, steps))
    row["sparse_vs_dense"] = sparse_vs_dense(models, steps)
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
