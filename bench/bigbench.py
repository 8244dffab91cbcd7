"""Any BIG-bench JSON task, the same way for every task: each member alone and the shipped default.

    python bench/bigbench.py --task sports_understanding --n 200 --max-seconds 540   # resumable
    python bench/bigbench.py --report                      # rewrite docs/bench-bigbench.md from the results

Tasks are read from `../shared/data/bigbench/NAME.json` (or `--data PATH`). One format for all tasks, never
tuned per task: a fixed seed-0 order; a 3-shot prefix from its front (outside the sample), then the next `n`
examples; the task's own `task_prefix` and example prefixes (BIG-bench's defaults, "\\nQ: " and "\\nA: ", when
it has none); multiple-choice tasks list their choices in the input (as BIG-bench does unless the task sets
`append_choices_to_input: false`) and are scored as short generations: a hit when the normalised answer
starts with the correct choice and not with a longer wrong one. Generation tasks: a hit when the answer
starts with a target. Greedy, at most 8 new tokens, cut at a newline. Plain-completion prompts for every
member (no chat templates), as in `bench/qa_wikidata.py`.

Systems: the default preset's configuration (`presets/offline-default.yaml`: its method, equal weights) with
`solo=True`, which also yields each member alone on the same prompts. Rows are appended to
`bench/results/bigbench-NAME.jsonl` as they come; an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from ensemble.config import EnsembleConfig, SamplingConfig  # noqa: E402
from ensemble.decode.events import FUSED, Finished  # noqa: E402
from ensemble.presets import load_preset  # noqa: E402
from ensemble.tune.scoring import normalize  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "bigbench"
RESULTS = ROOT / "bench" / "results"
SHOTS = 3
SAMPLING = SamplingConfig(max_new_tokens=8, stop=("\n",))
DEV_TASKS = ("qa_wikidata", "word_unscrambling", "sports_understanding", "anachronisms", "hindu_knowledge")


def task_file(name: str) -> Path:
    return Path(name) if name.endswith(".json") else DATA / f"{name}.json"


def render(task: dict, example: dict, answer: str | None) -> str:
    """One example as BIG-bench formats it: input prefix, input (+ choices), output prefix, answer."""
    text = task.get("example_input_prefix", "\nQ: ") + example["input"]
    if "target_scores" in example and task.get("append_choices_to_input", True):
        text += "".join(f"\n  choice: {c}" for c in example["target_scores"])
    text += task.get("example_output_prefix", "\nA: ")
    return text + (f"{answer}\n" if answer is not None else "")


def gold(example: dict) -> list[str]:
    if "target_scores" in example:
        best = max(example["target_scores"].values())
        return [c for c, s in example["target_scores"].items() if s == best]
    t = example["target"]
    return [t] if isinstance(t, str) else list(t)


def is_hit(answer: str, example: dict) -> bool:
    """Generation: the normalised answer starts with a target. Multiple choice: the longest choice the answer
    starts with is a correct one (so "implausible" never counts as "plausible")."""
    a = normalize(answer)
    if not a:
        return False
    if "target_scores" not in example:
        return any(normalize(t) and a.startswith(normalize(t)) for t in gold(example))
    started = [c for c in example["target_scores"] if normalize(c) and a.startswith(normalize(c))]
    return bool(started) and max(started, key=lambda c: len(normalize(c))) in gold(example)


def load_task(path: Path, n: int) -> tuple[str, list[tuple[int, dict]]]:
    task = json.loads(path.read_text())
    examples = task["examples"]
    order = list(range(len(examples)))
    random.Random(0).shuffle(order)
    prefix = task.get("task_prefix", "") + "".join(render(task, examples[i], gold(examples[i])[0])
                                                   for i in order[:SHOTS])
    return prefix, [(i, {**examples[i], "prompt": prefix + render(task, examples[i], None)})
                    for i in order[SHOTS:SHOTS + n]]


def default_config() -> EnsembleConfig:
    preset = load_preset("offline-default")
    members = tuple(type(m)(m.model, dtype="bf16") for m in preset.members)
    return EnsembleConfig(members=members, method=preset.method, prompt_format="plain", sampling=SAMPLING)


def evaluate(name: str, n: int, max_seconds: float) -> None:
    from ensemble.decode.engine import Ensemble
    from ensemble.models.pool import load_models

    out = RESULTS / f"bigbench-{Path(name).stem}.jsonl"
    done = {(r["id"], r["run"]) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    _, sample = load_task(task_file(name), n)
    config = default_config()
    run = f"default:{config.method}"
    todo = [(i, ex) for i, ex in sample if (i, run) not in done]
    if not todo:
        return
    ensemble = Ensemble(load_models(config.members), config)
    start = time.perf_counter()
    with out.open("a") as f:
        for k, (i, ex) in enumerate(todo):
            if time.perf_counter() - start > max_seconds:
                print(f"stopped after {max_seconds:.0f} s; {len(todo) - k} left", file=sys.stderr)
                return
            t0 = time.perf_counter()
            for e in ensemble.stream([{"role": "user", "content": ex["prompt"]}], solo=True):
                if isinstance(e, Finished):
                    system = run if e.stream == FUSED else f"solo:{e.stream}"
                    f.write(json.dumps({"id": i, "system": system, "answer": e.text, "hit": is_hit(e.text, ex),
                                        "seconds": round(time.perf_counter() - t0, 3), "run": run}) + "\n")
            f.flush()
            print(f"{name} {k + 1}/{len(todo)}", file=sys.stderr, flush=True)


def report(doc: Path) -> None:
    from quality import paired

    from ensemble.models.offline import MANIFEST

    names = [m.name for m in MANIFEST]
    lines = ["# BIG-bench dev tasks: the shipped default against its members", "",
             "Made by `python bench/bigbench.py --task NAME` (resumable) then `--report`, from "
             "`bench/results/bigbench-*.jsonl`; one prompt format and one configuration for every task (see the "
             "script's docstring). Δ: the default minus its best member on the same examples; SE: the standard "
             "error of that paired difference.", "",
             "| Task | n | " + " | ".join(f"{x} alone" for x in names)
             + " | default | Δ best member (SE) | wins / losses |",
             "|---|---|" + "---|" * (len(names) + 3)]
    for path in sorted(RESULTS.glob("bigbench-*.jsonl")):
        by: dict[str, dict[int, bool]] = {}
        for r in map(json.loads, path.read_text().splitlines()):
            by.setdefault(r["system"], {})[r["id"]] = r["hit"]
        run = next(s for s in by if not s.startswith("solo:"))
        key = f"{run.split(':')[0]}:{tuple(range(len(names)))}"
        n, d, w, l_, se = paired({**by, key: by[run]}, key)
        alone = [f"{100 * sum(by[f'solo:{i}'].values()) / len(by[f'solo:{i}']):.1f}" for i in range(len(names))]
        acc = 100 * sum(by[run].values()) / len(by[run])
        lines.append(f"| {path.stem.removeprefix('bigbench-')} | {n} | " + " | ".join(alone) +
                     f" | {acc:.1f} | **{d:+.1f}** ({se:.1f}) | {w} / {l_} |")
    doc.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", nargs="+", default=[], help=f"task names or JSON paths; the dev suite: {DEV_TASKS}")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=float("inf"))
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "bench-bigbench.md")
    args = parser.parse_args()
    for name in args.task:
        evaluate(name, args.n, args.max_seconds)
    report(args.doc)


if __name__ == "__main__":
    main()
