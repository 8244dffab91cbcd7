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
from readme import write_block  # noqa: E402

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
presets/offline-default-math.yaml`: 3.3, 0.0, 16.7, so on GSM8K DeePEn's main model is Qwen-Coder in
every subset that has it, and SmolLM2 in SmolLM2 + Gemma3; `bench/gsm8k.py` names the Qwen-Coder
runs `deepen-q`). `vote over fused + solos`: majority of the final numbers of the fused answer and its
members' solo answers (GSM8K only). `(per prompt)`: the shipped default since issue 14 (`per_prompt: demos`,
ensemble/decode/demos.py): the members and main member come from the prompt's worked examples. qa_wikidata's
prompts (`input target.` lines) have no repeated cue, so there it runs as plain `unite`; GSM8K's
`Answer:` lines are its cue. The findings below also cover the four BIG-bench dev tasks of
`bench/bigbench.py` (tables in `docs/bench-bigbench.md`).

A system with no rows in `bench/results/` is listed under "Not measured" below its table.
"""
NOTES = """- **Why DeePEn keeps its best member's answers.** Its main model has the last word: the few inverse-search
  steps only re-rank tokens the main model already finds nearly as likely as its first choice
  (`docs/deepen.md`), so a weak member cannot pull it far. UniTE and GaC average every member's
  distribution, so a member far behind on a task pulls the fused answer down.
- **The relative rows are nearly flat** at tens of thousands of anchors (rows are L2-normalised before the
  x100 softmax), so top-k tables lose signal; the default computes the few candidate rows exactly each step.
- **Long answers amplify small tips.** A GSM8K solution is 60-128 tokens; every near-tie a weak member
  tips sends the rest of the chain elsewhere (the table of kept final numbers above)."""
ORACLE = "oracle"


def gsm8k_hits(rows: list[dict]) -> dict:
    """GSM8K hits per system, votes included; the `deepen-q` runs (Qwen-Coder main, the math dev set's best
    member) are DeePEn-Avg's rows there, so they share DeePEn-Avg's rows of the table."""
    return {k.replace("deepen-q:", "deepen:"): v for k, v in with_votes(rows).items()}


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
    gsm = gsm8k_hits([json.loads(x) for x in gsm_path.read_text().splitlines()]) if gsm_path.exists() else {}
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


def kept_section() -> list[str]:
    """GSM8K: on how many questions each ensemble ends on the same final number as its best member alone.
    A worked solution is 60-128 tokens, so one near-tie tipped by a weak member re-routes the rest."""
    path = RESULTS / "gsm8k.jsonl"
    if not path.exists():
        return ["(not measured yet)"]
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    final = {(r["system"].replace("deepen-q:", "deepen:"), r["id"]): r["final"] for r in rows}
    hits = gsm8k_hits(rows)
    lines = ["| System | same final number as its best member alone | its best member |", "|---|---|---|"]
    for system in sorted(x for x in hits if not x.startswith(("solo:", "vote+"))):
        members = [f"solo:{i}" for i in re.findall(r"\d", system.split(":", 1)[1])]
        if not all(m in hits for m in members):
            continue
        n, _, best, *_ = compare(hits, system, members)
        ids = set(hits[system]).intersection(*(hits[m] for m in members))
        kept = sum(final[(system, i)] == final[(best, i)] for i in ids)
        lines.append(f"| {label(system)} | {kept} of {n} | {label(best)} |")
    return lines


def deepen_runs() -> tuple[list[dict], dict, dict]:
    """bench/deepen_speed.py's rows: all, the last full speed run, the last memory run."""
    runs = [json.loads(line) for line in (RESULTS / "deepen_speed.jsonl").read_text().splitlines()]
    r = [x for x in runs if "step_deepen" in x and "fidelity" in x][-1]
    return runs, r, [x for x in runs if "exact_peak_steps_mb" in x][-1]


def speed_section() -> list[str]:
    if not (RESULTS / "deepen_speed.jsonl").exists():
        return ["(not measured yet)"]
    runs, r, mem = deepen_runs()
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


def members_of(system: str) -> list[str]:
    return [f"solo:{i}" for i in re.findall(r"\d", system.removeprefix("vote+").split(":", 1)[1])]


def name_of(system: str) -> str:
    if system == ORACLE:
        return "some member alone is right (oracle: bounds answer picking)"
    return ("vote over fused + solos, " + label(system[5:])) if system.startswith("vote+") else label(system)


def paired(by: dict, system: str) -> tuple[int, float, int, int, float]:
    """n, difference to the best member (points), wins, losses, and the standard error of that paired
    difference: sqrt(w + l - (w - l)^2 / n) / n."""
    n, acc, _, best_acc, wins, losses = compare(by, system, members_of(system))
    se = (max(wins + losses - (wins - losses) ** 2 / n, 0.0)) ** 0.5 / n if n else 0.0
    return n, 100 * (acc - best_acc), wins, losses, 100 * se


def sorted_out(by: dict) -> dict[str, list[tuple[str, float, int, int, float]]]:
    """Each ensemble with all its members measured, as (system, difference, wins, losses, standard error),
    sorted into more than two standard errors above its best member, within two, or below."""
    groups: dict[str, list] = {"above": [], "within": [], "below": []}
    for s in sorted(x for x in by if not x.startswith("solo:") and x != ORACLE and all(m in by for m in members_of(x))):
        n, d, w, l_, se = paired(by, s)
        groups["above" if d > 2 * se else "below" if d < -2 * se else "within"].append((s, d, w, l_, se, n))
    return groups


def task_findings(task: str, by: dict, expected: list[str], brief: bool = False) -> list[str]:
    """One bullet per task, every figure from `by`: members alone, the oracle, the shipped default, and each
    ensemble sorted against its best member (`brief`: counts, the best and the worst, for the README)."""
    solos = sorted(s for s in by if s.startswith("solo:"))
    alone = ", ".join(f"{label(s).removesuffix(' alone')} {100 * sum(by[s].values()) / len(by[s]):.1f}" for s in solos)
    groups = sorted_out(by)
    full = max(len(v) for v in by.values())
    trio = tuple(range(len(solos)))
    lines = [f"- **{task}** (n = {max(len(v) for v in by.values())}). Members alone: {alone}; some member right: "
             f"{100 * sum(by[ORACLE].values()) / len(by[ORACLE]):.1f}."]
    for default, what in ((f"unite-demos:{trio}", "The shipped default"), (f"unite:{trio}", "The default before it")):
        if default in by:
            n, d, w, l_, se = paired(by, default)
            lines.append(f"  {what} ({name_of(default)}): {d:+.1f} against its best member ({w} wins / "
                         f"{l_} losses, standard error {se:.1f}{'' if n == full else f'; n = {n}'}).")
        else:
            lines.append(f"  {what} ({name_of(default)}): not measured.")
    words = {"above": "More than two standard errors above their best member", "within": "Within two standard errors",
             "below": "More than two standard errors below"}
    if brief:
        every = sorted((x for g in groups.values() for x in g if x[5] == full), key=lambda x: x[1])
        count = {k: sum(x[5] == full for x in g) for k, g in groups.items()}
        if every:
            best, worst = every[-1], every[0]
            lines.append(f"  Of {len(every)} ensembles run on all {full}, {count['above']} are more than two standard "
                         f"errors above their best member, {count['within']} within, {count['below']} below. Best: "
                         f"{name_of(best[0])} {best[1]:+.1f} ({best[2]}/{best[3]}); worst: {name_of(worst[0])} "
                         f"{worst[1]:+.1f} ({worst[2]}/{worst[3]}).")
        partial = [f"{name_of(s)} {d:+.1f} ({w}/{l_}, n = {n}, SE {se:.1f})"
                   for g in groups.values() for s, d, w, l_, se, n in g if n < full]
        if partial:
            lines.append("  Run on part of the sample so far: " + "; ".join(partial) + ".")
    else:
        for key, text in words.items():
            shown = [f"{name_of(s)} {d:+.1f} ({w}/{l_}" + (f", n = {n})" if n < full else ")")
                     for s, d, w, l_, _, n in groups[key]]
            lines.append(f"  {text}: " + ("; ".join(shown) if shown else "none") + ".")
    missing = [e for e in expected if e not in by]
    if missing:
        lines.append("  Not measured: " + "; ".join(label(m) for m in missing) + ".")
    return lines


def findings(brief: bool = False) -> list[str]:
    from gsm8k import SYSTEMS
    from qa_wikidata import MEMBERS, systems

    qa = with_oracle(load_hits(RESULTS / "qa_wikidata.jsonl"))
    gsm = with_oracle(gsm8k_hits([json.loads(x) for x in (RESULTS / "gsm8k.jsonl").read_text().splitlines()]))
    return ["## What the numbers say", "",
            "Generated from the same results: a system is \"above\" or \"below\" its best member only beyond two "
            "standard errors of the paired difference; wins/losses in brackets.", "",
            *task_findings("qa_wikidata", qa, [s[0] for s in systems(len(MEMBERS))], brief),
            *task_findings("GSM8K", gsm, [s[0].replace("deepen-q:", "deepen:") for s in SYSTEMS], brief),
            *[line for path in sorted(RESULTS.glob("bigbench-*.jsonl")) for line in task_findings(
                path.stem.removeprefix("bigbench-") + " (`docs/bench-bigbench.md`)", with_oracle(bigbench_hits(path)),
                [f"unite-demos:{p}" for p in ((0, 1, 2), (0, 1), (0, 2), (1, 2))], brief)], "",
            NOTES]


def bigbench_hits(path: Path) -> dict[str, dict[int, bool]]:
    from bigbench import alias

    merged: dict[str, dict[int, bool]] = {}
    for k, v in load_hits(path).items():
        merged.setdefault(alias(k), {}).update(v)
    return merged


def dev_suite() -> dict[str, dict[str, dict[int, bool]]]:
    """Every dev-suite task's hits per system."""
    gsm = gsm8k_hits([json.loads(x) for x in (RESULTS / "gsm8k.jsonl").read_text().splitlines()])
    return {"qa_wikidata": load_hits(RESULTS / "qa_wikidata.jsonl"), "GSM8K": gsm,
            **{p.stem.removeprefix("bigbench-"): bigbench_hits(p) for p in sorted(RESULTS.glob("bigbench-*.jsonl"))}}


def acceptance() -> str:
    """Issue 14's bar for the shipped default: never more than 1 point below its best member on a dev task, and
    3 points above it where two members are within 5 points of each other alone."""
    trio, below, close, measured = "unite-demos:(0, 1, 2)", [], [], []
    suite = dev_suite()
    for task, by in suite.items():
        if trio not in by:
            continue
        n, d, w, l_, se = paired(by, trio)
        measured.append(task)
        if d < -1:
            below.append(f"{task} {d:+.1f} (SE {se:.1f}, n = {n})")
        accs = sorted(100 * sum(by[s].values()) / len(by[s]) for s in by if s.startswith("solo:"))
        if any(b - a <= 5 for a, b in zip(accs, accs[1:], strict=False)) and d < 3:
            close.append(f"{task} {d:+.1f}")
    missing = [t for t in suite if t not in measured]
    return ("  **Bar for the shipped default** (never more than 1 point below its best member; 3 above where two "
            f"members are within 5 points): measured on {len(measured)} dev tasks"
            + (f" (not yet on {', '.join(missing)})" if missing else "") + "; more than 1 below on "
            + ("; ".join(below) if below else "none") + "; short of +3 where two members are close on "
            + ("; ".join(close) if close else "none") + ".")


def readme_block() -> list[str]:
    """The README's quality and DeePEn-cost bullets (between the `bench/quality.py` markers)."""
    _, r, mem = deepen_runs()
    quality = ["  " + line for line in findings(brief=True)[4:-2]]
    return ["- **Quality** (`docs/bench-quality.md`: BIG-bench qa_wikidata 3-shot and GSM8K 2-shot; "
            "`docs/bench-bigbench.md`: four more BIG-bench dev tasks, 3-shot; fixed samples, greedy, bf16):", *quality,
            acceptance(),
            f"- **DeePEn's cost** (same doc): its fused step is {r['step_deepen']['ratio']:.2f}× the members' summed "
            f"solo steps on 2 CPU cores (GaC {r['step_gac']['ratio']:.2f}× in the same run); `align()` takes "
            f"{r['deepen_align_ms']:.0f} ms of it. It adds {mem['exact_after_build_mb']} MB after load and "
            f"{mem['exact_peak_steps_mb']} MB at peak; the published dense fp32 matrices would need "
            f"{r['dense_fp32_gb']} GB."]


def main() -> None:
    doc = ROOT / "docs" / "bench-quality.md"
    text = "\n".join([HEAD, "## Quality", "", *quality_table(), "",
                      "## GSM8K: how far the ensembles stray from their best member", "", *kept_section(), "",
                      "## DeePEn speed and memory", "", *speed_section(), "", *findings()]) + "\n"
    doc.write_text(text)
    write_block("quality", readme_block())
    print(text)


if __name__ == "__main__":
    main()
