"""Any BIG-bench JSON task, the same way for every task: each member alone and the shipped default.

    python bench/bigbench.py --task sports_understanding --systems default demos --n 200   # resumable
    python bench/bigbench.py --report                      # rewrite docs/bench-bigbench.md from the results

Tasks are read from `../shared/data/bigbench/NAME.json` (or `--data PATH`). One format for all tasks, never
tuned per task: a fixed seed-0 order; a 3-shot prefix from its front (outside the sample), then the next `n`
examples; the task's own `task_prefix` and example prefixes (BIG-bench's defaults, "\\nQ: " and "\\nA: ", when
it has none); multiple-choice tasks list their choices in the input (as BIG-bench does unless the task sets
`append_choices_to_input: false`) and are scored as short generations: a hit when the normalised answer
starts with the correct choice and not with a longer wrong one. Generation tasks: a hit when the answer
starts with a target. Greedy, at most 8 new tokens, cut at a newline. Plain-completion prompts for every
member (no chat templates), as in `bench/qa_wikidata.py`.

Systems, on the default preset's members in bf16: `unite:(0, 1, 2)` (equal weights, the default before
per-prompt members; it also yields each member alone on the same prompts) and `unite-demos:(...)` (per-prompt
members, `per_prompt: demos`, the shipped default) on the trio and on each pair. Rows are appended to
`bench/results/bigbench-NAME.jsonl` as they come (per-prompt rows with their plan: who sat out, the main
member and the scores); an interrupted run resumes.
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
from ensemble.decode.events import FUSED, Finished, Started  # noqa: E402
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


def system_config(system: str) -> EnsembleConfig:
    """`unite:(0, 1, 2)`: that method on those members of the default preset, equal weights (the default before
    issue 14); `unite-demos:(...)`: the same, with per-prompt weights from the prompt's worked examples."""
    method, members = system.split(":", 1)
    method, _, adapt = method.partition("-")
    preset = load_preset("offline-default")
    chosen = tuple(type(m)(m.model, dtype="bf16") for i, m in enumerate(preset.members) if i in eval_tuple(members))
    return EnsembleConfig(members=chosen, method=method, prompt_format="plain", sampling=SAMPLING,
                          per_prompt=adapt or "off")


def eval_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.strip("() ").split(",") if x.strip())


def systems(spec: str) -> list[str]:
    """`default`: the equal-weight trio with each member alone; `demos`: per-prompt weights on the trio and
    on each pair; or system names."""
    trio = "(0, 1, 2)"
    if spec == "default":
        return [f"unite:{trio}"]
    if spec == "demos":
        return [f"unite-demos:{x}" for x in (trio, "(0, 1)", "(0, 2)", "(1, 2)")]
    return [spec]


def evaluate(name: str, n: int, system: str, max_seconds: float) -> None:
    from ensemble.decode.engine import Ensemble
    from ensemble.models.pool import load_models

    out = RESULTS / f"bigbench-{Path(name).stem}.jsonl"
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    done = {(r["id"], alias(r["system"])) for r in rows}
    _, sample = load_task(task_file(name), n)
    config = system_config(system)
    solo = system == "unite:(0, 1, 2)"  # the members alone, on the same prompts, with the old default
    todo = [(i, ex) for i, ex in sample if (i, system) not in done]
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
            plan = None
            for e in ensemble.stream([{"role": "user", "content": ex["prompt"]}], solo=solo):
                if isinstance(e, Started) and e.stream == FUSED:
                    plan = {"dropped": list(e.dropped), "primary": e.primary, "bits_per_byte": e.bits_per_byte}
                if isinstance(e, Finished):
                    row = system if e.stream == FUSED else f"solo:{e.stream}"
                    f.write(json.dumps({"id": i, "system": row, "answer": e.text, "hit": is_hit(e.text, ex),
                                        "seconds": round(time.perf_counter() - t0, 3), "run": system,
                                        **(plan if e.stream == FUSED and config.per_prompt != "off" else {})})
                            + "\n")
            f.flush()
            print(f"{name} {system} {k + 1}/{len(todo)}", file=sys.stderr, flush=True)


def alias(system: str) -> str:
    """Rows written before systems were named by members: the equal-weight trio."""
    return "unite:(0, 1, 2)" if system == "default:unite" else system


def report(doc: Path) -> None:
    """One table per task, every figure from `bench/results/bigbench-*.jsonl`."""
    from demos_cost import OUT as COST
    from demos_cost import summary as cost_summary
    from qa_wikidata import label
    from quality import paired

    lines = ["# BIG-bench dev tasks: ensembles against their best member", "",
             "Made by `python bench/bigbench.py --task NAME --systems default demos` (resumable) then `--report`, "
             "from `bench/results/bigbench-*.jsonl`. One prompt format and one configuration for every task (see "
             "the script's docstring); nothing is tuned per task. Each row: accuracy on the examples it and all its "
             "members answered (n), **its difference to its best member on those examples**, the standard error "
             "of that paired difference, and wins / losses against that member. `unite`: equal weights, the "
             "default before per-prompt members. `(per prompt)`: the main member and the members from the "
             "prompt's worked examples (`per_prompt: demos`, `drop_gap` 0.25; decode/demos.py); its plan column "
             "says which members sat out, and on how many prompts.", ""]
    if COST.exists():
        lines += [cost_summary(), ""]
    for path in sorted(RESULTS.glob("bigbench-*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        by: dict[str, dict[int, bool]] = {}
        plans: dict[str, dict[str, int]] = {}
        for r in rows:
            system = alias(r["system"])
            by.setdefault(system, {})[r["id"]] = r["hit"]
            if "dropped" in r:  # indices into the system's own members
                members = eval_tuple(system.split(":", 1)[1])
                sat = ", ".join(label(f"solo:{members[j]}").removesuffix(" alone") for j in sorted(r["dropped"])) \
                    or "none"
                plans.setdefault(system, {}).setdefault(sat, 0)
                plans[system][sat] += 1
        lines += [f"## {path.stem.removeprefix('bigbench-')}", "",
                  "| System | acc (n) | **Δ best member** (SE) | wins / losses | sat out (prompts) |",
                  "|---|---|---|---|---|"]
        for system in sorted(by, key=lambda x: (not x.startswith("solo:"), x.count(","), x)):
            acc = 100 * sum(by[system].values()) / len(by[system])
            if system.startswith("solo:"):
                lines.append(f"| {label(system)} | {acc:.1f} ({len(by[system])}) | | | |")
                continue
            n, d, w, l_, se = paired(by, system)
            sat = "; ".join(f"{k} ({v})" for k, v in sorted(plans.get(system, {}).items(), key=lambda kv: -kv[1]))
            lines.append(f"| {label(system)} | {acc:.1f} ({n}) | **{d:+.1f}** ({se:.1f}) | {w} / {l_} | {sat} |")
        lines.append("")
    doc.write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", nargs="+", default=[], help=f"task names or JSON paths; the dev suite: {DEV_TASKS}")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--systems", nargs="+", default=["default"], help="default, demos, or system names")
    parser.add_argument("--max-seconds", type=float, default=float("inf"))
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "bench-bigbench.md")
    args = parser.parse_args()
    for name in args.task:
        for system in [x for spec in args.systems for x in systems(spec)]:
            evaluate(name, args.n, system, args.max_seconds)
    report(args.doc)


if __name__ == "__main__":
    main()
