"""ui.markdown: the fused answer's markdown structure with attribution spans, and safe markdown for the solo columns.

Properties over random texts cut into random pieces: every shown character comes from its own piece and in source
order, code blocks keep every character (indentation included), only our tags appear, and model-written HTML never
becomes markup in either renderer."""

from html import escape, unescape
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from ui.markdown import attributed, markdown_html, open_fence, piece_spans, safe_markdown

STRUCTURE = {"p", "pre", "code", "strong", "ul", "ol", "li", "blockquote", "hr", "br", "span",
             "h1", "h2", "h3", "h4", "h5", "h6"}
MARKDOWNISH = st.text(alphabet="ab <>&`*-_#>\n 1.\t\"'=/![]()~\r\x00", max_size=120)
HOSTILE = ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "![t](http://evil/t.png)",
           "[x](javascript:alert(1))", "<b>x</b>", "&lt;b&gt;", "<!-- c -->", "`<i>`", "```\n<svg onload=1>\n```"]


class Spans(HTMLParser):
    """Tags, attributes and each span's (piece, text)."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.spans, self.piece, self.code = [], [], [], None, ""
        self.in_code = 0
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag == "span":
            self.piece = int(dict(attrs)["class"][1:])
        self.in_code += tag == "pre"

    def handle_endtag(self, tag):
        self.in_code -= tag == "pre"

    def handle_data(self, data):
        if self.piece is not None:
            self.spans.append((self.piece, data))
            self.piece = None
        if self.in_code:
            self.code += data


def render(pieces: list[str]) -> Spans:
    text, owner = attributed([{"text": t} for t in pieces])
    return Spans(markdown_html(text, piece_spans(text, owner, lambda i, t: f'<span class="p{i}">{escape(t)}</span>')))


def is_subsequence(part: str, whole: str) -> bool:
    it = iter(whole)
    return all(ch in it for ch in part)


def cut(text: str, points: list[int]) -> list[str]:
    points = sorted({p % (len(text) + 1) for p in points} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(MARKDOWNISH, st.sampled_from(HOSTILE)), min_size=1, max_size=8))
def test_every_shown_character_is_its_pieces_own_and_in_order(pieces):
    parsed = render(pieces)
    assert set(parsed.tags) <= STRUCTURE
    assert {k for k, _ in parsed.attrs} <= {"class", "start"}
    assert all(v.startswith(("p", "language-")) or k == "start" for k, v in parsed.attrs)
    normalized, owner = attributed([{"text": t} for t in pieces])
    assert is_subsequence("".join(t for _, t in parsed.spans), normalized)
    for i in range(len(pieces)):
        mine = "".join(t for p, t in parsed.spans if p == i)
        assert is_subsequence(mine, "".join(ch for ch, o in zip(normalized, owner, strict=True) if o == i))


CODE_LINE = st.tuples(st.integers(0, 12), st.text(alphabet="abc_()=:<>&\"'+-*/#", max_size=30))


@settings(max_examples=200, deadline=None)
@given(st.lists(CODE_LINE, min_size=1, max_size=8), st.lists(st.integers(0, 10_000), max_size=40),
       st.sampled_from(["", "python", "py"]), st.sampled_from(["", "Here:\n\n", "- a list\n\n", "1. one\n"]))
def test_code_blocks_keep_every_character_whatever_the_pieces(lines, points, language, before):
    code = "\n".join(" " * indent + body for indent, body in lines)
    answer = f"{before}```{language}\n{code}\n```\nafter"
    parsed = render(cut(answer, points))
    assert parsed.code == code
    assert parsed.tags.count("pre") == 1


def test_structure_is_rendered():
    parsed = render(["Use `x` and **y**:\n\n", "- one\n- two\n\n3. three\n\n", "# Title\n> quoted\n\n---\n"])
    for tag in ("code", "strong", "ul", "li", "ol", "h1", "blockquote", "hr"):
        assert tag in parsed.tags, tag
    assert ("start", "3") in parsed.attrs


def test_streaming_an_open_fence_renders_as_code():
    parsed = render(["```py\n", "def f():\n", "    return 1"])
    assert parsed.code == "def f():\n    return 1"
    assert open_fence("```py\ndef f():") == "```" and open_fence("```\nx\n```") == ""
    assert open_fence("~~~~\nx\n~~~") == "~~~~"  # a shorter fence does not close


PERMISSIVE = MarkdownIt("commonmark", {"html": True})  # renders raw HTML, as an unsanitised markdown view would


class Tags(HTMLParser):
    def __init__(self, markup):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs = [], []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(MARKDOWNISH, st.sampled_from(HOSTILE)), min_size=1, max_size=6).map("".join))
def test_solo_markdown_never_makes_model_html(text):
    parsed = Tags(PERMISSIVE.render(safe_markdown(text)))
    assert set(parsed.tags) <= STRUCTURE | {"em", "a"}  # markdown's own; no img, script, svg, b, i
    assert {k for k, _ in parsed.attrs} <= {"href", "class", "start", "title"}
    assert not any(k == "href" and v.strip().lower().startswith("javascript") for k, v in parsed.attrs) or \
        "javascript" in text  # a markdown link to javascript: is left for the sanitiser (checked in the browser)


def test_solo_markdown_keeps_code_exact_and_prose_visible():
    text = "a <b>&amp; ![i](u)\n\n```html\n<b>&amp;</b>\n```\nand `<i>`"
    shown = PERMISSIVE.render(safe_markdown(text))
    assert "<pre><code class=\"language-html\">&lt;b&gt;&amp;amp;&lt;/b&gt;\n</code></pre>" in shown  # as raw
    assert "<code>&lt;i&gt;</code>" in shown
    assert unescape(shown.split("</p>")[0]) == "<p>a <b>&amp; ![i](u)"  # the prose, as the model wrote it
