"""The app in a real browser (Debian chromium), on tiny fixture models."""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from tests.browser.server import launch
from ui.render import COLOURS

FUSED_SPANS = "#col-fused span.tok"
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas 3 deprecations in gradio


def open_app(page, url, query=""):
    page.goto(url + ("/?" + query if query else "/"))
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator("#model0 input")).not_to_have_value("")  # the load event filled the picker


def rgb(colour: str) -> str:
    """#rrggbb -> the rgb(r, g, b) that getComputedStyle reports."""
    return "rgb({}, {}, {})".format(*(int(colour[i:i + 2], 16) for i in (1, 3, 5)))


def set_member(page, slot: int, value: str):
    box = page.locator(f"#model{slot} input")
    for _ in range(5):  # on a cold, loaded machine the page's first render can still reset the picker once
        box.fill(value)
        box.press("Enter")
        page.locator("#prompt textarea").click()  # blur: the custom value is committed
        page.wait_for_timeout(400)
        if box.input_value() == value:
            return
    expect(box).to_have_value(value)


def set_max_tokens(page, n: int):
    box = page.locator("#max_new_tokens input[type=number]")
    if not box.is_visible():
        page.get_by_text("Decoding").click()
    box.fill(str(n))
    box.press("Enter")


def send(page, prompt: str):
    page.locator("#prompt textarea").fill(prompt)
    page.locator("#send").click()


def fused_length(page) -> int:
    return page.locator(FUSED_SPANS).count()


def wait_finished(page, answers: int = 1):
    expect(page.locator("#col-fused [data-testid='bot']")).to_have_count(answers)
    expect(page.locator("#status")).not_to_contain_text(re.compile("generating|loading"), timeout=30_000)
    expect(page.locator("#col-fused [data-testid='bot']").last).not_to_contain_text("failed")


def test_pick_members_stream_and_attribution(page, app):
    url, _ = app
    open_app(page, url)
    set_member(page, 2, "")  # three preset members -> two
    send(page, "Hello <b>ensemble</b>")
    seen = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen.add(fused_length(page))
        if "generating" not in page.locator("#status").inner_text() and fused_length(page):
            break
        time.sleep(0.03)
    assert len(seen - {0}) >= 3, f"fused column did not stream: {sorted(seen)}"
    expect(page.locator("#col-solo0")).to_be_visible()
    expect(page.locator("#col-solo1")).to_be_visible()
    expect(page.locator("#col-solo2")).to_be_hidden()
    assert page.locator("#col-solo0 [data-testid='bot']").last.inner_text().strip()
    expect(page.locator("#col-fused")).to_contain_text("Hello <b>ensemble</b>")  # the prompt, as text
    spans = page.locator(FUSED_SPANS)
    styles = spans.evaluate_all("els => els.map(e => [getComputedStyle(e).backgroundColor, e.getAttribute('title')])")
    colours = {s for s, _ in styles}
    assert colours <= {rgb(c) for c in COLOURS[:2]} and colours
    assert all(re.fullmatch(r"driven by \S+ \| \S+: \d+% · \S+: \d+%", t) for _, t in styles), styles[:3]
    expect(page.locator("#chart table.drive tr")).to_have_count(3)  # header + one row per member
    page.locator("#col-fused button[title='Copy message']").last.click()
    page.wait_for_timeout(400)
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == page.locator("#raw-fused-0").text_content()  # the exact text, not the span markup
    assert copied.strip() and "<span" not in copied


def test_stop_mid_stream_then_chat_again_and_regenerate(page, app):
    url, models = app
    open_app(page, url)
    set_max_tokens(page, 400)
    send(page, "Tell me a long story")
    expect(page.locator(FUSED_SPANS).nth(5)).to_be_attached()
    page.locator("#stop").click()
    expect(page.locator("#status")).to_contain_text("stopped")
    expect(page.locator("#col-fused [data-testid='bot']").last).to_contain_text("[stopped]")
    expect(page.locator("#col-solo0 [data-testid='bot']").last).to_contain_text("[stopped]")
    stopped_at = fused_length(page)
    time.sleep(1.0)
    assert fused_length(page) == stopped_at < 400
    set_max_tokens(page, 8)
    send(page, "Once more")  # the device slot was freed: a new answer runs at once
    wait_finished(page, answers=2)
    first = page.locator("#col-fused [data-testid='bot']").first.inner_html()
    streams, original = [], models.stream
    models.stream = lambda *a: streams.append(a[1]) or original(*a)
    try:
        page.locator("#regen").click()
        deadline = time.monotonic() + 20
        while not streams and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        models.stream = original
    assert [m["content"] for m in streams[0]][-1] == "Once more"  # the last turn, decoded again
    wait_finished(page, answers=2)  # replaced, not appended
    assert page.locator("#col-fused [data-testid='bot']").first.inner_html() == first


