"""docs/bench-calm.md's result tables and the README's CALM line, generated from the raw rows of
bench/calm_kv.py in bench/results/ (calm-kv.jsonl, calm-kv-timing.jsonl); nothing typed. Imports no torch."""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "calm-kv.jsonl"
TIMING = ROOT / "bench" / "results" / "calm-kv-timing.jsonl"
DOC = ROOT / "docs" / "bench-calm.md"
KEYS = 2000  # 400 train the composition, 200 validate, 1,400 held out
MEMBERS = {  # name: (architecture, layers, width, training steps)
    "anchor": ("llama", 4, 128, 4000),
    "augment": ("qwen2", 4, 128, 2000),
}
CANDIDATES = {"lr2e-3": (30_000, 2e-3), "lr1e-3": (30_000, 1e-3)}  # name: (steps, peak lr); chosen on validation
SETTINGS = {**CANDIDATES, "pilot": (300, 2e-3)}  # the pilot only times the stages: never chosen, never held out
SEEDS = (0, 1)
SPLITS = ("plain", "train keys", "validation keys", "held-out keys")
MODELS = ("anchor", "augment", "composed", "lora")


def jsonl(path: Path) -> list[dict]:
    return [json.loads(r) for r in path.read_text().splitlines() if r.strip()] if path.exists() else []


def validation(rows: list[dict], setting: str, seed: int = 0) -> float | None:
    got = [r for r in rows if (r["setting"], r["seed"], r["model"], r["split"]) ==
           (setting, seed, "composed", "validation keys")]
    return got[0]["correct"] / got[0]["n"] if got else None


def choose(rows: list[dict]) -> str:
    """The candidate with the best composed accuracy on seed 0's validation keys (first on ties); SystemExit
    with one line while a candidate has no validation row."""
    scores = {s: validation(rows, s) for s in CANDIDATES}
    missing = [s for s, v in scores.items() if v is None]
    if missing:
        raise SystemExit(f"error: validate every candidate at seed 0 first (missing: {', '.join(missing)}); "
                         "held-out keys are scored only for the setting chosen on validation")
    return max(scores, key=lambda s: (scores[s], -list(CANDIDATES).index(s)))


def cell(rows: list[dict]) -> str:
    """Accuracy with a 95% normal interval half-width, and n."""
    if not rows:
        return ""
    r = rows[0]
    p = r["correct"] / r["n"]
    return f"{100 * p:.1f}% ±{196 * math.sqrt(p * (1 - p) / r['n']):.1f} (n = {r['n']})"


def result_table(rows: list[dict]) -> list[str]:
    lines = ["| setting | seed | model | trained parameters | steps | " + " | ".join(SPLITS) + " |",
             "|---" * (5 + len(SPLITS)) + "|"]
    runs = sorted({(r["setting"], r["seed"]) for r in rows}, key=lambda k: (list(SETTINGS).index(k[0]), k[1]))
    for setting, seed in runs:
        for model in MODELS:
            mine = [r for r in rows if (r["setting"], r["seed"], r["model"]) == (setting, seed, model)]
            if mine:
                cells = [cell([r for r in mine if r["split"] == s]) for s in SPLITS]
                lines.append(f"| {setting} | {seed} | {model} | {mine[0]['trained_params'] or 'member'} | "
                             f"{mine[0]['steps']} | " + " | ".join(cells) + " |")
    return lines if runs else ["No run has been scored yet."]


def full_size(rows: list[dict]) -> str | None:
    """The chosen setting when its composition and LoRA baseline have held-out rows for every seed, else None."""
    try:
        chosen = choose(rows)
    except SystemExit:
        return None
    have = {(r["seed"], r["model"]) for r in rows if r["setting"] == chosen and r["split"] == "held-out keys"}
    return chosen if all((s, m) in have for s in SEEDS for m in ("composed", "lora")) else None


def status(rows: list[dict]) -> str:
    scores = {s: validation(rows, s) for s in CANDIDATES}
    chosen = ", ".join(f"{s} {'not run' if v is None else f'{100 * v:.1f}%'}" for s, v in scores.items())
    head = f"Composed accuracy on seed 0's validation keys per candidate setting: {chosen}."
    if full_size(rows):
        return head + f" Chosen: **{full_size(rows)}**; its held-out keys were scored once per seed."
    return head + (" **Not yet measured at full size** (every candidate validated, then the chosen setting's "
                   f"composition and LoRA baseline scored on held-out keys for seeds {' and '.join(map(str, SEEDS))}): "
                   "no held-out number below carries a claim until then.")


