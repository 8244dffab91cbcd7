"""docs/bench-fusellm.md and the README's FuseLLM line, generated from the raw rows in bench/results/ (nothing
typed): fusellm-heldout.jsonl (per held-out block nats and bytes of each arm), fusellm-fusion.jsonl (teacher
weights), fusellm-timing.jsonl (chunk times) and fusellm-map-speed.jsonl. Imports no torch."""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ensemble.fusellm.stats import paired_bootstrap  # noqa: E402

# The acceptance run (issue 18): arm -> (fusion rule, λ). The control's rule is unused (λ = 1: CLM only).
ARMS = {"control": ("mince", 1.0), "mince": ("mince", 0.9), "avgce": ("avgce", 0.9),
        "distill-qwen": ("distill", 0.9)}
TRAIN_BLOCKS, HELD_OUT_BLOCKS, BLOCK_CHARS, CORPUS_SEEDS, BATCH = 1000, 200, 512, (0, 1), 4
DOC = ROOT / "docs" / "bench-fusellm.md"
TEMPLATE = Path(__file__).with_name("fusellm_report.md")


def jsonl(path: Path) -> list[dict]:
    return [json.loads(r) for r in path.read_text().splitlines() if r.strip()] if path.exists() else []


def by_arm(rows: list[dict]) -> dict[tuple, dict[str, dict]]:
    """(train_blocks, corpus_seed, arm) -> {block: row}."""
    out: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        out.setdefault((r["train_blocks"], r["corpus_seed"], r["arm"]), {})[r["block"]] = r
    return out


def bpb(blocks: dict[str, dict]) -> float:
    return sum(r["nats"] for r in blocks.values()) / sum(r["bytes"] for r in blocks.values()) / math.log(2)


def compare(a: dict[str, dict], b: dict[str, dict]) -> tuple[int, float, float, float]:
    """(blocks both scored, Δ bpb a − b, low, high) over the blocks both scored."""
    common = sorted(set(a) & set(b))
    nbytes = [a[k]["bytes"] for k in common]
    if nbytes != [b[k]["bytes"] for k in common]:
        raise ValueError("paired arms must share the target's tokenizer (same bytes per block)")
    return len(common), *paired_bootstrap([a[k]["nats"] for k in common], [b[k]["nats"] for k in common], nbytes)


def reading(low: float, high: float) -> str:
    return "lower" if high < 0 else "higher" if low > 0 else "within noise"


def full_size(groups: dict) -> bool:
    return all(len(groups.get((TRAIN_BLOCKS, s, arm), {})) >= HELD_OUT_BLOCKS for s in CORPUS_SEEDS for arm in ARMS)


def arm_table(groups: dict) -> list[str]:
    lines = ["| training blocks | corpus seed | arm | steps | held-out blocks | bpb | Δ vs control (bpb) | "
             "95% interval | reading |", "|---|---|---|---|---|---|---|---|---|"]
    def order(key: tuple) -> tuple:
        n, seed, arm = key
        return n, str(seed), list(ARMS).index(arm) if arm in ARMS else -1

    for (n, seed, arm), blocks in sorted(groups.items(), key=lambda kv: order(kv[0])):
        steps = next(iter(blocks.values()))["steps"]
        cells = ["", "", ""]
        control = groups.get((n, seed, "control"))
        if arm in ARMS and arm != "control" and control:
            k, delta, low, high = compare(blocks, control)
            cells = [f"{delta:+.4f}", f"[{low:+.4f}, {high:+.4f}] (n = {k})", reading(low, high)]
        who = "untrained target" if arm == "base" else arm
        lines.append(f"| {n} | {'—' if seed is None else seed} | {who} | {steps} | {len(blocks)} | {bpb(blocks):.4f} | "
                     + " | ".join(cells) + " |")
    return lines


def noise_table(groups: dict) -> list[str]:
    """Data-draw noise: the same arm trained on corpus seed 1's blocks against seed 0's, on the same held-out."""
    lines = ["| training blocks | arm | Δ seed 1 − seed 0 (bpb) | 95% interval | reading |", "|---|---|---|---|---|"]
    for n in sorted({k[0] for k in groups}):
        for arm in ARMS:
            a, b = groups.get((n, 1, arm)), groups.get((n, 0, arm))
            if a and b:
                k, delta, low, high = compare(a, b)
                lines.append(f"| {n} | {arm} | {delta:+.4f} | [{low:+.4f}, {high:+.4f}] (n = {k}) | "
                             f"{reading(low, high)} |")
    return lines if len(lines) > 2 else ["No arm has both corpus seeds yet."]


def fusion_table(rows: list[dict]) -> list[str]:
    lines = ["| training blocks | corpus seed | rule | mean teacher weight | share of target positions aligned |",
             "|---|---|---|---|---|"]
    for r in rows:
        weights = ", ".join(f"{t} {w:.2f}" for t, w in zip(r["teachers"], r["mean_weight"], strict=True))
        aligned = ", ".join(f"{t} {a:.2f}" for t, a in zip(r["teachers"][1:], r["mean_aligned"], strict=True))
        lines.append(f"| {r['train_blocks']} | {r['corpus_seed']} | {r['rule']} | {weights} | {aligned} |")
    return lines if rows else ["No fusion has run yet."]


