"""Markdown with per-token attribution: the fused answer's structure (fences, lists, headings, quotes, inline code,
bold) rendered as HTML whose every visible character sits in a span of the piece that produced it.

markdown-it-py (CommonMark, raw HTML off) finds the blocks and their source lines; each block's content is mapped
back to source offsets line by line, so a character keeps its piece (and the piece's driver and shares) wherever
the structure puts it. Markup characters (fence lines, list markers, `**`) are not shown; the exact text is what
the copy button copies (ui.render.raw_html). Everything from the model is escaped: the only tags are ours.

Also the escaping for the solo columns, which Gradio renders as sanitised markdown: raw HTML is shown as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import groupby

from markdown_it import MarkdownIt

PARSER = MarkdownIt("commonmark", {"html": False})
BLOCK_TAGS = {"p", "ul", "ol", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6"}
INLINE = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)|\*\*(?=\S)(.+?)(?<=\S)\*\*", re.S)  # code span | **strong**
Span = Callable[[int, int], str]  # (start, end) source offsets -> HTML of those characters


def line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def content_offsets(text: str, starts: list[int], first_line: int, content: str) -> list[int]:
    """Source offset of each character of a block's `content`, whose line k is a suffix-trimmed part of source
    line first_line + k (markers, quote marks and indentation removed in front). Newlines map to newlines."""
    offsets: list[int] = []
    for k, part in enumerate(content.split("\n")):
        n = first_line + k
        if n >= len(starts):
            break
        begin = starts[n]
        end = starts[n + 1] - 1 if n + 1 < len(starts) else len(text)
        line = text[begin:end]
        at = line.find(part) if part else len(line)
        at = max(0, len(line) - len(part)) if at < 0 else at  # not found (tabs expanded): keep inside the line
        offsets += range(begin + at, min(begin + at + len(part), end))
        if k < content.count("\n"):
            offsets.append(end)  # the newline ending this source line
    return offsets


def runs(offsets: list[int]) -> list[tuple[int, int]]:
    """Consecutive source offsets -> (start, end) ranges."""
    out: list[tuple[int, int]] = []
    for o in offsets:
        if out and out[-1][1] == o:
            out[-1] = (out[-1][0], o + 1)
        else:
            out.append((o, o + 1))
    return out


def chars(offsets: list[int], span: Span) -> str:
    return "".join(span(a, b) for a, b in runs(offsets))


def inline_html(content: str, offsets: list[int], span: Span) -> str:
    """Code spans and **strong**; every other character is text. Newlines become <br>."""
    out, at = [], 0
    for m in INLINE.finditer(content):
        out.append(text_with_breaks(offsets[at:m.start()], content[at:m.start()], span))
        if m.group(1):
            out.append(f"<code>{chars(offsets[m.start(2):m.end(2)], span)}</code>")
        else:
            inner = inline_html(m.group(3), offsets[m.start(3):m.end(3)], span)
            out.append(f"<strong>{inner}</strong>")
        at = m.end()
    out.append(text_with_breaks(offsets[at:], content[at:], span))
    return "".join(out)


def text_with_breaks(offsets: list[int], content: str, span: Span) -> str:
    out, at = [], 0
    for i, ch in enumerate(content):
        if ch == "\n":
            out.append(chars(offsets[at:i], span) + "<br>")
            at = i + 1
    out.append(chars(offsets[at:], span))
    return "".join(out)


def code_html(token, text: str, starts: list[int], span: Span) -> str:
    first = token.map[0] + (1 if token.type == "fence" else 0)
    content = token.content[:-1] if token.content.endswith("\n") else token.content
    language = re.sub(r"[^\w+-]", "", token.info.split()[0]) if token.info.strip() else ""
    cls = f' class="language-{language}"' if language else ""
    return f"<pre><code{cls}>{chars(content_offsets(text, starts, first, content), span)}</code></pre>"


def markdown_html(text: str, span: Span) -> str:
    """The markdown structure of `text` as HTML; span(a, b) renders the source characters [a, b)."""
    starts = line_starts(text)
    out = []
    for token in PARSER.parse(text):
        if token.type in ("fence", "code_block"):
            out.append(code_html(token, text, starts, span))
        elif token.type == "inline":
            out.append(inline_html(token.content, content_offsets(text, starts, token.map[0], token.content), span))
        elif token.type == "hr":
            out.append("<hr>")
        elif token.tag in BLOCK_TAGS and not token.hidden:  # hidden: the paragraphs of a tight list
            start = token.attrGet("start") if token.type == "ordered_list_open" else None
            attr = f' start="{int(start)}"' if start is not None else ""
            out.append(f"<{token.tag}{attr}>" if token.nesting == 1 else f"</{token.tag}>")
    return "".join(out)


def attributed(pieces: Sequence[dict]) -> tuple[str, list[int]]:
    """The pieces' text as markdown-it reads it (CRLF and CR as LF, NUL as U+FFFD) and each character's piece."""
    text, owner = [], []
    for i, p in enumerate(pieces):
        for ch in p["text"]:
            if ch == "\n" and text and text[-1] == "\r":
                text.pop()
                owner.pop()
            text.append({"\r": "\n", "\0": "\ufffd"}.get(ch, ch))
            owner.append(i)
    return "".join(text).replace("\r", "\n"), owner


def piece_spans(text: str, owner: list[int], render: Callable[[int, str], str]) -> Span:
    """A Span over `text`: each run of one piece's characters goes to render(piece index, characters)."""

    def span(a: int, b: int) -> str:
        out, at = [], a
        for i in range(a + 1, b + 1):
            if i == b or owner[i] != owner[at]:
                out.append(render(owner[at], text[at:i]))
                at = i
        return "".join(out)

    return span


