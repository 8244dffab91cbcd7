"""The vote: which column answered best (the fused answer, one member alone, or a tie), blind or not, and the
Results tab's per set and method win rates of the fused answer against each member. Pure; no gradio.

Blind mode shuffles which answer goes to which column once per conversation and names them "Answer A", "Answer B",
...; the fused one loses its colours there. The names come back once the user has voted.

A vote record (ui.store): {"members": [name, ...], "method": str, "winner": "fused" | "tie" | "0".."3",
"blind": bool}. Against member i, a vote is a win for the fused answer (winner "fused"), a loss (winner "i") or a
tie; a vote for another member says nothing about this pair and is left out.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .render import FUSED_KEY, esc

LETTERS = "ABCDE"
Z95 = 1.959964  # two-sided 95%


@dataclass(frozen=True)
class Slot:
    """One chatbot column of the page: its component name, the stream it shows and its label."""

    name: str  # "fused" | "solo0".."solo3"
    key: str  # the turn column it shows: FUSED_KEY or "0".."3"
    label: str
    attributed: bool  # coloured spans (the fused answer, not blind)


def shuffled_order(n_members: int, rng: random.Random | None = None) -> list[str]:
    keys = [FUSED_KEY, *map(str, range(n_members))]
    (rng or random.SystemRandom()).shuffle(keys)
    return keys


def stream_label(key: str, names: Sequence[str]) -> str:
    return "Ensemble (fused)" if key == FUSED_KEY else f"{names[int(key)]} alone"


def slots(names: Sequence[str], blind: bool, order: Sequence[str], revealed: bool) -> list[Slot]:
    """The columns in page order: the wide one first, then one per member."""
    keys = list(order) if blind and len(order) == len(names) + 1 else [FUSED_KEY, *map(str, range(len(names)))]
    out = []
    for i, key in enumerate(keys):
        letter = f"Answer {LETTERS[i]}"
        label = (f"{letter}: {stream_label(key, names)}" if revealed else letter) if blind else stream_label(key, names)
        out.append(Slot("fused" if i == 0 else f"solo{i - 1}", key, label, key == FUSED_KEY and not blind))
    return out


def vote_choices(page_slots: Sequence[Slot]) -> list[tuple[str, str]]:
    """(label, value) pairs for the vote radio, in column order, then the tie."""
    return [(s.label, s.key) for s in page_slots] + [("Tie", "tie")]


def vote_note(turns: Sequence[dict], names: Sequence[str]) -> str:
    """One line per voted turn, for the page and for shared links."""
    items = []
    for n, turn in enumerate(turns, 1):
        vote = turn.get("vote")
        if vote:
            winner = "a tie" if vote["winner"] == "tie" else stream_label(vote["winner"], names)
            items.append(f"<li>turn {n}: {esc(winner)} was best{' (blind vote)' if vote.get('blind') else ''}</li>")
    return f'<div class="votes"><ul>{"".join(items)}</ul></div>' if items else ""


def wilson(k: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (Wilson 1927; Brown, Cai & DasGupta 2001)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))  # min/max: rounding at k = 0 or n


@dataclass(frozen=True)
class Row:
    members: tuple[str, ...]
    method: str
    member: str
    wins: int  # fused chosen
    losses: int  # this member chosen
    ties: int
    votes: int  # all votes for this set and method

    @property
    def decided(self) -> int:
        return self.wins + self.losses

    @property
    def rate(self) -> float | None:
        return self.wins / self.decided if self.decided else None


def tally(votes: Iterable[dict]) -> list[Row]:
    """Per (member set, method) and member: the fused answer's wins, losses and ties against that member."""
    groups: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for v in votes:
        groups.setdefault((tuple(v["members"]), v["method"]), []).append(v["winner"])
    rows = []
    for (members, method), winners in sorted(groups.items()):
        for i, member in enumerate(members):
            rows.append(Row(members, method, member, winners.count(FUSED_KEY), winners.count(str(i)),
                            winners.count("tie"), len(winners)))
    return rows


def results_html(rows: Sequence[Row]) -> str:
    """The Results tab: a table with counts and 95% Wilson intervals, and a bar per row with its interval."""
    if not rows:
        return '<p class="results-empty">No votes yet: after an answer, pick the best column and press Vote.</p>'
    body = []
    for r in rows:
        lo, hi = wilson(r.wins, r.decided)
        rate = "–" if r.rate is None else f"{r.rate:.0%}"
        bar = "" if r.rate is None else (
            f'<div class="rate" role="img" aria-label="{rate}, 95% interval {lo:.0%} to {hi:.0%}">'
            f'<div class="fill" style="width:{r.rate * 100:.1f}%"></div>'
            f'<div class="ci" style="left:{lo * 100:.1f}%;width:{(hi - lo) * 100:.1f}%"></div></div>')
        body.append(f"<tr><td>{esc(' + '.join(r.members))}</td><td>{esc(r.method)}</td><td>{esc(r.member)}</td>"
                    f"<td>{r.wins}</td><td>{r.losses}</td><td>{r.ties}</td><td>{rate}</td>"
                    f"<td>{lo:.0%}–{hi:.0%}</td><td>{bar}</td></tr>")
    return ('<table class="results"><tr><th>member set</th><th>method</th><th>against</th><th>fused won</th>'
            "<th>member won</th><th>ties</th><th>fused win rate</th><th>95% interval (Wilson)</th><th></th></tr>"
            f"{''.join(body)}</table><p class=\"note\">Win rate = fused wins / (fused wins + member wins); ties and "
            "votes for another member are left out of it.</p>")
