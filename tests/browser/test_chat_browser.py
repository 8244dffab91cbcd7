"""Chat habits and rendering in a real browser (Debian chromium): keyboard, markdown and code in every column,
exact copy, hostile model output, the second attribution cue, contrast in both themes."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from ensemble.decode.events import FUSED, Finished, Piece, Stats
from tests.browser.test_ui_browser import FUSED_SPANS, open_app, send, wait_finished

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
STATS = Stats(1, 0.0, 0.0, 0.0, (), (), (), ())
CODE = "def fib(n):\n    if n < 2:\n        return n\n    a, b = 0, 1\n    for _ in range(n):\n" \
       "        a, b = b, a + b\n    return a"
ANSWER = f"Here is `fib`:\n\n```python\n{CODE}\n```\n\n- fast\n- **exact**\n"
HOSTILE = ('<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> '
           '[link](javascript:window.__pwned=3) ![t](http://127.0.0.1:9/track.png) <b>bold?</b>\n\n'
           '```html\n<svg onload="window.__pwned=4">\n```')


class Scripted:
    """Stands in for models.stream: every column streams `answer` in pieces of 3 characters, drivers cycling,
    while the real backend still loads the models (so the page goes through its real loading path)."""

    def __init__(self, models, answer: str, delay: float = 0.0):
        self.models, self.answer, self.delay, self.original = models, answer, delay, models.stream

    def __enter__(self):
        self.models.stream = self.stream
        return self

    def __exit__(self, *exc):
        self.models.stream = self.original

    def stream(self, config, messages, should_stop, solo=True):
        n = len(config.members)
        parts = [self.answer[i:i + 3] for i in range(0, len(self.answer), 3)]
        for k, part in enumerate(parts):
            if should_stop():
                for s in (FUSED, *range(n)):
                    yield Finished(s, self.answer[:3 * k], "cancelled", STATS)
                return
            for s in (FUSED, *range(n)):
                shares = tuple(0.7 if i == k % n else 0.3 / (n - 1) for i in range(n))
                yield Piece(s, part, k % n, shares, tuple(i == k % n for i in range(n)), (1,) * n)
            time.sleep(self.delay)
        for s in (FUSED, *range(n)):
            yield Finished(s, self.answer, "end", STATS)


def bot(page, column: str):
    return page.locator(f"#col-{column} [data-testid='bot']")


def test_enter_sends_shift_enter_newline_esc_stops(page, app):
    url, models = app
    open_app(page, url)
    box = page.locator("#prompt textarea")
    with Scripted(models, "word " * 200, delay=0.05):
        box.click()
        box.type("first line")
        box.press("Shift+Enter")
        box.type("second line")
        page.wait_for_timeout(300)
        assert box.input_value() == "first line\nsecond line"  # a newline, nothing sent
        expect(bot(page, "fused")).to_have_count(0)
        box.press("Enter")
        expect(bot(page, "fused")).to_have_count(1)
        expect(box).to_have_value("")
        expect(page.locator("#col-fused [data-testid='user']")).to_contain_text("second line")
        expect(page.locator(FUSED_SPANS).nth(5)).to_be_attached()
        page.keyboard.press("Escape")
        expect(bot(page, "fused")).to_contain_text("[stopped]")
    expect(page.locator("#status")).to_contain_text("stopped")


def test_code_renders_with_indentation_in_every_column_and_copies_exactly(page, app):
    url, models = app
    open_app(page, url)
    with Scripted(models, ANSWER):
        send(page, "fibonacci please")
        wait_finished(page)
    for column in ("fused", "solo0", "solo1", "solo2"):
        answer = bot(page, column).last
        expect(answer.locator("pre code")).to_have_count(1)
        assert answer.locator("pre code").inner_text().rstrip("\n") == CODE, column  # indentation kept
        expect(answer.locator("code").first).to_have_text("fib")  # inline code
        expect(answer.locator("li")).to_have_count(2)
        expect(answer.locator("strong")).to_have_text("exact")
        assert "```" not in answer.inner_text()
        answer.hover()
        page.locator(f"#col-{column} button[title='Copy message']").last.click()
        page.wait_for_timeout(400)
        assert page.evaluate("() => navigator.clipboard.readText()") == ANSWER, column
    spans = page.locator("#col-fused pre code span.tok")
    assert spans.count() > 10  # the attribution spans sit inside the code block
    assert "".join(spans.all_text_contents()) == CODE
    assert page.evaluate("() => getComputedStyle(document.querySelector('#col-fused pre code')).whiteSpace") == "pre"


def test_hostile_model_output_stays_inert(page, app):
    url, models = app
    dialogs, requests = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: requests.append(r.url))
    open_app(page, url)
    with Scripted(models, HOSTILE):
        send(page, "be evil")
        wait_finished(page)
    for column in ("fused", "solo0"):
        answer = bot(page, column).last
        expect(answer).to_contain_text("<script>window.__pwned=2</script>")  # shown as text
        expect(answer).to_contain_text("<b>bold?</b>")
        expect(answer.locator("pre code")).to_contain_text('<svg onload="window.__pwned=4">')
        bad = answer.locator("img, script, svg:not(button svg), b, [onload], [onerror], a[href^='javascript']")
        assert bad.count() == 0, (column, bad.evaluate_all("els => els.map(e => e.outerHTML)"))
    page.locator("#col-fused a, #col-solo0 a").evaluate_all("els => els.forEach(e => e.click())")
    page.wait_for_timeout(300)
    assert dialogs == [] and page.evaluate("() => window.__pwned") is None
    assert not [r for r in requests if "track.png" in r or r.endswith("/x")]


def test_colour_toggle_and_second_cue(page, app):
    url, models = app
    open_app(page, url)
    with Scripted(models, "alpha beta gamma delta epsilon"):
        send(page, "words")
        wait_finished(page)
    styles = page.locator(FUSED_SPANS).evaluate_all(
        "els => els.map(e => { const s = getComputedStyle(e); return [e.className, s.backgroundColor, "
        "s.textDecorationLine, s.textDecorationStyle]; })")
    by_member = {cls: (bg, line, style) for cls, bg, line, style in styles}
    assert len(by_member) == 3
    assert len({style for _, _, style in by_member.values()}) == 3  # told apart without colour too
    assert all(line == "underline" for _, line, _ in by_member.values())
    page.locator("#colour input").uncheck()
    page.wait_for_timeout(200)
    plain = page.locator(FUSED_SPANS).first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert plain == "rgba(0, 0, 0, 0)"
    page.locator("#colour input").check()


def test_shares_by_keyboard_focus_and_tap(page, app):
    url, models = app
    open_app(page, url)
    with Scripted(models, "alpha beta gamma delta"):
        send(page, "words")
        wait_finished(page)
    first = page.locator(FUSED_SPANS).first
    first.focus()
    tip = page.locator("#tok-tip")
    expect(tip).to_be_visible()
    expect(tip).to_have_text(re.compile(r"driven by \S+ \| .*70%"))
    page.keyboard.press("Tab")  # the next token is the next tab stop
    assert page.evaluate("() => document.activeElement.classList.contains('tok')")
    page.keyboard.press("Escape")
    expect(tip).to_be_hidden()
    page.locator(FUSED_SPANS).nth(2).click()  # a tap
    expect(tip).to_be_visible()


CONTRAST_JS = """(selector) => {
  const parse = (c) => { const p = c.match(/rgba?\\(([^)]+)\\)/)[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
                         return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lum = (rgb) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                         return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]); };
  const over = (top, base) => base.map((v, i) => top[i] * top[3] + v * (1 - top[3]));
  const background = (el) => {  // the colour painted behind el: its own and its ancestors' backgrounds, blended
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    return layers.reverse().reduce((base, layer) => over(layer, base), [255, 255, 255]);
  };
  return [...document.querySelectorAll(selector)].filter((e) => e.textContent.trim() && e.offsetParent).map((e) => {
    const bg = background(e), fg = over(parse(getComputedStyle(e).color), bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    return [e.textContent.slice(0, 30), Math.round((a + 0.05) / (b + 0.05) * 100) / 100];
  });
}"""
CHECKED = ["#col-fused span.tok", ".legend .chip", "#chart td", "#chart th", ".legend", "#status .notice",
           "#col-solo0 [data-testid='bot'] p", "#col-solo0 [data-testid='bot'] li", "#tok-tip", ".note"]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_text_contrast_meets_wcag_aa(page, app, theme):
    url, models = app
    open_app(page, url, f"__theme={theme}")
    assert page.evaluate("() => document.body.classList.contains('dark')") == (theme == "dark")
    with Scripted(models, "Some **words** and `code` here:\n\n- one\n- two\n\n```\nx = 1\n```"):
        send(page, "words")
        wait_finished(page)
    page.locator(FUSED_SPANS).first.focus()  # shows the share tip
    failing, checked = [], 0
    for selector in CHECKED:
        for text, ratio in page.evaluate(CONTRAST_JS, selector):
            checked += 1
            if ratio < 4.5:
                failing.append((selector, text, ratio))
    assert checked > 20 and not failing, failing
    page.locator("#colour input").uncheck()  # plain text too
    ratios = page.evaluate(CONTRAST_JS, "#col-fused span.tok")
    assert min(r for _, r in ratios) >= 4.5, ratios


def column_labels(page) -> list[str]:
    return [page.locator(f"#col-{c} [data-testid='block-label'], #col-{c} label").first.inner_text().strip()
            for c in ("fused", "solo0", "solo1", "solo2")]


def test_blind_vote_is_stored_counted_shared_and_shown_in_results(page, app, browser):
    url, models = app
    open_app(page, url)
    page.locator("#blind input").check()
    expect(page.locator("#status")).to_contain_text("blind vote")
    with Scripted(models, "Blind **answer**"):
        send(page, "who is best?")
        wait_finished(page)
    labels = column_labels(page)
    assert labels == ["Answer A", "Answer B", "Answer C", "Answer D"], labels  # no names before the vote
    assert page.locator("#chart").inner_text().strip() == ""
    assert page.locator(FUSED_SPANS).count() == 0  # no colours to give the fused answer away
    page.locator("#vote-choice label", has_text="Answer C").click()
    page.locator("#vote").click()
    expect(page.locator("#status")).to_contain_text("vote stored")
    labels = column_labels(page)
    assert all(label.startswith("Answer ") and ": " in label for label in labels), labels  # names back
    voted = labels[2].split(": ", 1)[1]
    expect(page.locator("#votes")).to_contain_text(f"turn 1: {voted} was best (blind vote)")
    page.get_by_role("tab", name="Results").click()
    table = page.locator("#results table.results")
    expect(table).to_be_visible()
    expect(table.locator("tr")).to_have_count(4)  # header + one row per member
    expect(table.locator(".rate").first).to_be_attached()  # the chart: a bar with its interval
    page.get_by_role("tab", name="Chat").click()
    page.locator("#share").click()
    link_box = page.locator("#link textarea, #link input").first
    expect(link_box).to_have_value(re.compile(r"\?c="))
    viewer = browser.new_context().new_page()
    viewer.goto(link_box.input_value())
    expect(viewer.locator("#votes")).to_contain_text(f"turn 1: {voted} was best (blind vote)")
    viewer.context.close()