def test_share_opens_read_only_and_coloured(page, app, browser):
    url, models = app
    open_app(page, url)
    send(page, "share <this> & that")
    wait_finished(page)
    page.locator("#share").click()
    link_box = page.locator("#link textarea, #link input").first
    expect(link_box).to_have_value(re.compile(r"\?c=[A-Za-z0-9_-]{22}$"))
    link = link_box.input_value()
    original = page.locator(FUSED_SPANS).evaluate_all("els => els.map(e => e.outerHTML)")
    page.locator("#export").click()
    for name in ("comparison.json", "comparison.md"):
        href = page.locator(f"#files a[href$='{name}']").get_attribute("href")
        assert "share <this> & that" in page.request.get(href).text()
    loads = models.load
    calls = []
    models.load = lambda *a, **k: calls.append(a) or loads(*a, **k)
    try:
        fresh = browser.new_context(viewport={"width": 1500, "height": 1000})
        viewer = fresh.new_page()
        viewer.goto(link)
        expect(viewer.locator("#rerun")).to_be_visible()
        expect(viewer.locator(FUSED_SPANS)).to_have_count(len(original))
        assert viewer.locator(FUSED_SPANS).evaluate_all("els => els.map(e => e.outerHTML)") == original
        expect(viewer.locator("#send")).to_be_disabled()
        expect(viewer.locator("#status")).to_contain_text("read-only")
        assert calls == []  # shown without loading any model
        viewer.locator("#rerun").click()
        expect(viewer.locator("#rerun")).to_be_hidden()
        wait_finished(viewer)
        expect(viewer.locator(FUSED_SPANS).first).to_be_attached()
        fresh.close()
    finally:
        models.load = loads


def test_hostile_prefill_link_runs_nothing(page, app):
    url, _ = app
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    payload = '<img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2</script>'
    query = urlencode({"preset": payload, "method": payload, "prompt": payload, "c": payload,
                       "x<svg onload=alert(1)>": "1"})
    page.goto(f"{url}/?{query}")
    expect(page.locator("#status")).to_contain_text("unknown preset")
    expect(page.locator("#status")).to_contain_text("unknown method")
    expect(page.locator("#status")).to_contain_text("<img src=x")  # shown as text
    expect(page.locator("#prompt textarea")).to_have_value(payload)
    page.locator("#send").click()
    wait_finished(page)
    expect(page.locator("#col-fused")).to_contain_text("<script>window.__pwned=2</script>")
    assert dialogs == []
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("img[src='x'], svg[onload]").count() == 0


def test_load_errors_and_bad_settings_show_on_the_page(page, app):
    url, _ = app
    open_app(page, url)
    set_member(page, 0, "/no/such/folder")
    send(page, "hi")
    expect(page.locator("#status .notice.error")).to_contain_text("could not load the ensemble")
    expect(page.locator("#status")).to_contain_text("no such folder")
    set_member(page, 0, "")
    set_member(page, 1, "")
    send(page, "hi")
    expect(page.locator("#status .notice.error")).to_contain_text("pick 2 to 4 members (got 1)")
    expect(page.locator("#send")).to_be_enabled()


def test_busy_server_shows_queue_position_and_refuses_beyond_the_queue(browser, fixture_dirs, tmp_path):
    url, demo, _ = launch(fixture_dirs, tmp_path, max_new_tokens=400, queue_size=1)
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        pages = [context.new_page() for _ in range(3)]  # three tabs: three sessions
        for page in pages:
            open_app(page, url)
        for page in pages:
            send(page, "a long story")
            page.wait_for_timeout(300)
        expect(pages[1].locator("#col-fused")).to_contain_text(re.compile(r"queue: 1/1"))
        expect(pages[2].get_by_text("This application is currently busy")).to_be_visible()
        pages[1].locator("#stop").click()  # still waiting: dropped when its turn comes
        pages[0].locator("#stop").click()
        expect(pages[0].locator("#col-fused [data-testid='bot']")).to_contain_text("[stopped]")
        expect(pages[1].locator("#status")).to_contain_text(re.compile(r"^\s*stopped\s*$"))
        expect(pages[1].locator("#col-fused [data-testid='bot']")).to_have_count(0)
    finally:
        context.close()
        demo.close()
