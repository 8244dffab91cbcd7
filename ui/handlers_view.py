"""The page's view of a session (a mixin of ui.handlers.Handlers): columns, chart, notes and buttons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr

from .columns import columns, revealed
from .picker import SLOTS
from .render import chart_html, status_html
from .state import Session
from .voting import shuffled_order, vote_choices, vote_note

Updates = dict[str, Any]


class ViewHandlers:
    def view(self, session: Session, notes: Sequence[str] = (), kind: str = "info", busy: bool = False,
             streaming: bool = False, narrow: bool = True) -> Updates:
        """Every column (in blind mode shuffled per turn and unnamed until its vote: ui.columns), the chart, notes
        and buttons. While streaming, only what an answer's progress changes: the columns (without `narrow`, only
        the wide one), the chart, the status (the rest, and the copy texts, come with the turn's last view)."""
        names = session.names
        cols, raw = columns(session, with_raw=not streaming, narrow=narrow or not streaming)
        hidden = session.blind and not revealed(session)
        out: Updates = {"session": session, "chart": "" if hidden else chart_html(session.turns, names),
                        "status": status_html(notes, kind)}
        for col in cols:
            out[col.slot.name] = gr.update(value=col.messages, label=col.slot.label, visible=True)
        if streaming:
            return out
        out.update({"votes": vote_note(session.turns, names),
                    "vote_choice": gr.update(choices=vote_choices([col.slot for col in cols])),
                    "send": gr.update(interactive=not (session.shared_id or busy)),
                    "rerun": gr.update(visible=bool(session.shared_id)), "raw": raw})
        for i in range(len(cols) - 1, SLOTS):
            out[f"solo{i}"] = gr.update(value=[], visible=False, label="")
        return out

    def clear(self, session: Session) -> Updates:
        return self.view(Session(settings=session.settings, names=session.names, blind=session.blind,
                                 order=shuffled_order(len(session.names)) if session.blind else [],
                                 system=session.system))
