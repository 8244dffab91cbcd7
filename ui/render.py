"""Pure rendering: a conversation's turns -> Chatbot messages and small HTML panels. No gradio, no torch.

Every string that came from a model, a user, a link or a file is HTML-escaped here before it is wrapped in
markup: the Chatbot keeps `<span style title>` but `gr.HTML` sanitizes nothing.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from .markdown import attributed, markdown_html, open_fence, piece_spans, safe_markdown

# One per member slot: light theme background, dark theme background, and the underline style that tells members
# apart without colour (WCAG 1.4.1). Text on them is #111 (light) or #f8fafc (dark): contrast above 7:1.
COLOURS = ("#bfdbfe", "#fde68a", "#fbcfe8", "#bbf7d0")
DARK_COLOURS = ("#1e3a8a", "#713f12", "#831843", "#14532d")
LINES = ("solid", "dashed", "dotted", "double")
FUSED_KEY = "fused"


def esc(text: object) -> str:
    """Escape for element text and for double- or single-quoted attributes."""
    return html.escape(str(text), quote=True)


def text_html(text: str) -> str:
    """Model or user text as HTML that shows exactly the characters (newlines as <br>)."""
    return esc(text).replace("\r\n", "\n").replace("\n", "<br>")


def share_tooltip(driver: int, shares: Sequence[float], names: Sequence[str]) -> str:
    parts = [f"{names[i] if i < len(names) else i}: {s:.0%}" for i, s in enumerate(shares)]
    lead = names[driver] if 0 <= driver < len(names) else str(driver)
    return f"driven by {lead} | " + " · ".join(parts)


def token_span(piece: dict, names: Sequence[str], text: str | None = None) -> str:
    """(Part of) one fused piece, coloured and underlined by its driver, every member's share in the tooltip;
    focusable, so the shares are reachable by keyboard and tap too (ui/layout.py shows them)."""
    d = int(piece["driver"])
    title = esc(share_tooltip(d, piece["shares"], names))
    body = esc(piece["text"] if text is None else text)
    return f'<span class="tok m{d % len(COLOURS)}" tabindex="0" title="{title}">{body}</span>'


def end_note(column: dict) -> str:
    reason = column.get("reason") or ""
    if column.get("error"):
        return f' <em class="note">[{esc(column["error"])}]</em>'
    if reason in ("cancelled", "error", "length"):
        label = {"cancelled": "stopped", "error": "failed", "length": "max tokens"}[reason]
        return f' <em class="note">[{label}]</em>'
    return ""


def fused_html(column: dict, names: Sequence[str]) -> str:
    """The fused answer's markdown structure with every character in its piece's span (ui/markdown.py)."""
    pieces = column.get("pieces", ())
    text, owner = attributed(pieces)
    body = markdown_html(text, piece_spans(text, owner, lambda i, t: token_span(pieces[i], names, t)))
    return with_note(f'<div class="fused-md">{body}</div>' if text else "", column) + plan_note(column, names)


def plan_note(column: dict, names: Sequence[str]) -> str:
    """Why this answer had the members it had (decode/demos.py): the main member, who sat out, and each
    member's bits per byte on the prompt's worked examples."""
    plan = column.get("plan")
    if not plan:
        return ""
    name = lambda i: names[i] if i < len(names) else f"member {i + 1}"  # noqa: E731
    scores = ", ".join(f"{name(i)} {b:.2f}" for i, b in enumerate(plan["bits_per_byte"]) if b is not None)
    out = f"per prompt: main {name(plan['primary'])}"
    if plan["dropped"]:
        out += "; sat out: " + ", ".join(name(i) for i in plan["dropped"])
    return f'<div class="note plan">{esc(out)} (bits per byte on the prompt\'s examples: {esc(scores)})</div>'


def plain_html(column: dict) -> str:
    """An answer through the fused column's markdown renderer, without colours (a blind vote's wide column)."""
    text, _ = attributed([{"text": column.get("text", "")}])
    body = markdown_html(text, lambda a, b: esc(text[a:b]))
    return with_note(f'<div class="fused-md">{body}</div>' if text else "", column)


def solo_html(column: dict) -> str:
    """A member's own answer as markdown for Gradio to render (sanitised); model-written HTML stays text."""
    text = column.get("text", "")
    fence = open_fence(text)
    body = safe_markdown(text) + (f"\n{fence}\n" if fence else "")
    return with_note(body, column)