def full_units(stage: str, what: str) -> int:
    """Units (blocks or steps) of one stage in the whole acceptance run, both corpus seeds."""
    if stage == "prepare":
        return TRAIN_BLOCKS * len(CORPUS_SEEDS)
    if stage == "train":
        return math.ceil(TRAIN_BLOCKS / BATCH) * len(CORPUS_SEEDS)
    return HELD_OUT_BLOCKS * (1 if what == "base" else len(CORPUS_SEEDS))


def timing_table(rows: list[dict]) -> list[str]:
    """Seconds per unit, per stage and model/arm: wall (what the shared machine gave) and CPU (the process's
    own time on one thread: about the wall time on a free core); the whole run extrapolated from each."""
    if not rows:
        return ["No chunk has been timed yet."]
    lines = ["| stage | model / arm | chunks | units measured | wall s per unit | CPU s per unit | load (1 min) | "
             "acceptance run, wall (h) | acceptance run, CPU (h) |", "|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["stage"], r["what"]), []).append(r)
    wall_total = cpu_total = 0.0
    for (stage, what), rs in groups.items():
        units = sum(r["units"] for r in rs)
        wall, cpu = sum(r["seconds"] for r in rs) / units, sum(r["cpu_seconds"] for r in rs) / units
        wall_h, cpu_h = wall * full_units(stage, what) / 3600, cpu * full_units(stage, what) / 3600
        wall_total, cpu_total = wall_total + wall_h, cpu_total + cpu_h
        lines.append(f"| {stage} | {what} | {len(rs)} | {units} | {wall:.2f} | {cpu:.2f} | "
                     f"{statistics.mean(r['load1'] for r in rs):.1f} | {wall_h:.1f} | {cpu_h:.1f} |")
    stages = {("prepare", m) for m in ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "gemma-3-270m")}
    stages |= {("train", a) for a in ARMS} | {("eval", a) for a in ("base", *ARMS)}
    missing = sorted(" ".join(s) for s in stages - set(groups))
    note = f"; not timed yet: {', '.join(missing)}" if missing else ""
    return [*lines, "", f"Sum of the timed stages for the whole acceptance run (both corpus seeds): about "
            f"{wall_total:.1f} h at the measured wall rates, {cpu_total:.1f} h of CPU time (one free core){note}. "
            "Map and fuse take minutes and are not counted."]


def map_table(rows: list[dict]) -> list[str]:
    lines = ["| Source → SmolLM2 | source vocab | exact | MinED | bucketed (s) | naive estimate (s) | "
             "naive agrees |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['source']} | {r['source_vocab']} | {r['exact']} | {r['mined']} | {r['bucketed_s']} | "
                     f"{r['naive_estimate_s']} ({1000 * r['naive_s_per_token']:.1f} ms/token) | {r['naive_agree']} |")
    return lines


def status(groups: dict) -> str:
    if full_size(groups):
        return (f"**Full size:** every arm has {TRAIN_BLOCKS} training blocks on corpus seeds "
                f"{' and '.join(map(str, CORPUS_SEEDS))}, scored on {HELD_OUT_BLOCKS} held-out blocks.")
    return (f"**Not yet measured at full size** ({TRAIN_BLOCKS} training blocks × {len(CORPUS_SEEDS)} corpus seeds × "
            f"{len(ARMS)} arms, {HELD_OUT_BLOCKS} held-out blocks). Rows below with fewer training blocks, steps or "
            "held-out blocks are pilots or unfinished chunks: they show the pipeline and its cost, and carry no claim.")


def readme_lines(groups: dict) -> list[str]:
    head = "- **FuseLLM** (`docs/bench-fusellm.md`): "
    if not full_size(groups):
        return [head + f"not yet measured at full size ({TRAIN_BLOCKS} training blocks × 2 corpus seeds × 4 arms: "
                "CLM-only control, MinCE, AvgCE, distillation from Qwen-Coder alone); the pipeline, the paired "
                "intervals and the measured cost per chunk are there. The earlier 24-block result is withdrawn."]
    parts = []
    for seed in CORPUS_SEEDS:
        control = groups[(TRAIN_BLOCKS, seed, "control")]
        for arm in list(ARMS)[1:]:
            _, delta, low, high = compare(groups[(TRAIN_BLOCKS, seed, arm)], control)
            parts.append(f"{arm} seed {seed} {delta:+.4f} [{low:+.4f}, {high:+.4f}] ({reading(low, high)})")
    return [head + f"held-out bits per byte against the same-data CLM-only control, {TRAIN_BLOCKS} training blocks, "
            f"95% paired bootstrap intervals over {HELD_OUT_BLOCKS} held-out blocks: " + "; ".join(parts) + "."]


def render(results: Path) -> tuple[str, list[str]]:
    groups = by_arm(jsonl(results / "fusellm-heldout.jsonl"))
    text = TEMPLATE.read_text().format(
        status=status(groups), arms="\n".join(arm_table(groups)), noise="\n".join(noise_table(groups)),
        fusion="\n".join(fusion_table(jsonl(results / "fusellm-fusion.jsonl"))),
        timing="\n".join(timing_table(jsonl(results / "fusellm-timing.jsonl"))),
        maps="\n".join(map_table(jsonl(results / "fusellm-map-speed.jsonl"))),
        train_blocks=TRAIN_BLOCKS, held_out=HELD_OUT_BLOCKS, block_chars=BLOCK_CHARS)
    return text, readme_lines(groups)


def write_report(results: Path) -> None:
    from readme import write_block

    text, lines = render(results)
    DOC.write_text(text)
    write_block("fusellm", lines)
    print(text)
