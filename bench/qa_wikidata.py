"""Quality on BIG-bench qa_wikidata: each member alone, each method on each pair, and all three.

    python bench/qa_wikidata.py --n 300            # the three offline default models, bf16
    python bench/qa_wikidata.py --n 300 --report   # rewrite docs/bench-qa-wikidata.md from the saved results

Fixed sample (seed 0), a fixed 3-shot prefix drawn from outside the sample, plain-completion prompts for
every member, greedy answers cut at a newline or a period (at most 8 tokens). A hit: the normalised answer
starts with a normalised gold target. Results are appended to a JSONL file as they come, so an interrupted
run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig  # noqa: E402
from ensemble.engine import Ensemble  # noqa: E402
from ensemble.events import FUSED, Finished  # noqa: E402
from ensemble.offline import MANIFEST  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "bigbench" / "qa_wikidata.json"
MEMBERS = tuple(f"offline:{m.name}" for m in MANIFEST)  # SmolLM2, Gemma-3, Qwen2.5-Coder
SHORT = {"smollm2-135m-instruct": "SmolLM2", "gemma-3-270m": "Gemma3", "qwen2.5-coder-0.5b-instruct": "Qwen-Coder"}
METHODS = ("unite", "gac", "unite-w0")  # -w0: resync_window 0 (append-only re-sync, no re-tokenization)


def load_task(n: int, shots: int = 3):
    examples = json.loads(DATA.read_text())["examples"]
    order = list(range(len(examples)))
    random.Random(0).shuffle(order)
    fewshot = [examples[i] for i in order[:shots]]
    prefix = "".join(f"{e['input']} {gold(e)[0]}.\n" for e in fewshot)
    return prefix, [(i, examples[i]) for i in order[shots:shots + n]]


def gold(example) -> list[str]:
    t = example["target"]
    return [t] if isinstance(t, str) else list(t)


def normalize(text: str) -> str:
    text = text.lower().strip()
    text = "".join(c for c in text if c not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def hit(answer: str, targets: list[str]) -> bool:
    a = normalize(answer)
    return bool(a) and any(a.startswith(normalize(t)) for t in targets if normalize(t))


def systems(n_members: int):
    """(key, member indices, method, with solo)"""
    out = []
    everyone = tuple(range(n_members))
    for method in METHODS:
        out.append((f"{method}:{everyone}", everyone, method, method == METHODS[0]))
        for pair in itertools.combinations(everyone, 2):
            out.append((f"{method}:{pair}", pair, method, False))
    return out


def build(models, system) -> Ensemble:
    _, idx, method, _ = system
    name, _, window = method.partition("-w")
    config = EnsembleConfig(
        members=tuple(models[i].spec for i in idx), method=name, prompt_format="plain",
        sampling=SamplingConfig(max_new_tokens=8, stop=("\n", ".")), resync_window=int(window or 8))
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


def evaluate(n: int, out: Path) -> None:
    from ensemble.loading import load_models

    prefix, sample = load_task(n)
    done = set()
    if out.exists():
        done = {(r["id"], r["system"]) for r in map(json.loads, out.read_text().splitlines())}
    models = load_models([MemberSpec(m, dtype="bf16") for m in MEMBERS])
    ensembles = {s: build(models, s) for s in systems(len(models))}
    with out.open("a") as f:
        for k, (i, ex) in enumerate(sample):
            for system, ensemble in ensembles.items():
                if (i, system[0]) in done:
                    continue
                answers, seconds = run_example(ensemble, prefix, ex, system)
                for name, text in answers.items():
                    row = {"id": i, "system": name, "answer": text, "hit": hit(text, gold(ex)),
                           "seconds": round(seconds, 3), "run": system[0]}
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                f.flush()
            print(f"{k + 1}/{len(sample)}", file=sys.stderr, flush=True)


def label(system: str) -> str:
    if system.startswith("solo:"):
        return SHORT[MEMBERS[int(system[5:])].removeprefix("offline:")] + " alone"
    method, idx = system.split(":", 1)
    names = [SHORT[MEMBERS[int(i)].removeprefix("offline:")] for i in re.findall(r"\d", idx)]
    return f"{method.replace('-w0', ' (append-only)')}: " + " + ".join(names)


def report(out: Path, doc: Path, n: int) -> None:
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by = {}
    for r in rows:
        by.setdefault(r["system"], {})[r["id"]] = r["hit"]
    ids = sorted(set.intersection(*(set(h) for h in by.values())))  # examples every system answered
    complete = {s: {i: h[i] for i in ids} for s, h in by.items()}
    acc = {s: sum(h.values()) / len(ids) for s, h in complete.items()}
    solo = {s: a for s, a in acc.items() if s.startswith("solo:")}
    lines = [
        "# qa_wikidata: ensembles against their members", "",
        f"Made by `python bench/qa_wikidata.py --n {n}` (then `--report`), on the three offline default models",
        "in bf16, 2 CPU cores. Fixed sample (seed 0), 3-shot prefix, plain-completion prompts, greedy, answer cut at a",
        f"newline or a period. n = {len(ids)} examples; one example is worth {100 / len(ids):.2f} points, and the",
        f"standard error of a score near 50% is about {100 * (0.25 / len(ids)) ** 0.5:.1f} points.",
        "`(append-only)`: `resync_window: 0`, members append the new piece's ids instead of re-tokenizing",
        "the tail of the answer. Wins / losses count the examples where exactly one of the two is right.", "",
        "| System | Accuracy | vs its best member | wins / losses vs that member |", "|---|---|---|---|",
    ]
    for s in sorted(acc, key=lambda s: (not s.startswith("solo"), s)):
        if s.startswith("solo:"):
            lines.append(f"| {label(s)} | {100 * acc[s]:.1f} | | |")
            continue
        members = [f"solo:{i}" for i in re.findall(r"\d", s.split(":", 1)[1])]
        best = max(members, key=lambda m: solo.get(m, -1))
        if best not in complete:
            continue
        wins = sum(complete[s][i] and not complete[best][i] for i in ids)
        losses = sum(complete[best][i] and not complete[s][i] for i in ids)
        delta = 100 * (acc[s] - solo[best])
        lines.append(f"| {label(s)} | {100 * acc[s]:.1f} | {delta:+.1f} ({label(best)}) | {wins} / {losses} |")
    doc.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "qa_wikidata.jsonl")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "bench-qa-wikidata.md")
    parser.add_argument("--report", action="store_true", help="only rewrite the doc from saved results")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.report:
        evaluate(args.n, args.out)
    report(args.out, args.doc, args.n)


if __name__ == "__main__":
    main()
