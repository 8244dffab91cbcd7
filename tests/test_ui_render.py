"""ui.render: model output is always escaped; spans carry the driver's colour and every member's share."""

from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from ui.export import to_json, to_markdown
from ui.render import (
    FUSED_KEY,
    chart_html,
    column_messages,
    drive_stats,
    fused_html,
    legend_html,
    raw_html,
    solo_html,
    status_html,
    token_span,
)

OUR_TAGS = {"span", "br", "em", "div", "ul", "ol", "li", "table", "tr", "td", "th", "p", "pre", "code", "strong",
            "blockquote", "hr", "h1", "h2", "h3", "h4", "h5", "h6"}
OUR_ATTRS = {"class", "style", "title", "role", "tabindex", "start"}
HOSTILE = ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>", '"><svg onload=alert(1)>',
           "' onmouseover='alert(1)", "&lt;b&gt;", "</span><b>x", "<!--", "]]>", "javascript:alert(1)",
           "\u202e", "\x00\x1b[31m", "**bold** `code`\n```\n"]
text = st.one_of(st.sampled_from(HOSTILE), st.text(), st.text(alphabet="<>&\"'=/ \n\tabc;#x"))


class Parsed(HTMLParser):
    """Tags, attributes and the visible text (a <br> counts as a newline)."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text, self.titles = [], set(), "", []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs |= {k for k, _ in attrs}
        self.titles += [v for k, v in attrs if k == "title"]
        if tag == "br":
            self.text += "\n"

    def handle_data(self, data):
        self.text += data


def piece(t, driver=0, shares=(1.0, 0.0), agree=(True, False)):
    return {"text": t, "driver": driver, "shares": list(shares), "agree": list(agree)}


@settings(max_examples=300, deadline=None)
@given(st.lists(text, min_size=1, max_size=6), st.lists(text, min_size=2, max_size=4))
def test_any_text_and_names_stay_text(texts, names):
    pieces = [piece(t, driver=i % len(names), shares=[1 / len(names)] * len(names), agree=[False] * len(names))
              for i, t in enumerate(texts)]
    column = {"text": "".join(texts), "pieces": pieces, "reason": "stop", "error": ""}
    for markup in (fused_html(column, names), legend_html(names), chart_html(
            [{"prompt": "p", "columns": {FUSED_KEY: column}}], names), status_html(texts)):
        parsed = Parsed(markup)
        assert set(parsed.tags) <= OUR_TAGS, markup
        assert parsed.attrs <= OUR_ATTRS, markup
    raw = Parsed(raw_html([{"prompt": texts[0], "columns": {FUSED_KEY: column}}], [("fused", FUSED_KEY)]))
    assert raw.tags == ["div", "div"] and raw.text == "".join(texts) + texts[0]  # what the copy buttons copy
    parsed = Parsed(fused_html(column, names))
    for title in parsed.titles:
        assert any(f"driven by {n} |" in title for n in names)  # the tooltip survives escaping intact


def test_hostile_markup_is_shown_not_run():
    out = token_span(piece("<img src=x onerror=alert(1)>"), ["a", "b"])
    assert "<img" not in out and "&lt;img src=x onerror=alert(1)&gt;" in out


def test_span_carries_driver_colour_and_all_shares():
    out = token_span(piece("hi", driver=1, shares=(0.25, 0.75)), ["smol", "qwen"])
    assert 'class="tok m1"' in out and 'tabindex="0"' in out  # colour, underline style: ui/layout.css()
    title = Parsed(out).titles[0]
    assert "driven by qwen" in title and "smol: 25%" in title and "qwen: 75%" in title


def test_column_messages_pair_prompts_with_answers():
    turns = [{"prompt": f"q{i}", "columns": {FUSED_KEY: {"text": "ab", "pieces": [piece("a"), piece("b")],
                                                           "reason": "end", "error": ""},
                                               "0": {"text": f"solo{i}", "pieces": [], "reason": "", "error": ""}}}
             for i in range(2)]
    fused = column_messages(turns, FUSED_KEY, ["x", "y"])
    assert [m["role"] for m in fused] == ["user", "assistant"] * 2
    assert fused[1]["content"].count('class="tok') == 2
    solo = column_messages(turns, "0", ["x", "y"])
    assert solo[3]["content"] == "solo1"
    assert column_messages(turns, "1", ["x", "y"]) == []  # no such column


def test_unfinished_and_stopped_columns_are_marked():
    assert solo_html({"text": "", "reason": ""}) == "…"
    assert "[empty answer]" in solo_html({"text": "", "reason": "end"})
    assert "[stopped]" in solo_html({"text": "x", "reason": "cancelled"})
    assert "[max tokens]" in fused_html({"pieces": [piece("x")], "reason": "length"}, ["a", "b"])
    assert "boom &lt;b&gt;" in solo_html({"text": "x", "reason": "error", "error": "boom <b>"})


def test_drive_stats_sum_to_one_and_count_agreement():
    column = {"pieces": [piece("aaa", 0, agree=(True, False)), piece("b", 1, agree=(True, True))]}
    drove, agreed = drive_stats(column, 2)
    assert drove == [0.75, 0.25] and agreed == [1.0, 0.5]


def test_exports_hold_every_column():
    record = {"version": 1, "members": ["a<b", "c"],
              "settings": {"method": "unite", "primary": 0, "members": [
                  {"model": "a<b", "quant": "auto", "weight": 1.0}, {"model": "c", "quant": "bf16", "weight": 2.0}],
                  "sampling": {"max_new_tokens": 8, "temperature": 0.0, "top_p": 1.0, "seed": 0}},
              "turns": [{"prompt": "hi\nthere", "columns": {
                  FUSED_KEY: {"text": "xy", "pieces": [piece("x"), piece("y", 1)], "reason": "end", "error": ""},
                  "0": {"text": "solo zero", "pieces": [], "reason": "end", "error": ""},
                  "1": {"text": "solo one", "pieces": [], "reason": "end", "error": ""}}}]}
    md = to_markdown(record)
    for part in ("> hi\n> there", "> xy", "**a<b alone:**", "> solo zero", "> solo one", "| c | 50% |"):
        assert part in md
    assert '"solo one"' in to_json(record)
