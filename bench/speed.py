"""Fused step time against the sum of the members' solo step times, measured in the same run.

    python bench/speed.py                      # three offline default models, bf16, 100 and 1000 tokens

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

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig  # noqa: E402
from ensemble.engine import generate_stream  # noqa: E402
from ensemble.events import FUSED, Finished  # noqa: E402

MEMBERS = ("offline:smollm2-135m-instruct", "offline:gemma-3-270m", "offline:qwen2.5-coder-0.5b-instruct")


def context_text(models, n_tokens: int) -> str:
    """Python source from the standard library, cut so the first member's prompt has about n tokens."""
    source = (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text()
    ids = models[0].tokenizer(source, add_special_tokens=False)["input_ids"][:n_tokens]
    return models[0].tokenizer.decode(ids)


def measure(models, method: str, text: str, new_tokens: int, options: dict) -> dict:
    config = EnsembleConfig(members=tuple(m.spec for m in models), method=method, options=options,
                            prompt_format="plain", sampling=SamplingConfig(max_new_tokens=new_tokens))
    start = time.perf_counter()
    done = {e.stream: e for e in generate_stream(models, config, [{"role": "user", "content": text}], solo=True)
            if isinstance(e, Finished)}
    fused = done[FUSED].stats
    solo = [done[i].stats for i in range(len(models))]
    solo_sum = sum(s.ms_per_step for s in solo)
    return {"fused": fused.ms_per_step, "solo": [s.ms_per_step for s in solo], "ratio": fused.ms_per_step / solo_sum,
            "prefill": fused.prefill_ms, "steps": fused.steps, "fed": fused.fed_per_step,
            "consulted": fused.consulted, "wall": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "bench-speed.md")
    args = parser.parse_args()
    from ensemble.loading import load_models

    models = load_models([MemberSpec(m, dtype="bf16") for m in MEMBERS])
    setups = [("unite", {}), ("gac", {}), ("gac", {"threshold": 0.5})]
    rows, by_ctx = [], {}
    for ctx in args.contexts:
        text = context_text(models, ctx)
        for method, options in setups:
            runs = [measure(models, method, text, args.new_tokens, options) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in ("fused", "ratio", "prefill")}
            best = min(runs, key=lambda r: abs(r["ratio"] - med["ratio"]))
            name = method + (f" (gate {options['threshold']})" if options else "")
            by_ctx[(name, ctx)] = med["fused"]
            rows.append(f"| {name} | {ctx} | {med['fused']:.1f} | {' + '.join(f'{s:.1f}' for s in best['solo'])} "
                        f"= {sum(best['solo']):.1f} | **{med['ratio']:.2f}×** | {med['prefill']:.0f} | "
                        f"{' / '.join(f'{f:.2f}' for f in best['fed'])} | "
                        f"{' / '.join(f'{c:.2f}' for c in best['consulted'])} | {best['steps']} |")
            print(rows[-1], flush=True)
    names = sorted({n for n, _ in by_ctx})
    lo, hi = min(args.contexts), max(args.contexts)
    growth = [f"| {n} | {by_ctx[(n, hi)] / by_ctx[(n, lo)]:.2f}× |" for n in names if (n, lo) in by_ctx]
    doc = [
        "# Speed: the fused step against the members' solo steps", "",
        f"Made by `python bench/speed.py --repeats {args.repeats} --new-tokens {args.new_tokens}` on the three offline",
        "default models (SmolLM2-135M, Gemma-3-270M, Qwen2.5-Coder-0.5B) in bf16, on 2 CPU cores, batch 1.",
        "Each row decodes the fused answer and the three solo answers interleaved in one run, so the ratio",
        "compares them under the same machine load. Medians over the repeats; per-member columns come from the",
        "run closest to the median ratio. `fed/step` is the mean number of ids each member ran per step",
        "(SmolLM2 / Gemma / Qwen): 1.00 would mean every member only ever feeds the new token.",
        "`consulted` is the fraction of steps each member's forward ran (GaC gating skips the others).", "",
        "| Method | Context (tokens) | Fused ms/step | Σ solo ms/step | Fused ÷ Σ solo | Fused prefill ms | "
        "fed/step | consulted | steps |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        f"Fused step time at {hi} tokens of context against {lo}:", "",
        "| Method | ratio |", "|---|---|", *growth,
    ]
    args.doc.write_text("\n".join(doc) + "\n")
    print("\n".join(doc))


if __name__ == "__main__":
    main()
