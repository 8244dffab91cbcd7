"""Compatibility check before ensembling: UniTE's "determine, then ensemble" (Yao et al., ICLR 2025,
arXiv 2410.03777, §4): members whose accuracy differs by more than about 10 points, or whose answers
look different (length, style), make ensembles lose to their best member; vocabulary overlap matters
little. This module only judges numbers it is given (`scoring.score_members` makes them).

A gap counts only when it is also larger than twice its standard error on the dev set, or the member
scores under half the best's score: with 100 dev questions near 50% that error is about 7 points, so a
13-point gap can be noise (on qa_wikidata such a member, SmolLM2, lifts every DeePEn ensemble it joins),
while a member right on 3% of 30 math questions where the best is right on 17% has little to add
(docs/bench-quality.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .scoring import MemberScore, adapt

SCORE_GAP = 0.10  # accuracy gap above which the weaker member is flagged
LENGTH_RATIO = 2.0  # mean answer lengths this far apart count as different styles


@dataclass(frozen=True)
class Report:
    members: tuple[MemberScore, ...]
    overlap: tuple[tuple[float, ...], ...]  # [N, N]: share of member i's byte strings member j also has
    warnings: tuple[str, ...]
    drop: tuple[int, ...]  # members the check suggests dropping
    weights: tuple[float, ...]  # or keep everyone with these dev-score weights
    primary: int

    def text(self) -> str:
        lines = ["member                          dev score  words/answer  shares vocabulary with"]
        for i, m in enumerate(self.members):
            shared = ", ".join(f"{self.members[j].name} {100 * o:.0f}%"
                               for j, o in enumerate(self.overlap[i]) if j != i)
            lines.append(f"{m.name:<32}{100 * m.score:>8.1f}  {m.words:>12.1f}  {shared}")
        lines += [f"warning: {w}" for w in self.warnings] or ["compatible: scores and answer styles are close"]
        if self.drop:
            keep = [m.name for i, m in enumerate(self.members) if i not in self.drop]
            lines.append(f"suggest: drop {', '.join(self.members[i].name for i in self.drop)} "
                         f"(keep {', '.join(keep)}), or down-weight: weights {list(self.weights)}")
        lines.append(f"primary (best dev score): {self.members[self.primary].name}")
        return "\n".join(lines)


def vocabulary_overlap(vocabs: Sequence) -> tuple[tuple[float, ...], ...]:
    sets = [{p for p in v.pieces if p} for v in vocabs]
    return tuple(tuple(len(a & b) / max(len(a), 1) for b in sets) for a in sets)


def standard_error(a: MemberScore, b: MemberScore) -> float:
    """Of the difference of two dev accuracies, as independent binomials (0 when either n is unknown)."""
    if not a.n or not b.n:
        return 0.0
    return math.sqrt(a.score * (1 - a.score) / a.n + b.score * (1 - b.score) / b.n)


def check(members: Sequence[MemberScore], vocabs: Sequence) -> Report:
    best = max(members, key=lambda m: m.score)
    warnings, drop = [], []
    for i, m in enumerate(members):
        gap = best.score - m.score
        if gap > SCORE_GAP and (gap > 2 * standard_error(best, m) or m.score < best.score / 2):
            drop.append(i)
            warnings.append(f"{m.name} scores {100 * gap:.1f} points below {best.name}; ensembles of members this "
                            f"far apart tend to lose to the best one")
        ratio = max(m.words, 1e-9) / max(best.words, 1e-9)
        if m is not best and not 1 / LENGTH_RATIO <= ratio <= LENGTH_RATIO:
            warnings.append(f"{m.name} answers in {m.words:.1f} words on average, {best.name} in {best.words:.1f}: "
                            f"answer styles differ")
    weights, primary = adapt([m.score for m in members])
    return Report(tuple(members), vocabulary_overlap(vocabs), tuple(warnings), tuple(drop), weights, primary)