def extrapolated_hours(rates: dict[str, float]) -> tuple[float, list[str]]:
    """Machine time of the whole protocol: members and the chosen candidate for both seeds, the other
    candidates at seed 0 (composition and LoRA each), from seconds per step; and the stages not timed."""
    steps = {m: MEMBERS[m][3] * len(SEEDS) for m in MEMBERS}
    runs = sum(s for s, _ in CANDIDATES.values()) + (len(SEEDS) - 1) * max(s for s, _ in CANDIDATES.values())
    steps |= {"composed": runs, "lora": runs}
    return sum(rates[k] * n for k, n in steps.items() if k in rates) / 3600, [k for k in steps if k not in rates]


def rate(rows: list[dict], key: str) -> float | None:
    timed = [r for r in rows if key in r]
    return sum(r[key] for r in timed) / sum(r["steps"] for r in timed) if timed else None


def timing_table(rows: list[dict]) -> list[str]:
    """Seconds per step: wall (what the shared machine gave) and CPU (the process's own time, one thread:
    about the wall time on a free core)."""
    if not rows:
        return ["No chunk has been timed yet."]
    lines = ["| stage | chunks | steps measured | wall seconds per step | CPU seconds per step | load (1 min) |",
             "|---|---|---|---|---|---|"]
    wall, cpu = {}, {}
    for stage in dict.fromkeys(r["stage"] for r in rows):
        rs = [r for r in rows if r["stage"] == stage]
        wall[stage], cpu_rate = rate(rs, "seconds"), rate(rs, "cpu_seconds")
        if cpu_rate is not None:
            cpu[stage] = cpu_rate
        cpu_cell = "—" if cpu_rate is None else f"{cpu_rate:.3f}"
        lines.append(f"| {stage} | {len(rs)} | {sum(r['steps'] for r in rs)} | {wall[stage]:.3f} | {cpu_cell} | "
                     f"{statistics.mean(r['load1'] for r in rs):.1f} |")
    (wall_h, wall_missing), (cpu_h, cpu_missing) = extrapolated_hours(wall), extrapolated_hours(cpu)
    return [*lines, "", f"Whole protocol (members and the chosen setting for {len(SEEDS)} seeds, every other candidate "
            f"at seed 0; composition and LoRA baseline each), from these rates: about {wall_h:.1f} h of wall time"
            f"{untimed(wall_missing)} and {cpu_h:.1f} h of CPU time on one free core{untimed(cpu_missing)}. "
            "Evaluation (1,000 greedy answers per model and split) is not timed."]


def untimed(stages: list[str]) -> str:
    return f" (not counting {', '.join(stages)}: not timed yet)" if stages else ""


def readme_lines(rows: list[dict]) -> list[str]:
    head = "- **CALM** (`docs/bench-calm.md`): the paper's key–value arithmetic at toy scale, "
    chosen = full_size(rows)
    if chosen is None:
        return [head + "settings chosen on validation keys, held-out keys scored once for 2 seeds, against a LoRA "
                "baseline on the anchor with as many trained parameters: not yet measured at full size. The "
                "earlier single-seed figure, tuned on its held-out keys, is withdrawn."]
    parts = []
    for seed in SEEDS:
        got = {r["model"]: r for r in rows if (r["setting"], r["seed"], r["split"]) == (chosen, seed, "held-out keys")}
        parts.append(f"seed {seed}: composed {cell([got['composed']])}, LoRA {cell([got['lora']])}, anchor "
                     f"{cell([got['anchor']])}, augmenting model {cell([got['augment']])}")
    return [head + f"setting {chosen} chosen on validation keys; sums over held-out keys, " + "; ".join(parts) + "."]


def render(doc_text: str) -> str:
    """docs/bench-calm.md with its generated block rewritten from the results."""
    rows = jsonl(RESULTS)
    start, end = "<!-- generated by bench/calm_kv.py -->\n", "<!-- end bench/calm_kv.py -->"
    body = [status(rows), "", *result_table(rows), "", "### Cost", "", *timing_table(jsonl(TIMING))]
    head, rest = doc_text.split(start, 1)
    return head + start + "\n".join(body) + "\n" + end + rest.split(end, 1)[1]


def write_report() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from readme import write_block

    DOC.write_text(render(DOC.read_text()))
    write_block("calm_kv", readme_lines(jsonl(RESULTS)))
