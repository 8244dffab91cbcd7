"""Quality on BIG-bench qa_wikidata: each member alone, each method on each pair, and all three.

    python -m ensemble score --preset offline-default --n 100      # dev scores -> presets/offline-default-adapt.yaml
    python bench/qa_wikidata.py --n 500 --max-seconds 540          # resumable; repeat until done
    python bench/qa_wikidata.py --n 500 --report                   # rewrite docs/bench-qa-wikidata.md

Fixed sample (seed 0), a fixed 3-shot prefix drawn from outside the sample, plain-completion prompts for
every member, greedy answers cut at a newline or a period (at most 8 tokens). A hit: the normalised answer
starts with a normalised gold target. The dev examples that `score` uses are the last ones of the same
order, so they never overlap the sample. Results are appended to a JSONL file as they come, so an
interrupted run resumes where it stopped.

Systems: `unite`, `gac`, `unite-w0` (append-only re-sync) with equal weights; `deepen` (DeePEn-Avg: equal
weights, the subset's best dev member as main model); `*-adapt` (weights from the dev scores, the best dev
member as primary: DeePEn-Adapt for `deepen`); `unite-demos` (per-prompt members from the prompt's worked
examples, decode/demos.py: this format has none, so it runs as `unite`).
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig  # noqa: E402
from ensemble.decode.engine import Ensemble  # noqa: E402
from ensemble.decode.events import FUSED, Finished  # noqa: E402
from ensemble.models.offline import MANIFEST  # noqa: E402
from ensemble.presets import load_preset  # noqa: E402
from ensemble.tune.scoring import ANSWER, adapt, fewshot_prefix, hit, seeded_order, targets_of  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "bigbench" / "qa_wikidata.json"
MEMBERS = tuple(f"offline:{m.name}" for m in MANIFEST)  # SmolLM2, Gemma-3, Qwen2.5-Coder
SHORT = {"smollm2-135m-instruct": "SmolLM2", "gemma-3-270m": "Gemma3", "qwen2.5-coder-0.5b-instruct": "Qwen-Coder"}
METHODS = ("unite", "gac", "unite-w0", "deepen", "deepen-adapt", "unite-adapt", "gac-adapt", "unite-demos")
SCORED = ROOT / "presets" / "offline-default-adapt.yaml"  # written by `python -m ensemble score`


def load_task(n: int):
    examples, order = seeded_order(DATA)
    return fewshot_prefix(examples, order), [(i, examples[i]) for i in order[3:3 + n]]


def gold(example) -> list[str]:
    return list(targets_of(example))


def dev_scores(preset: Path = SCORED) -> list[float]:
    return [m.score for m in load_preset(str(preset)).members]


def systems(n_members: int):
    """(key, member indices, method, with solo)"""
    out = []
    everyone = tuple(range(n_members))
    for method in METHODS:
        out.append((f"{method}:{everyone}", everyone, method, method == METHODS[0]))
        for pair in itertools.combinations(everyone, 2):
            out.append((f"{method}:{pair}", pair, method, False))
    return out


def build(models, system, sampling: SamplingConfig = ANSWER, main: int | None = None,
          scored: Path = SCORED) -> Ensemble:
    """`main`: this member (index into MEMBERS) is primary, weights equal, no dev scores needed.
    `scored`: the preset holding the dev scores (`python -m ensemble score`)."""
    _, idx, method, _ = system
    name, _, variant = method.partition("-")
    weights, primary = [1.0] * len(idx), 0
    if main is not None:
        primary = idx.index(main)
    elif name == "deepen" or variant == "adapt":
        scores = dev_scores(scored)
        scored_weights, primary = adapt([scores[i] for i in idx])
        weights = scored_weights if variant == "adapt" else weights
    members = tuple(MemberSpec(models[i].spec.model, weight=w, dtype="bf16") for i, w in zip(idx, weights, strict=True))
    config = EnsembleConfig(
        members=members, method=name, prompt_format="plain", primary=primary, sampling=sampling,
        resync_window=0 if variant == "w0" else 8, per_prompt="demos" if variant == "demos" else "off")
    return Ensemble([models[i] for i in idx], config)


def run_example(ensemble, prefix, example, system):
    key, idx, method, solo = system
    messages = [{"role": "user", "content": prefix + example["input"]}]
    start = time.perf_counter()
    answers = {}
    for event in ensemble.stream(messages, solo=solo):
        if isinstance(event, Finished):
            name = key if event.stream == FUSED else f"solo:{idx[event.stream]}"
            answers[name] = event.text
    return answers, time.perf_counter() - start


def evaluate(n: int, out: Path, patterns: list[str], max_seconds: float) -> None:
    """Examples in sample order; for each, every selected system not yet in `out`. Stops after
    max_seconds (a chunk), to be resumed by the next call."""
    from ensemble.models.pool import load_models

    start = time.perf_counter()
    prefix, sample = load_task(n)
    done = set()
    if out.exists():
        done = {(r["id"], r["run"]) for r in map(json.loads, out.read_text().splitlines())}
    chosen = [s for s in systems(len(MEMBERS)) if any(fnmatch.fnmatch(s[0], p) for p in patterns)]
    models = load_models([MemberSpec(m, dtype="bf16") for m in MEMBERS])
    ensembles = {}
    with out.open("a") as f:
        for k, (i, ex) in enumerate(sample):
            for system in chosen:
                if (i, system[0]) in done:
                    continue
                if time.perf_counter() - start > max_seconds:
                    print(f"stopped at example {k + 1}/{len(sample)} after {max_seconds:.0f} s", file=sys.stderr)
                    return
                if system not in ensembles:
                    ensembles[system] = build(models, system)
                answers, seconds = run_example(ensembles[system], prefix, ex, system)
                for name, text in answers.items():
                    row = {"id": i, "system": name, "answer": text, "hit": hit(text, gold(ex)),
                           "seconds": round(seconds, 3), "run": system[0]}
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                f.flush()
            print(f"{k + 1}/{len(sample)}", file=sys.stderr, flush=True)


LABELS = {"-w0": " (append-only)", "deepen-adapt": "DeePEn-Adapt", "deepen": "DeePEn-Avg", "-adapt": " (dev weights)",
          "-q": " (Qwen-Coder main)", "-demos": " (per prompt)"}


def label(system: str) -> str:
    if system.startswith("solo:"):
        return SHORT[MEMBERS[int(system[5:])].removeprefix("offline:")] + " alone"
    method, idx = system.split(":", 1)
    names = [SHORT[MEMBERS[int(i)].removeprefix("offline:")] for i in re.findall(r"\d", idx)]
    for key, text in LABELS.items():
        method = method.replace(key, text)
    return f"{method}: " + " + ".join(names)


def load_hits(out: Path) -> dict[str, dict[int, bool]]:
    by: dict[str, dict[int, bool]] = {}
    for r in map(json.loads, out.read_text().splitlines()):
        by.setdefault(r["system"], {})[r["id"]] = r["hit"]
    return by


def compare(by: dict, system: str, members: list[str]) -> tuple[int, float, str, float, int, int]:
    """On the examples the system and all its members answered: n, accuracy, best member, its accuracy,
    wins and losses against it."""
    ids = set(by[system]).intersection(*(by[m] for m in members))
    acc = {s: sum(by[s][i] for i in ids) / max(len(ids), 1) for s in [system, *members]}
    best = max(members, key=acc.__getitem__)
    wins = sum(by[system][i] and not by[best][i] for i in ids)
    losses = sum(by[best][i] and not by[system][i] for i in ids)
    return len(ids), acc[system], best, acc[best], wins, losses


def report(out: Path, doc: Path, n: int) -> None:
    by = load_hits(out)
    solos = sorted(s for s in by if s.startswith("solo:"))
    common = set.intersection(*(set(by[s]) for s in solos))
    lines = [
        "# qa_wikidata: ensembles against their members", "",
        f"Made by `python bench/qa_wikidata.py --n {n}` (in chunks, then `--report`), on the three offline default",
        "models in bf16, 2 CPU cores. Fixed sample (seed 0), 3-shot prefix, plain-completion prompts, greedy, answer",
        "cut at a newline or a period. Each row is scored on the examples that it and all its members answered",
        f"(`n`); the standard error of a score near 50% is about {100 * (0.25 / max(len(common), 1)) ** 0.5:.1f}"
        f" points at n = {len(common)}. Wins / losses count the examples where exactly one of the system and its",
        "best member is right. `(append-only)`: `resync_window: 0`. `DeePEn-Avg`: equal weights, main model = the",
        "subset's best member on the dev set; `DeePEn-Adapt` and `(dev weights)`: weights from the dev scores",
        "(`python -m ensemble score`, 100 dev examples disjoint from the sample).", "",
        "| System | n | Accuracy | vs its best member | wins / losses |", "|---|---|---|---|---|",
    ]
    for s in solos:
        lines.append(f"| {label(s)} | {len(common)} | {100 * sum(by[s][i] for i in common) / len(common):.1f} | | |")
    for s in sorted(x for x in by if not x.startswith("solo:")):
        members = [f"solo:{i}" for i in re.findall(r"\d", s.split(":", 1)[1])]
        count, acc, best, best_acc, wins, losses = compare(by, s, members)
        lines.append(f"| {label(s)} | {count} | {100 * acc:.1f} | {100 * (acc - best_acc):+.1f} ({label(best)}) | "
                     f"{wins} / {losses} |")
    missing = [label(s[0]) for s in systems(len(MEMBERS)) if s[0] not in by]
    lines += ["", "Not measured: " + "; ".join(missing) + "."] if missing else []
    doc.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "qa_wikidata.jsonl")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "bench-qa-wikidata.md")
    parser.add_argument("--systems", nargs="+", default=["*"], help="run keys to run (glob), e.g. 'deepen*'")
    parser.add_argument("--max-seconds", type=float, default=float("inf"), help="stop after this long (resumable)")
    parser.add_argument("--report", action="store_true", help="only rewrite the doc from saved results")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.report:
        evaluate(args.n, args.out, args.systems, args.max_seconds)
    report(args.out, args.doc, args.n)


if __name__ == "__main__":
    main()
