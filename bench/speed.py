"""Fused step time against the sum of the members' solo step times, measured in the same run.

    python bench/speed.py                      # three offline default models, bf16, 100 and 1000 tokens
    python bench/speed.py --side-by-side       # fused + every solo answer against fused alone (bench/side.py)

Each row is one `generate_stream(..., solo=True)` call: the fused answer and every member's solo answer
are decoded interleaved, step by step, so they share the same machine conditions. The ratio
fused ms/step ÷ Σ solo ms/step is what the ensemble costs beyond running its members; 1.0 means no
overhead at all. Prefill (the first step) is excluded from ms/step and reported apart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import side  # noqa: E402  (bench/side.py, next to this file)

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig  # noqa: E402
from ensemble.decode.engine import generate_stream  # noqa: E402
from ensemble.decode.events import FUSED, Finished  # noqa: E402
from ensemble.models.offline import MANIFEST  # noqa: E402

MEMBERS = tuple(f"offline:{m.name}" for m in MANIFEST)  # SmolLM2, Gemma-3, Qwen2.5-Coder


def context_text(models, n_tokens: int) -> str:
    """Python source from the standard library, cut so the first member's prompt has about n tokens."""
    source = (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text()
    ids = models[0].tokenizer(source, add_special_tokens=False)["input_ids"][:n_tokens]
    return models[0].tokenizer.decode(ids)


def measure(models, method: str, text: str, new_tokens: int, options: dict, window: int) -> dict:
    config = EnsembleConfig(members=tuple(m.spec for m in models), method=method, options=options,
                            prompt_format="plain", sampling=SamplingConfig(max_new_tokens=new_tokens),
                            resync_window=window)
    for m in models:  # every run pays its full prefill: no prompt keys/values reused from the last run
        m.prompts.clear()
    start = time.perf_counter()
    events = generate_stream(models, config, [{"role": "user", "content": text}], solo=True, ride_along=False)
    done = {e.stream: e for e in events if isinstance(e, Finished)}  # solo answers run every forward themselves
    fused = done[FUSED].stats
    solo = [done[i].stats for i in range(len(models))]
    solo_sum = sum(s.ms_per_step for s in solo)
    return {"fused": fused.ms_per_step, "solo": [s.ms_per_step for s in solo], "ratio": fused.ms_per_step / solo_sum,
            "prefill": fused.prefill_ms, "steps": fused.steps, "fed": fused.fed_per_step,
            "cropped": fused.cropped_per_step,
            "consulted": fused.consulted, "wall": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "bench-speed.md")
    parser.add_argument("--side-by-side", action="store_true", help="only the side-by-side rows (bench/side.py)")
    args = parser.parse_args()
    from ensemble.models.pool import load_models

    models = load_models([MemberSpec(m, dtype="bf16") for m in MEMBERS])
    if args.side_by_side:
        side.run(models, context_text(models, args.contexts[0]), args.new_tokens, args.repeats)
        side.write_doc(args.doc)
        return
    setups = [("unite", {}, 8), ("unite", {}, 0), ("gac", {}, 8), ("gac", {"threshold": 0.5}, 8)]
    measure(models, "unite", context_text(models, 20), 4, {}, 8)  # warm-up: first forwards, kernels, tables
    rows, by_ctx = [], {}
    for ctx in args.contexts:
        text = context_text(models, ctx)
        for method, options, window in setups:
            runs = [measure(models, method, text, args.new_tokens, options, window) for _ in range(args.repeats)]
            ratios = sorted(r["ratio"] for r in runs)
            rep = min(runs, key=lambda r: abs(r["ratio"] - statistics.median(ratios)))  # the median run
            name = method + (f" (gate {options['threshold']})" if options else "")
            name += "" if window else " (append-only)"
            by_ctx[(name, ctx)] = (rep["fused"], sum(rep["solo"]), rep["prefill"])
            rows.append(f"| {name} | {ctx} | {rep['fused']:.1f} | {' + '.join(f'{s:.1f}' for s in rep['solo'])} "
                        f"= {sum(rep['solo']):.1f} | **{rep['ratio']:.2f}×** "
                        f"({', '.join(f'{r:.2f}' for r in ratios)}) | "
                        f"{rep['prefill']:.0f} | {' / '.join(f'{f:.2f}' for f in rep['fed'])} | "
                        f"{' / '.join(f'{f:.2f}' for f in rep['cropped'])} | "
                        f"{' / '.join(f'{c:.2f}' for c in rep['consulted'])} | {rep['steps']} |")
            print(rows[-1], flush=True)
    names = sorted({n for n, _ in by_ctx})
    lo, hi = min(args.contexts), max(args.contexts)
    growth = []
    for n in names:
        (f_lo, s_lo, _), (f_hi, s_hi, p_hi) = by_ctx[(n, lo)], by_ctx[(n, hi)]
        growth.append(f"| {n} | {f_hi / f_lo:.2f}× | {s_hi / s_lo:.2f}× | {p_hi / f_hi:.1f}× |")
    doc = [
        "# Speed: the fused step against the members' solo steps", "",
        f"Made by `python bench/speed.py --repeats {args.repeats} --new-tokens {args.new_tokens}` on the three offline",
        "default models (SmolLM2-135M, Gemma-3-270M, Qwen2.5-Coder-0.5B) in bf16, on 2 CPU cores, batch 1.",
        "Each row decodes the fused answer and the three solo answers interleaved in one run, so the ratio",
        "compares them under the same machine load. Each row shows the run with the median ratio; the ratios",
        "of all repeats follow in brackets. Prompt keys/values are not reused between runs here, so the",
        "prefill column is a full prefill of every member. `fed/step` is the mean number of ids each member",
        "ran per step (SmolLM2 / Gemma / Qwen): 1.00 would mean every member only ever feeds the new token.",
        "`cropped/step` is the mean number of cached positions a re-sync threw away (a re-tokenization that",
        "changed earlier ids).",
        "`consulted` is the fraction of steps each member's forward ran (GaC gating skips the others).", "",
        "| Method | Context (tokens) | Fused ms/step | Σ solo ms/step | Fused ÷ Σ solo | Fused prefill ms | "
        "fed/step | cropped/step | consulted | steps |",
        "|---|---|---|---|---|---|---|---|---|---|", *rows, "",
        f"Step time at {hi} tokens of context against {lo}. The members' own steps grow with the context",
        "(attention over more positions): compare the fused growth with theirs. The last column is",
        f"what recomputing the {hi}-token context would cost per step (a full prefill, as the published code",
        "does for non-primary members) against the cached fused step:", "",
        "| Method | fused step growth | Σ solo step growth | full prefill ÷ cached fused step |",
        "|---|---|---|---|", *growth,
    ]
    args.doc.write_text("\n".join(doc) + "\n")
    side.write_doc(args.doc)  # the side-by-side section, from its own results file
    print(args.doc.read_text())


if __name__ == "__main__":
    main()
