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
member. Solo rows: the member alone. `DeePEn-Avg`: equal weights, main model = the subset's best member
on the dev set; `DeePEn-Adapt`, `(dev weights)`: weights proportional to the dev scores
(`python -m ensemble score`, 100 qa_wikidata examples disjoint from the sample). `(Qwen-Coder main)`:
DeePEn-Avg with Qwen-Coder as the main model. `vote over fused + solos`: majority of the final numbers
of the fused answer and its members' solo answers (GSM8K only).
"""
FINDINGS = ""


def cell(by: dict, system: str) -> str:
    if system not in by:
        return "—"
    if system.startswith("solo:"):
        return f"{100 * sum(by[system].values()) / len(by[system]):.1f} ({len(by[system])})"
    base = system.removeprefix("vote+")
    members = [f"solo:{i}" for i in re.findall(r"\d", base.split(":", 1)[1])]
    if not all(m in by for m in members):
        return "—"
    n, acc, best, best_acc, wins, losses = compare(by, system, members)
    return f"{100 * acc:.1f} ({n}) **{100 * (acc - best_acc):+.1f}** {wins}/{losses}"


def quality_table() -> list[str]:
    qa = load_hits(RESULTS / "qa_wikidata.jsonl")
    gsm_path = RESULTS / "gsm8k.jsonl"
    gsm = with_votes([json.loads(x) for x in gsm_path.read_text().splitlines()]) if gsm_path.exists() else {}
    systems = sorted(set(qa) | set(gsm), key=lambda s: (not s.startswith("solo:"), s.startswith("vote+"), s))
    lines = ["| System | qa_wikidata: acc (n) **Δ best member** wins/losses | GSM8K: acc (n) **Δ** wins/losses |",
             "|---|---|---|"]
    for s in systems:
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