def with_note(body: str, column: dict) -> str:
    """The answer so far, "…" while nothing has arrived, and why it ended when that is worth saying."""
    if not body:
        body = '<em class="note">[empty answer]</em>' if column.get("reason") else "…"
    return body + end_note(column)


def column_messages(turns: Sequence[dict], key: str, names: Sequence[str], style: str = "") -> list[dict]:
    """Chatbot messages (Gradio 6 format) for one column: FUSED_KEY or a member index as a string. style:
    "attributed" (coloured spans), "plain" (our markdown, no colours) or "markdown" (for Gradio's renderer);
    by default the fused answer is attributed and a member's is markdown."""
    style = style or ("attributed" if key == FUSED_KEY else "markdown")
    out = []
    for turn in turns:
        column = turn["columns"].get(key)
        if column is None:
            continue
        answer = {"attributed": lambda c: fused_html(c, names), "plain": plain_html, "markdown": solo_html}[style](
            column)
        out += [{"role": "user", "content": text_html(turn["prompt"])}, {"role": "assistant", "content": answer}]
    return out


def chip(i: int, name: str) -> str:
    return f'<span class="chip tok m{i % len(COLOURS)}">{esc(name)}</span>'


def legend_html(names: Sequence[str]) -> str:
    chips = "".join(chip(i, n) for i, n in enumerate(names))
    return (f'<div class="legend">Token colour and underline = the member that drove it: {chips} '
            '<span class="note">(hover, tap or Tab to a token for every member\'s share)</span></div>'
            if names else "")


def raw_html(turns: Sequence[dict], columns: Sequence[tuple[str, str]], first: int = 0) -> str:
    """Every answer's exact text, hidden, for the copy buttons: <div id="raw-PAGE-N"> per (page column name, turn
    column key) and turn N (numbered from `first`), and <div id="raw-user-N"> per prompt (a div: a <pre> would drop
    a leading newline)."""
    answers = "".join(f'<div hidden id="raw-{esc(page)}-{n}">{esc(t["columns"][k]["text"])}</div>'
                      for n, t in enumerate(turns, first) for page, k in columns if k in t["columns"])
    return answers + "".join(f'<div hidden id="raw-user-{n}">{esc(t["prompt"])}</div>'
                             for n, t in enumerate(turns, first))


def drive_stats(column: dict, n: int) -> tuple[list[float], list[float]]:
    """(share of the answer's characters each member drove, fraction of pieces that were its own argmax)."""
    pieces = column.get("pieces", ())
    chars = [0] * n
    agree = [0] * n
    for p in pieces:
        if 0 <= p["driver"] < n:
            chars[p["driver"]] += len(p["text"])
        for i, a in enumerate(p["agree"][:n]):
            agree[i] += bool(a)
    total = sum(chars) or 1
    return [c / total for c in chars], [a / max(len(pieces), 1) for a in agree]


def chart_html(turns: Sequence[dict], names: Sequence[str]) -> str:
    """Legend plus a compact bar table for the latest fused answer: drive share and agreement rate."""
    if not names:
        return ""
    last = next((t["columns"][FUSED_KEY] for t in reversed(turns) if t["columns"].get(FUSED_KEY)), None)
    if not last or not last.get("pieces"):
        return legend_html(names)
    drove, agreed = drive_stats(last, len(names))
    rows = "".join(
        f'<tr><td>{chip(i, n)}</td>'
        f'<td><div class="bar tok m{i % len(COLOURS)}" style="width:{drove[i] * 100:.0f}%"></div>'
        f"{drove[i]:.0%}</td><td>{agreed[i]:.0%}</td></tr>"
        for i, n in enumerate(names))
    return (legend_html(names) + '<table class="drive"><tr><th>member</th><th>drove (of the last answer)</th>'
            f"<th>agrees with its solo argmax</th></tr>{rows}</table>")


def status_html(messages: Sequence[str], kind: str = "info") -> str:
    """A visible notice; kind: info | warn | error."""
    if not messages:
        return ""
    items = "".join(f"<li>{esc(m)}</li>" for m in messages)
    return f'<div class="notice {esc(kind)}" role="status"><ul>{items}</ul></div>'


def progress_html(fraction: float, message: str) -> str:
    """A progress bar with its message (model loading)."""
    pct = max(0.0, min(1.0, float(fraction))) * 100
    return (f'<div class="notice info" role="progressbar" aria-valuenow="{pct:.0f}" aria-valuemin="0" '
            f'aria-valuemax="100"><div class="progress"><div class="fill" style="width:{pct:.0f}%"></div></div>'
            f"{esc(message)}</div>")