def open_fence(text: str) -> str:
    """The markup that closes the fenced block `text` ends inside ("" when none is open)."""
    tokens = [t for t in PARSER.parse(text) if t.type == "fence"]
    if not tokens:
        return ""
    last, lines = tokens[-1], text.split("\n")
    end = lines[last.map[1] - 1].strip() if last.map[1] - 1 > last.map[0] else ""
    closed = end.startswith(last.markup) and set(end) == {last.markup[0]}
    return "" if closed else last.markup


BACKTICKS = re.compile(r"`+")


def safe_markdown(text: str) -> str:
    """Model text for Gradio's markdown: code stays as it is; elsewhere `<` and `&` are escaped and `![` images
    are shown as text, so no model-written HTML or image ever reaches the page (sanitised or not). Only fenced
    blocks count as code (an indented block shows "&lt;" literally: a wrong guess about indentation, which markdown
    parsers read differently, must never let raw HTML through). Line ends as markdown-it reads them."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    code_lines: set[int] = set()
    for token in PARSER.parse(text):
        if token.type == "fence" and token.map:
            code_lines.update(range(*token.map))
    groups = groupby(enumerate(text.split("\n")), key=lambda line: line[0] in code_lines)
    return "\n".join("\n".join(line for _, line in group) if is_code
                     else _escape_prose("\n".join(line for _, line in group)) for is_code, group in groups)


def _escape_prose(text: str) -> str:
    """Prose: code spans become <code> with escaped content (safe whatever another parser thinks a code span is);
    everything else is escaped text."""
    out, at, search = [], 0, 0
    while (run := BACKTICKS.search(text, search)) is not None:
        close = next((m for m in BACKTICKS.finditer(text, run.end()) if len(m.group()) == len(run.group())), None)
        if close is None or (run.start() and text[run.start() - 1] == "\\"):
            search = run.end()
            continue
        code = text[run.end():close.start()].replace("\n", " ")
        if code.startswith(" ") and code.endswith(" ") and code.strip():
            code = code[1:-1]  # CommonMark: one space each side is padding
        out += [_escape_text(text[at:run.start()]), f"<code>{_entities(code)}</code>"]
        at = search = close.end()
    out.append(_escape_text(text[at:]))
    return "".join(out)


def _entities(code: str) -> str:
    """ASCII punctuation as numeric character references: inside our <code>, markdown sees no syntax at all."""
    return "".join(f"&#{ord(c)};" if ord(c) < 128 and not c.isalnum() and c != " " else c for c in code)


def _escape_text(text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace("![", "!\\[")
    return escaped.replace("\\&", "&#92;&")  # a backslash must not escape our entity
