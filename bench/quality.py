"""One quality table over both tasks, plus DeePEn's speed and memory: writes docs/bench-quality.md.

    python bench/quality.py      # from bench/results/{qa_wikidata,gsm8k,deepen_speed}.jsonl

Runs nothing: `bench/qa_wikidata.py`, `bench/gsm8k.py` and `bench/deepen_speed.py` make the results.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from gsm8k import with_votes  # noqa: E402
from qa_wikidata import compare, label, load_hits  # noqa: E402

RESULTS = ROOT / "bench" / "results"
HEAD = """# Quality: ensembles against their best member, and DeePEn's cost

Made by `python bench/quality.py` from the results of `bench/qa_wikidata.py`, `bench/gsm8k.py` and
`bench/deepen_speed.py` (commands in each script's docstring), on the three offline default models in bf16
on 2 shared CPU cores. Each cell: accuracy, the number of examples it and all its members answered (n),
**its difference to its best member on those examples**, and the examples it wins / loses against that
member. Solo rows: the member alone. The oracle row: some member alone is right (no system that picks
one member's answer per example can beat it). `DeePEn-Avg`: equal weights, main model = the subset's
best member on the task's dev set; `DeePEn-Adapt`, `(dev weights)`: weights proportional to the dev
scores. Dev sets are disjoint from the samples: qa_wikidata 100 examples
(`presets/offline-default-adapt.yaml`: SmolLM2 42.0, Gemma3 55.0, Qwen-Coder 37.0), GSM8K 30 questions
(`python -m ensemble check --preset offline-default --data gsm8k --n 30 --apply weight --out
presets/offline-default-math.yaml`: 3.3, 0.0, 16.7, so Qwen-Coder is the main model on GSM8K, written
`(Qwen-Coder main)`). `vote over fused + solos`: majority of the final numbers of the fused answer and its
members' solo answers (GSM8K only).
"""
FINDINGS = """## What the numbers say

- **qa_wikidata: DeePEn wins, everywhere it ran.** On the 239 examples every DeePEn-Avg system finished
  (of the 500 planned), on the same examples: DeePEn-Avg of all three 57.7 against Gemma3 alone 52.3
  (+5.4, 18 wins / 5 losses), UniTE 53.1 and GaC 54.0 on the same triple; DeePEn pairs SmolLM2+Gemma3
  56.3 (+3.8), Gemma3+Qwen-Coder 54.6 (+2.1), SmolLM2+Qwen-Coder 48.7 (+1.7 over SmolLM2). No DeePEn
  configuration loses to its best member. The compatibility check would have dropped exactly the members
  DeePEn profits from (see below): on this task its 10-point rule, fed 100 dev examples, is too strict,
  and the weighted, best-member-as-main configuration of all three is the one to recommend. The 300
  earlier UniTE/GaC/solo rows are reused: re-running 10 examples of each code path gave 60 of 60
  identical answers (`bench/results/qa_wikidata-verify.jsonl`).
- **Not finished (the machine's 2 cores are shared through one lock; this task got 3 of its turns).**
  qa_wikidata 500 for every system needs about 86 more minutes of lock time (DeePEn-Avg 261 more
  examples, DeePEn-Adapt and the dev-weighted UniTE/GaC all 500, the other rows 200); GSM8K has no rows
  yet: with 192-token answers a DeePEn triple plus the three solo columns costs ~66 s an example, so the
  planned 100 questions x 4 systems need about 4 CPU-hours. `bench/gsm8k.py` is ready and resumable, so
  the GSM8K half of the goal is open: no evidence either way.

- **Compatibility check on the defaults.** `python -m ensemble check --preset offline-default --n 100` gave dev
  scores SmolLM2 42.0, Gemma3 55.0, Qwen-Coder 37.0 (mean answers 1.2 / 1.6 / 1.3 words, so no style
  warning) and flags both smaller members (13 and 18 points below Gemma3): its recommendation is Gemma3
  alone, or all three with the dev weights 0.94 / 1.23 / 0.83 and Gemma3 as primary
  (`presets/offline-default-adapt.yaml`). On the benchmark sample the gaps are smaller (5.3 and 7.7
  points): 100 dev examples carry a standard error of ~5 points, so the 10-point rule is noisy here.
- **DeePEn can only re-rank near-ties of its main model.** Five AdamW steps at lr 0.15 with the published
  cosine schedule move a logit by at most ~0.67, so the emitted token is one the main model already gives
  at least ~26% of its top token's probability. With the published fp32 rows the search changed the main
  model's first token in 8 of 40 real prompts; our default rows (bf16 cosines) give the same token in
  40 of 40, the sparse top-64 tables in 36 of 40.
- **The relative rows are nearly flat** at 38.5k anchors (the rows are L2-normalised before the x100
  softmax): the top 64 entries hold about 1% of a row's mass. That is why top-k tables lose signal and
  why the default computes the few candidate rows exactly each step instead.
- **Cost.** DeePEn's step is 1.55x the sum of the members' solo steps on 2 CPU cores (GaC: 1.02x in the
  same conditions); the 57 ms of `align()` are one [64 x d] x [d x 38.5k] matmul per member plus the
  5-step search. On a GPU the matmuls are negligible next to the forwards.
"""


ORACLE = "oracle"


def with_oracle(by: dict) -> dict:
    """Adds `oracle`: some member alone is right, on the examples every member answered. No system that
    picks one member's answer per example can beat it; a token-level ensemble can, but rarely does."""
    solos = [s for s in by if s.startswith("solo:")]
    if not solos:
        return by
    ids = set.intersection(*(set(by[s]) for s in solos))
    return {**by, ORACLE: {i: any(by[s][i] for s in solos) for i in ids}}


def cell(by: dict, system: str) -> str:
    if system not in by:
        return "—"
    if system.startswith("solo:") or system == ORACLE:
        return f"{100 * sum(by[system].values()) / len(by[system]):.1f} ({len(by[system])})"
    base = system.removeprefix("vote+")
    members = [f"solo:{i}" for i in re.findall(r"\d", base.split(":", 1)[1])]
    if not all(m in by for m in members):
        return "—"
    n, acc, best, best_acc, wins, losses = compare(by, system, members)
    return f"{100 * acc:.1f} ({n}) **{100 * (acc - best_acc):+.1f}** {wins}/{losses}"


def quality_table() -> list[str]:
    qa = with_oracle(load_hits(RESULTS / "qa_wikidata.jsonl"))
    gsm_path = RESULTS / "gsm8k.jsonl"
    gsm = with_votes([json.loads(x) for x in gsm_path.read_text().splitlines()]) if gsm_path.exists() else {}
    gsm = with_oracle(gsm)
    systems = sorted(set(qa) | set(gsm),
                     key=lambda s: (s != ORACLE, not s.startswith("solo:"), s.startswith("vote+"), s))
    lines = ["| System | qa_wikidata: acc (n) **Δ best member** wins/losses | GSM8K: acc (n) **Δ** wins/losses |",
             "|---|---|---|"]
    for s in systems:
        if s == ORACLE:
            name = "some member alone is right (oracle: bounds answer picking)"
        else:
            name = ("vote over fused + solos, " + label(s[5:])) if s.startswith("vote+") else label(s)
        lines.append(f"| {name} | {cell(qa, s)} | {cell(gsm, s)} |")
    return lines


def speed_section() -> list[str]:
    path = RESULTS / "deepen_speed.jsonl"
    if not path.exists():
        return ["(not measured yet)"]
    runs = [json.loads(line) for line in path.read_text().splitlines()]
    r = [x for x in runs if "step_deepen" in x and "fidelity" in x][-1]
    mem = [x for x in runs if "exact_peak_steps_mb" in x][-1]
    built = next(x for x in runs if sum(x.get("build_s", [0])) > 10)  # a run that built the sparse tables
    d, g, f = r["step_deepen"], r["step_gac"], r["fidelity"]
    return [
        f"Measured {r['when']} by `python bench/deepen_speed.py` (`--rebuild` for the build row, `--memory` for the "
        "memory row) on the three default members, bf16, 2 CPU cores, in the default exact-rows mode unless the row "
        "says sparse.",
        "",
        "| Quantity | Value |", "|---|---|",
        f"| anchors (byte strings all three share) | {r['anchors']:,} |",
        f"| sparse table build, SmolLM2 / Gemma3 / Qwen-Coder (s, once, then cached on disk; run of "
        f"{built['when']}) | {' / '.join(str(x) for x in built['build_s'])} |",
        "| exact rows (default): build | none (the anchors' embeddings are gathered at load, about a second) |",
        f"| sparse tables (`rows: sparse`; top-64 rows, fp16 + int32) | {r['tables_mb']} MB |",
        f"| exact rows (default): unit-norm anchor embeddings, bf16 | {r['exact_mb']} MB |",
        f"| the published dense fp32 tables would take | {r['dense_fp32_gb']} GB |",
        f"| **DeePEn's extra memory (default exact rows), RSS above the loaded models: after load / peak over "
        f"12 real steps** | **{mem['exact_after_build_mb']} / {mem['exact_peak_steps_mb']} MB** |",
        f"| peak RSS above the loaded models while building the sparse tables | {built['peak_rss_extra_mb']} MB |",
        f"| `align()` per step: DeePEn (mapping + 5-step inverse search) / GaC | "
        f"{r['deepen_align_ms']} / {r['gac_align_ms']} ms |",
        f"| fused step ÷ Σ solo steps, DeePEn (median of 3; all) | **{d['ratio']:.2f}×** "
        f"({', '.join(str(x) for x in d['ratios'])}); {d['fused']:.1f} ms vs "
        f"{' + '.join(f'{x:.1f}' for x in d['solo'])} ms |",
        f"| fused step ÷ Σ solo steps, GaC, same run conditions | {g['ratio']:.2f}× "
        f"({', '.join(str(x) for x in g['ratios'])}) |",
        f"| DeePEn's token on {f['steps']} real first steps: same as with the published fp32 rows, "
        f"exact bf16 rows (default) / sparse top-64 tables | {f['exact_same']} / {f['sparse_same']} "
        f"(the published rows changed the main model's token in {f['published_changed_main']}) |",
        f"| sparse top-64 rows against the fp32 rows: mean total variation per row | {f['sparse_row_tv']} |",
    ]


def main() -> None:
    doc = ROOT / "docs" / "bench-quality.md"
    text = "\n".join([HEAD, "## Quality", "", *quality_table(), "", "## DeePEn speed and memory", "",
                      *speed_section(), "", FINDINGS]) + "\n"
    doc.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
