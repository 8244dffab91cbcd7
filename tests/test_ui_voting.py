"""ui.voting and the vote's handlers: Wilson intervals, the tally per set and method, blind columns, stored votes."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_ui_handlers import handlers, run, values
from ui.render import FUSED_KEY
from ui.state import Session
from ui.store import ComparisonStore
from ui.voting import results_html, shuffled_order, slots, tally, vote_choices, vote_note, wilson


def test_wilson_matches_published_values():
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)  # Newcombe 1998, Stat. Med. 17, example
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_holds_the_rate_and_narrows(k, n):
    k = min(k, n)
    lo, hi = wilson(k, n)
    assert 0 <= lo <= k / n <= hi <= 1
    assert wilson(4 * k, 4 * n)[1] - wilson(4 * k, 4 * n)[0] < hi - lo


def test_tally_counts_wins_losses_ties_per_set_method_and_member():
    votes = [{"members": ["a", "b"], "method": "unite", "winner": w, "blind": False}
             for w in ["fused", "fused", "0", "1", "tie"]]
    votes.append({"members": ["a", "b"], "method": "gac", "winner": "fused", "blind": True})
    rows = {(r.method, r.member): r for r in tally(votes)}
    a, b = rows["unite", "a"], rows["unite", "b"]
    assert (a.wins, a.losses, a.ties, a.votes) == (2, 1, 1, 5)  # the vote for b says nothing about fused vs a
    assert (b.wins, b.losses, b.ties) == (2, 1, 1) and a.rate == pytest.approx(2 / 3)
    assert (rows["gac", "a"].wins, rows["gac", "a"].decided) == (1, 1)
    html = results_html(tally(votes))
    assert html.count("<tr>") == 1 + 4 and "67%" in html and 'class="ci"' in html
    assert "No votes yet" in results_html([])


def test_blind_slots_shuffle_hide_names_and_reveal():
    names = ["smol", "gemma"]
    order = shuffled_order(2, random.Random(3))
    assert sorted(order) == sorted([FUSED_KEY, "0", "1"])
    hidden = slots(names, True, order, revealed=False)
    assert [s.label for s in hidden] == ["Answer A", "Answer B", "Answer C"]
    assert [s.key for s in hidden] == order and not any(s.attributed for s in hidden)
    shown = slots(names, True, order, revealed=True)
    assert all(("smol" in s.label) or ("gemma" in s.label) or ("fused" in s.label) for s in shown)
    plain = slots(names, False, [], False)
    assert [s.key for s in plain] == [FUSED_KEY, "0", "1"] and plain[0].attributed
    assert vote_choices(hidden)[-1] == ("Tie", "tie") and [v for _, v in vote_choices(hidden)][:3] == order


def test_a_vote_is_stored_counted_and_shown(tmp_path):
    h = handlers(tmp_path)
    session = Session()
    assert "send a prompt first" in h.vote(session, "fused")["status"]
    run(h.respond(session, "hi", *values()))
    assert "pick the best answer" in h.vote(session, "7")["status"]
    out = h.vote(session, "fused")
    assert ComparisonStore(tmp_path).votes() == [{"members": ["a", "b"], "method": "unite", "winner": "fused",
                                                  "blind": False}]
    assert "vote stored" in out["status"] and "fused won" in out["results"] and "100%" in out["results"]
    assert "Ensemble (fused) was best" in out["votes"]
    assert "already has your vote" in h.vote(session, "0")["status"]
    assert session.record()["turns"][0]["vote"] == {"winner": "fused", "blind": False}  # shares carry it
    assert "turn 1: Ensemble (fused) was best" in vote_note(session.turns, session.names)


def test_blind_mode_hides_names_until_the_vote(tmp_path):
    h = handlers(tmp_path)
    session = Session()
    h.set_blind(session, True)
    out = run(h.respond(session, "hi", *values()))[-1]
    labels = [out[k]["label"] for k in ("fused", "solo0", "solo1")]
    assert labels == ["Answer A", "Answer B", "Answer C"] and out["chart"] == ""
    assert 'class="tok' not in str(out["fused"]["value"])  # no colours give the fused answer away
    shown = dict(zip(session.order, ("fused", "solo0", "solo1"), strict=True))
    fused_col = shown[FUSED_KEY]
    out = h.vote(session, FUSED_KEY)
    assert out[fused_col]["label"].endswith("Ensemble (fused)") and out["chart"]
    assert ComparisonStore(tmp_path).votes()[0]["blind"] is True
