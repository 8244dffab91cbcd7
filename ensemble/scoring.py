"""Dev-set scores -> member weights and the main member. DeePEn-Adapt (Huang et al. 2024) weights each
member by its dev-set performance; the main model is the best member, as in the published configs
(anchors-methods.md §1.7) and UniTE's advice to make the strongest model primary (§2).

The dev set is BIG-bench-style JSON (`{"examples": [{"input", "target"}]}`), shuffled with seed 0; the
3-shot prefix is the first 3 examples and the dev examples are the *last* n, so they never overlap the
quality benchmark's sample (which reads the same order from the front, `bench/qa_wikidata.py`).
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import EnsembleConfig, SamplingConfig
from .errors import ConfigError

SHOTS = 3
ANSWER = SamplingConfig(max_new_tokens=8, stop=("\n", "."))  # short factual answers, as in the benchmark


@dataclass(frozen=True)
class Example:
    prompt: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class MemberScore:
    name: str
    score: float  # accuracy in [0, 1]
    words: float  # mean answer length in words, on the same prompts


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


def dev_examples(path: Path, n: int) -> list[Example]:
    """The last n of the seed-0 order, each prompt with the 3-shot prefix."""
    examples, order = seeded_order(path)
    if n > len(order) - SHOTS:
        raise ConfigError(f"{path} has {len(order)} examples; asked for {n} dev examples")
    prefix = fewshot_prefix(examples, order)
    return [Example(prefix + examples[i]["input"], targets_of(examples[i])) for i in order[-n:]]


def normalize(text: str) -> str:
    text = text.lower().strip()
    text = "".join(c for c in text if c not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def hit(answer: str, targets: Sequence[str]) -> bool:
    """The normalised answer starts with a normalised target."""
    a = normalize(answer)
    return bool(a) and any(a.startswith(normalize(t)) for t in targets if normalize(t))


def score_members(models, examples: Sequence[Example]) -> list[MemberScore]:
    """Each member alone, greedy, plain-completion prompts."""
    from .engine import Ensemble
    from .events import Finished

    out = []
    for lm in models:
        config = EnsembleConfig(members=(lm.spec,), method="average", prompt_format="plain", sampling=ANSWER)
        solo = Ensemble([lm], config)
        hits, words = 0, 0
        for ex in examples:
            done = [e for e in solo.stream([{"role": "user", "content": ex.prompt}]) if isinstance(e, Finished)]
            hits += hit(done[0].text, ex.targets)
            words += len(done[0].text.split())
        out.append(MemberScore(lm.name, hits / len(examples), words / len(examples)))
    return out


def adapt(scores: Sequence[float]) -> tuple[tuple[float, ...], int]:
    """Weights proportional to the dev scores (summing to the number of members, so equal scores give
    the usual weight 1 each), and the best member as primary."""
    total = sum(scores)
    if total <= 0:
        return tuple(1.0 for _ in scores), 0
    weights = tuple(round(max(s, 1e-3) * len(scores) / total, 4) for s in scores)
    return weights, max(range(len(scores)), key=scores.__getitem__)


def write_scores(preset: Path, scores: Sequence[MemberScore], out: Path, drop: Sequence[int] = ()) -> dict:
    """The preset's YAML with each member's `score` and derived `weight`, and `primary`, written to `out`
    (comments are not kept); members in `drop` are left out."""
    data = yaml.safe_load(preset.read_text()) or {}
    members = data.get("members", [])
    if len(members) != len(scores):
        raise ConfigError(f"{preset}: {len(members)} members, {len(scores)} scores")
    kept = [i for i in range(len(members)) if i not in drop]
    weights, primary = adapt([scores[i].score for i in kept])
    data["members"] = [dict(members[i], score=round(scores[i].score, 4), weight=w)
                       for i, w in zip(kept, weights, strict=True)]
    data["primary"] = primary
    EnsembleConfig.from_dict({k: v for k, v in data.items() if k != "description"})  # still a valid preset
    out.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return data
