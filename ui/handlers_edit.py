"""Edit and resend the last user turn (a mixin of ui.handlers.Handlers): the Chatbot's own edit box (its `.edit`
event, Gradio 6) on the last prompt of any column; the last turn's answers in every column are replaced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .render import status_html
from .state import Session

Updates = dict[str, Any]


def edited_text(value: Any) -> str:
    """The edit box's value: a string, or Gradio 6's list of {"type": "text", "text"} parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p.get("text", "") for p in value if isinstance(p, dict))
    return ""


class EditHandlers:
    ctx: Any  # ui.handlers.Context
    settings: Any  # ui.handlers.Handlers.settings
    run: Any
    stop_check: Any
    view: Any

    def edit(self, session: Session, *values, request=None, edit=None) -> Iterator[Updates]:
        """values: the picker's and the system prompt (as for respond); edit: gr.EditData (index, value)."""
        session.settle()
        index = getattr(edit, "index", None)
        index = index[0] if isinstance(index, (list, tuple)) else index
        prompt = edited_text(getattr(edit, "value", "")).strip()
        settings, system, problems = self.settings(values)
        limit = self.ctx.limits.max_prompt_chars
        problems += [problem for problem, bad in (
            ("nothing to edit yet: send a prompt first", not session.turns),
            ("this is a shared comparison: press re-run or clear to chat", bool(session.shared_id)),
            ("only the last message can be edited", bool(session.turns) and index != 2 * (len(session.turns) - 1)),
            ("the edited message is empty", not prompt),
            (f"the prompt is {len(prompt)} characters; the limit is {limit}", len(prompt) > limit)) if bad]
        if problems:  # the columns are sent again, so the edit box's text gives way to the real prompt
            yield self.view(session, problems, "error") if session.turns else {"status": status_html(problems, "error")}
            return
        yield from self.run(session, settings, [prompt], self.stop_check(request), keep=-1, system=system)
