"""What per-prompt members cost: the trio's first token with and without scoring the worked examples.

    python bench/demos_cost.py --prompts 12       # appends to bench/results/demos-cost.jsonl
    python bench/bigbench.py --report             # quotes its summary in docs/bench-bigbench.md

Each prompt is a BIG-bench dev task's 3-shot prompt with its shots drawn afresh (a different seed per prompt),
so no score is reused; every member's prompt cache is cleared before each run. One token is decoded, so the
time is the prefill (plus, with scoring, its log-probabilities on the answers and the first step's one-token
forward from the stored cache). Off and on alternate, in one process, on the same prompts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bigbench import DATA, gold, render, system_config  # noqa: E402

from ensemble.config import SamplingConfig  # noqa: E402

OUT = ROOT / "bench" / "results" / "demos-cost.jsonl"
TASKS = ("sports_understanding", "hindu_knowledge", "anachronisms", "word_unscrambling")


def prompts(n: int) -> list[str]:
    out = []
    for k in range(n):
        task = json.loads((DATA / f"{TASKS[k % len(TASKS)]}.json").read_text())
        ex = random.Random(1000 + k).sample(task["examples"], 4)
        out.append(task.get("task_prefix", "") + "".join(render(task, e, gold(e)[0]) for e in ex[:3])
                   + render(task, ex[3], None))
    return out


def measure(n: int) -> None:
    from ensemble.decode.engine import Ensemble
    from ensemble.models.pool import load_models

    base = dataclasses.replace(system_config("unite:(0, 1, 2)"), sampling=SamplingConfig(max_new_tokens=1))
    models = load_models(base.members)
    ensembles = {mode: Ensemble(models, dataclasses.replace(base, per_prompt=mode)) for mode in ("off", "demos")}
    with OUT.open("a") as f:
        for k, text in enumerate(prompts(n)):
            for mode in ("off", "demos") if k % 2 == 0 else ("demos", "off"):
                for m in models:
                    m.prompts.clear()
                start = time.perf_counter()
                list(ensembles[mode].stream([{"role": "user", "content": text}]))
                f.write(json.dumps({"prompt": k, "mode": mode, "seconds": round(time.perf_counter() - start, 4),
                                    "bytes": len(text.encode())}) + "\n")
            f.flush()
            print(f"{k + 1}/{n}", file=sys.stderr, flush=True)


def summary() -> str:
    rows = [json.loads(line) for line in OUT.read_text().splitlines()]
    by = {(r["prompt"], r["mode"]): r["seconds"] for r in rows}
    ratios = [by[k, "demos"] / by[k, "off"] for k, mode in by if mode == "off" and (k, "demos") in by]
    off = statistics.median(by[k, "off"] for k, mode in by if mode == "off")
    return (f"Scoring the worked examples costs {100 * (statistics.median(ratios) - 1):+.1f}% of the trio's prefill "
            f"(median of {len(ratios)} fresh 3-shot prompts, range {100 * (min(ratios) - 1):+.1f}% to "
            f"{100 * (max(ratios) - 1):+.1f}%; the prefill alone took a median {off:.2f} s; "
            "`python bench/demos_cost.py`).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=0)
    args = parser.parse_args()
    if args.prompts:
        measure(args.prompts)
    print(summary())


if __name__ == "__main__":
    main()
