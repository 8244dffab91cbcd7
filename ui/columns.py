"""The page's answer columns for a session: which stream each column shows in each turn, rendered once per finished
turn. Pure; no gradio.

Blind mode shuffles the streams again for every turn (turn["order"]: the turn's column keys in page order), so each
vote is blind, not only the first: a column is "Answer A" across turns, but turn 2's Answer A is a fresh draw. Once a
turn has its vote, its answers carry the stream's name, and the column labels name the last turn's streams.

Rendering cost per streamed update is flat in the conversation's length: a finished turn's messages and copy text
are rendered once and reused from `Session.cache` (keyed by the turn's id, so an edited or regenerated turn, which
is a new turn, is rendered afresh); only the turn being answered is rendered again.
"""

from __future__ import annotations

from dataclasses import dataclass

from .render import column_messages, esc, raw_html
from .voting import Slot, shuffled_order, slots, stream_label

MAX_CACHE = 400  # entries; 8 turns x 5 columns x a few styles fit many times over


@dataclass(frozen=True)
class Column:
    slot: Slot
    messages: list[dict]  # Chatbot messages, every turn


def page_slots(session) -> list[Slot]:
    """The columns' names and labels: blind columns named by the last turn's draw, revealed once it has a vote."""
    turns = session.turns
    order = (turns[-1].get("order") if turns else None) or session.order
    return slots(session.names, session.blind, order, revealed(session))


def revealed(session) -> bool:
    """The last turn has its vote (so a blind page may name its columns)."""
    return bool(session.turns and session.turns[-1].get("vote"))


def draw_order(session, turn: dict) -> None:
    """A new turn in blind mode gets its own shuffle of the columns."""
    if session.blind:
        turn["order"] = session.order = shuffled_order(len(session.names))
        session.revealed = False


def blind_all(session) -> None:
    """Blind mode switched on: every turn without a draw gets one (a turn with a vote keeps its names shown)."""
    for turn in session.turns:
        turn.setdefault("order", shuffled_order(len(session.names)))
    session.order = session.turns[-1]["order"] if session.turns else shuffled_order(len(session.names))


def style_of(slot: Slot, blind: bool) -> str:
    """The fused slot renders its own HTML (attributed or plain); the others are markdown for Gradio."""
    return "attributed" if slot.attributed and not blind else "plain" if slot.name == "fused" else "markdown"


def turn_key(session, turn: dict, index: int, slot: Slot) -> str:
    if not session.blind:
        return slot.key
    order = turn.get("order") or session.order
    return order[index] if index < len(order) else slot.key


def columns(session, with_raw: bool = True, narrow: bool = True) -> tuple[list[Column], str]:
    """Every column's messages (without `narrow`, only the wide first one's), and (with_raw) the hidden exact texts
    the copy buttons read (ui.render.raw_html)."""
    page = page_slots(session)[:None if narrow else 1]
    out = [Column(s, []) for s in page]
    raw = []
    for n, turn in enumerate(session.turns):
        pairs = []
        for i, col in enumerate(out):
            key = turn_key(session, turn, i, col.slot)
            col.messages.extend(turn_messages(session, turn, key, style_of(col.slot, session.blind)))
            pairs.append((col.slot.name, key))
        if with_raw:
            raw.append(cached(session, ("raw", turn.get("id"), tuple(pairs)), turn,
                              lambda t=turn, p=pairs, k=n: raw_html([t], p, first=k)))
    return out, "".join(raw)


def turn_messages(session, turn: dict, key: str, style: str) -> list[dict]:
    """One turn of one column: the prompt and the answer; a blind turn with a vote names its stream."""
    named = session.blind and bool(turn.get("vote"))
    cache_key = ("messages", turn.get("id"), key, style, named, tuple(session.names))

    def render() -> list[dict]:
        messages = column_messages([turn], key, session.names, style)
        if named and len(messages) == 2:
            tag = f'<p class="note reveal">{esc(stream_label(key, session.names))}</p>'
            messages[1] = {**messages[1], "content": tag + ("\n\n" if style == "markdown" else "")
                           + messages[1]["content"]}
        return messages

    return cached(session, cache_key, turn, render)


def cached(session, key: tuple, turn: dict, render):
    """render(), kept in session.cache once every column of `turn` has ended (a stored turn without an id is not
    cached: its key would not be unique)."""
    finished = turn.get("id") is not None and all(c.get("reason") for c in turn["columns"].values())
    if not finished:
        return render()
    if key not in session.cache:
        if len(session.cache) >= MAX_CACHE:
            live = {t.get("id") for t in session.turns}
            session.cache = {k: v for k, v in session.cache.items() if k[1] in live}
        session.cache[key] = render()
    return session.cache[key]
