"""ui.links: prefill and share links are validated; a bad parameter is a message, never an exception."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ui.links import Link, new_id, parse_link, share_url, valid_id

PRESETS, METHODS = ["offline-default", "tiny"], ["average", "gac", "unite"]


def parse(**params):
    return parse_link(params, PRESETS, METHODS, max_prompt_chars=100)


def test_good_prefill_passes_through():
    assert parse(preset="tiny", method="gac", prompt="Hi\nthere") == Link("", "tiny", "gac", "Hi\nthere", ())


def test_each_bad_parameter_gets_its_own_message():
    link = parse(preset="nope", method="<script>", prompt="x" * 101, c="short", color="red")
    assert (link.preset, link.method, link.prompt, link.comparison) == ("", "", "", "")
    text = " | ".join(link.problems)
    assert len(link.problems) == 5
    for part in ("unknown preset 'nope'", "unknown method '<script>'", "101 characters", "malformed", "'color'"):
        assert part in text


def test_control_characters_and_long_values():
    assert parse(prompt="a\x00b").problems and parse(prompt="a\x00b").prompt == ""
    long_bad = parse(method="m" * 500)
    assert len(long_bad.problems[0]) < 200  # the message repeats only the start of a huge value


def test_gradio_own_parameters_are_ignored():
    assert parse(__theme="dark").problems == ()


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.text(max_size=200), max_size=6))
def test_any_query_parses_without_raising(params):
    link = parse_link(params, PRESETS, METHODS, 100)
    assert link.preset in ("", *PRESETS) and link.method in ("", *METHODS) and len(link.prompt) <= 100
    assert link.comparison == "" or valid_id(link.comparison)


def test_ids_are_random_and_valid():
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200 and all(valid_id(i) for i in ids)
    assert not valid_id("../../etc/passwd") and not valid_id("a" * 21) and not valid_id("a" * 23)


def test_share_url():
    assert share_url("http://h:7860/?x=1", "abc") == "http://h:7860/?c=abc"
    assert share_url("https://huggingface.co/spaces/o/s", "abc") == "https://huggingface.co/spaces/o/s/?c=abc"
