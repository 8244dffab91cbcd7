"""The conversation's habits in a real browser (Debian chromium): the system prompt, editing the last prompt, the
models panel folding to a summary, and blind mode on every vote."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_chat_browser import Scripted, bot, column_labels
from tests.browser.test_ui_browser import FUSED_SPANS, open_app, send, set_max_tokens, wait_finished

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
COLUMNS = ("fused", "solo0", "solo1", "solo2")


class Echo(Scripted):
    """Every column answers "echo: <the last user message>", and the messages each answer got are kept."""

    def __init__(self, models):
        super().__init__(models, "")
        self.asked = []

    def stream(self, config, messages, should_stop, solo=True):
        self.asked.append(messages)
        self.answer = f"echo: {messages[-1]['content']}"
        yield from super().stream(config, messages, should_stop, solo)


def test_system_prompt_reaches_every_member_and_the_share(page, app, browser):
    url, models = app
    open_app(page, url)
    set_max_tokens(page, 6)  # the real engine: short, the test machines are shared
    page.locator("#system textarea").fill("Answer like a pirate.")
    asked = []
    original = models.stream

    def recording(config, messages, should_stop, solo=True):  # the real engine, on the fixture models
        asked.append(messages)
        yield from original(config, messages, should_stop, solo)

    models.stream = recording
    try:
        send(page, "Hello")
        wait_finished(page)
    finally:
        models.stream = original
    assert asked[0] == [{"role": "system", "content": "Answer like a pirate."}, {"role": "user", "content": "Hello"}]
    for column in COLUMNS:  # members with and without a chat template answered
        expect(bot(page, column).last).not_to_contain_text(re.compile(r"failed|\[empty answer\]"))
    page.locator("#share").click()
    link_box = page.locator("#link textarea, #link input").first
    expect(link_box).to_have_value(re.compile(r"\?c="))
    viewer = browser.new_context().new_page()
    viewer.goto(link_box.input_value())
    expect(viewer.locator("#system textarea")).to_have_value("Answer like a pirate.")
    viewer.context.close()


def test_edit_and_resend_the_last_prompt(page, app):
    url, models = app
    open_app(page, url)
    with Echo(models) as echo:
        send(page, "first")
        wait_finished(page)
        send(page, "second <b>x</b>\n  indented")
        wait_finished(page, 2)
        user = page.locator("#col-solo1 [data-testid='user']").last
        user.hover()
        page.locator("#col-solo1 button[title='Edit']").last.click()
        box = page.locator("#col-solo1 textarea.edit-textarea")
        expect(box).to_have_value("second <b>x</b>\n  indented")  # the exact prompt, not its HTML
        box.fill("second, edited")
        page.locator("#col-solo1 button[title='Submit']").click()
        for column in COLUMNS:  # the last turn's answers are replaced in every column
            expect(bot(page, column).last).to_contain_text("echo: second, edited")
            expect(bot(page, column)).to_have_count(2)
            expect(page.locator(f"#col-{column} [data-testid='user']").last).to_have_text("second, edited")
        wait_finished(page, 2)
        assert [m[-1]["content"] for m in echo.asked] == ["first", "second <b>x</b>\n  indented", "second, edited"]
        assert len(echo.asked[-1]) == 3  # first turn kept, the edited one replaced
        page.locator("#col-fused [data-testid='user']").first.hover()
        page.locator("#col-fused button[title='Edit']").first.click()
        page.locator("#col-fused textarea.edit-textarea").fill("first, edited")
        page.locator("#col-fused button[title='Submit']").click()
        expect(page.locator("#status")).to_contain_text("only the last message can be edited")
        expect(page.locator("#col-fused [data-testid='user']").first).to_have_text("first")
        assert len(echo.asked) == 3


def test_models_panel_folds_to_a_summary_and_reopens(page, app):
    url, models = app
    open_app(page, url)
    expect(page.locator("#model0")).to_be_visible()  # open before a set is loaded
    with Scripted(models, "ok"):
        send(page, "hi")
        wait_finished(page)
    label = page.locator("#models-panel .label-wrap")
    expect(label).to_have_text(re.compile(r"Models: bpe-qwen2 \+ uni-llama \+ uni-gemma3 · unite"))
    expect(page.locator("#model0")).to_be_hidden()
    box = page.locator("#col-fused").bounding_box()
    assert box["y"] < 1000, box  # the answers start on the first screen
    label.click()
    expect(page.locator("#model0")).to_be_visible()


def test_blind_mode_hides_the_names_for_every_vote(page, app):
    url, models = app
    open_app(page, url)
    page.get_by_role("tab", name="Results").click()
    before = page.locator("#results").inner_text()
    page.get_by_role("tab", name="Chat").click()
    page.locator("#blind input").check()
    for turn in (1, 2, 3):
        with Scripted(models, f"answer **{turn}**"):
            send(page, f"question {turn}")
            wait_finished(page, turn)
        assert column_labels(page) == ["Answer A", "Answer B", "Answer C", "Answer D"], turn
        assert page.locator("#chart").inner_text().strip() == ""
        assert page.locator(FUSED_SPANS).count() == 0
        page.locator("#vote-choice label", has_text="Answer B").click()
        page.locator("#vote").click()
        expect(page.locator("#status")).to_contain_text("vote stored")
        labels = column_labels(page)
        assert all(": " in label for label in labels), labels
        voted = labels[1].split(": ", 1)[1]
        expect(page.locator("#votes")).to_contain_text(f"turn {turn}: {voted} was best (blind vote)")
        # the voted turn now names its answers inline, in every column
        for column in COLUMNS:
            expect(bot(page, column).nth(turn - 1).locator(".reveal")).to_have_count(1)
    page.get_by_role("tab", name="Results").click()
    expect(page.locator("#results table.results")).to_be_visible()
    assert page.locator("#results").inner_text() != before
