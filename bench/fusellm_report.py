"""docs/bench-fusellm.md from the saved results of `python -m ensemble.fusellm` and bench/fusellm.py."""

from __future__ import annotations

import json
from pathlib import Path


def jsonl(path: Path) -> list[dict]:
    return [json.loads(r) for r in path.read_text().splitlines()] if path.exists() else []


def label(model: str) -> str:
    parts = Path(model).parts
    return parts[-2] if parts[-1] == "model" else model


def qa_scores(rows: list[dict]) -> dict[str, tuple[float, int]]:
    by: dict[str, list[bool]] = {}
    for r in rows:
        by.setdefault(r["model"], []).append(r["hit"])
    return {m: (100 * sum(h) / len(h), len(h)) for m, h in by.items()}


def main_table(work: Path, results: Path) -> list[str]:
    evals = jsonl(work / "eval.jsonl")
    qa = qa_scores(jsonl(results / "fusellm-qa.jsonl"))
    control = {label(r["model"]).split("-s")[-1]: r["all"] for r in evals if "control" in label(r["model"])}
    hits: dict[str, dict[int, bool]] = {}
    for row in jsonl(results / "fusellm-qa.jsonl"):
        hits.setdefault(row["model"], {})[row["id"]] = row["hit"]
    controls = {label(r["model"]).split("-s")[-1]: r["model"] for r in evals if "control" in label(r["model"])}
    lines = ["| Model | held-out bpb | code | prose | fused − control (bpb) | qa_wikidata (n) | qa wins / losses "
             "vs control |", "|---|---|---|---|---|---|---|"]
    for r in evals:
        name = label(r["model"])
        seed = name.split("-s")[-1]
        delta = f"{r['all'] - control[seed]:+.4f}" if "fused" in name and seed in control else ""
        score = "{:.1f} ({})".format(*qa[r["model"]]) if r["model"] in qa else "not run"
        wl = ""
        if "fused" in name and r["model"] in hits and controls.get(seed) in hits:
            f, c = hits[r["model"]], hits[controls[seed]]
            wl = f"{sum(f[i] and not c[i] for i in f)} / {sum(c[i] and not f[i] for i in f)}"
        lines.append(f"| {name} | {r['all']:.4f} | {r['code']:.4f} | {r['prose']:.4f} | {delta} | {score} | {wl} |")
    return lines


def map_table(results: Path) -> list[str]:
    lines = ["| Source → SmolLM2 | source vocab | exact | MinED | bucketed (s) | naive estimate (s) | "
             "naive agrees |", "|---|---|---|---|---|---|---|"]
    for r in jsonl(results / "fusellm-map-speed.jsonl"):
        lines.append(f"| {r['source']} | {r['source_vocab']} | {r['exact']} | {r['mined']} | {r['bucketed_s']} | "
                     f"{r['naive_estimate_s']} ({1000 * r['naive_s_per_token']:.1f} ms/token) | {r['naive_agree']} |")
    return lines


def train_table(work: Path) -> list[str]:
    lines = ["| Run | steps | first-step loss | last-step loss | last CLM | last fusion |", "|---|---|---|---|---|---|"]
    for run in sorted((work / "runs").iterdir()) if (work / "runs").exists() else []:
        rows = jsonl(run / "log.jsonl")
        if rows:
            a, b = rows[0], rows[-1]
            lines.append(f"| {run.name} | {len(rows)} | {a['loss']:.4f} | {b['loss']:.4f} | {b['clm']:.4f} | "
                         f"{b['fusion']:.4f} |")
    return lines


def verdict(work: Path) -> str:
    evals = {label(r["model"]): r["all"] for r in jsonl(work / "eval.jsonl")}
    out = []
    for seed in ("0", "1"):
        fused, control = evals.get(f"fused-mince-s{seed}"), evals.get(f"control-s{seed}")
        if fused is None or control is None:
            out.append(f"- seed {seed}: not finished")
            continue
        word = "beats" if fused < control else "does **not** beat"
        out.append(f"- seed {seed}: fused {fused:.4f} vs control {control:.4f} bpb: the fused target {word} "
                   f"the control ({fused - control:+.4f} bpb, {100 * (fused / control - 1):+.2f}%)")
    return "\n".join(out)


def engine_agreement(results: Path, target: str) -> str:
    """Share of the base target's batched answers equal to its solo answers in bench/qa_wikidata.py's run."""
    mine = {r["id"]: r["answer"].strip() for r in jsonl(results / "fusellm-qa.jsonl") if r["model"] == target}
    engine = {r["id"]: r["answer"].strip() for r in jsonl(results / "qa_wikidata.jsonl") if r["system"] == "solo:0"}
    both = set(mine) & set(engine)
    same = sum(mine[i] == engine[i] for i in both)
    return f"{same}/{len(both)}"


def run_section(work: Path, results: Path) -> str:
    config = json.loads((work / "config.json").read_text())
    fused = json.loads((work / "fused-mince.json").read_text())
    c = config["corpus"]
    teachers = ", ".join(f"{t} {w:.2f}" for t, w in zip(fused["teachers"], fused["mean_weight"], strict=True))
    aligned = ", ".join(f"{t} {a:.2f}" for t, a in zip(fused["teachers"][1:], fused["mean_aligned"], strict=True))
    return "\n".join([
        f"### `{work.name}`: {c['train_blocks']} training blocks of ~{c['block_chars']} characters, "
        f"{c['held_out_blocks']} held-out blocks", "", verdict(work), "", *main_table(work, results), "",
        f"MinCE teacher weight, mean over blocks: {teachers}. Share of target positions carrying a source's "
        f"distribution after DTW (the rest: one-hot on the gold token): {aligned}.", "", *train_table(work), ""])


def write_report(works: list[Path], results: Path, doc: Path) -> None:
    template = (Path(__file__).parent / "fusellm_report.md").read_text()
    target = json.loads((works[0] / "config.json").read_text())["target"]
    text = template.format(runs="\n".join(run_section(w, results) for w in works if (w / "eval.jsonl").exists()),
                           maps="\n".join(map_table(results)), agreement=engine_agreement(results, target))
    doc.write_text(text)
    print(text)
