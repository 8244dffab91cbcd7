"""The vote's callbacks (a mixin of ui.handlers.Handlers): vote, blind mode, the Results tab."""

from __future__ import annotations

from typing import Any

from .columns import blind_all
from .render import FUSED_KEY, status_html
from .state import Session
from .store import StoreError
from .voting import results_html, stream_label, tally

Updates = dict[str, Any]


class VoteHandlers:
    ctx: Any  # ui.handlers.Context
    view: Any  # ui.handlers.Handlers.view

    def vote(self, session: Session, choice: str | None) -> Updates:
        """Store which column answered the last turn best; names come back in blind mode."""
        names = session.names
        turn = session.turns[-1] if session.turns else None
        valid = {FUSED_KEY, "tie", *map(str, range(len(names)))}
        problem = ("nothing to vote on yet: send a prompt first" if turn is None
                   else "this is a shared comparison: re-run it to vote" if session.shared_id
                   else "wait until every answer has finished" if any(not c["reason"] for c in turn["columns"].values())
                   else "this answer already has your vote" if turn.get("vote")
                   else "pick the best answer first" if choice not in valid else "")
        if problem:
            return {"status": status_html([problem], "error")}
        try:
            self.ctx.store.add_vote(list(names), session.settings["method"], choice, session.blind)
        except StoreError as e:  # disk full, locked: one line, the vote can be tried again
            return {"status": status_html([str(e)], "error")}
        turn["vote"] = {"winner": choice, "blind": session.blind}
        session.revealed = True
        best = "a tie" if choice == "tie" else stream_label(choice, names)
        return {**self.view(session, [f"vote stored: {best}"]), "results": self.results()["results"]}

    def set_blind(self, session: Session, on: bool) -> Updates:
        session.blind, session.revealed = bool(on), False
        if on:
            blind_all(session)
        note = "blind vote: the answers are shuffled and unnamed until you vote" if on else ""
        return self.view(session, [note] if note else [])

    def results(self) -> Updates:
        try:
            return {"results": results_html(tally(self.ctx.store.votes()))}
        except StoreError as e:
            return {"results": status_html([str(e)], "error")}

