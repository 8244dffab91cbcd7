"""System prompt, edit-and-resend, the folding models panel, blind mode on every vote, and rendering that stays flat
in the conversation's length (ui.conversation, ui.columns, ui.handlers_edit) with a scripted backend."""

from pathlib import Path
from types import SimpleNamespace

import pytest

import ui.columns
from tests.test_ui_handlers import Scripted, handlers, run, values
from ui.render import FUSED_KEY
from ui.state import Session


class Recording(Scripted):
    """Scripted, and keeps the messages each answer was asked with."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.asked = []

    def stream(self, config, messages, should_stop):
        self.asked.append(messages)
        yield from super().stream(config, messages, should_stop)


def test_system_prompt_reaches_the_engine_and_is_stored(tmp_path):
    backend = Recording()
    h = handlers(tmp_path, backend)
    session = Session()
    run(h.respond(session, "one", *values(), "  Be brief.  "))
    run(h.respond(session, "two", *values(), "Be brief."))
    assert backend.asked[0] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one"}]
    assert backend.asked[1][0] == {"role": "system", "content": "Be brief."} and len(backend.asked[1]) == 4
    link = h.share(session, request=SimpleNamespace(base_url="http://h/"))["link"]["value"]
    page = h.on_load(request=SimpleNamespace(query_params={"c": link.split("=")[1]}))
    assert page["system"] == "Be brief." and page["session"].system == "Be brief."
    run(h.rerun(page["session"]))
    assert backend.asked[-1][0] == {"role": "system", "content": "Be brief."}
    files = h.export(session)["files"]["value"]
    assert "> Be brief." in Path(files[1]).read_text() and '"system": "Be brief."' in Path(files[0]).read_text()
    run(h.respond(session, "three", *values()))  # no system prompt now: a new conversation
    assert backend.asked[-1] == [{"role": "user", "content": "three"}] and len(session.turns) == 1


def test_bad_system_prompt_is_a_message(tmp_path):
    backend = Recording()
    out = run(handlers(tmp_path, backend, max_prompt_chars=10).respond(Session(), "hi", *values(), "x" * 11))
    assert len(out) == 1 and "system prompt is 11 characters" in out[0]["status"] and backend.asked == []


def test_models_panel_folds_to_a_summary_once_loaded(tmp_path):
    out = run(handlers(tmp_path).respond(Session(), "hi", *values(), "sys"))
    folds = [o["models_panel"] for o in out if "models_panel" in o]
    assert len(folds) == 1 and folds[0]["open"] is False
    assert folds[0]["label"] == "Models: a + b · unite · system prompt set (open to change)"
    failed = run(handlers(tmp_path, Scripted(load_error=RuntimeError("x"))).respond(Session(), "hi", *values()))
    assert not any("models_panel" in o for o in failed)  # a failed load leaves the panel open


def edit(index, text):
    return SimpleNamespace(index=index, value=[{"type": "text", "text": text}], previous_value="")


def test_edit_replaces_the_last_turn_in_every_column(tmp_path):
    backend = Recording()
    h = handlers(tmp_path, backend)
    session = Session()
    for prompt in ("one", "two"):
        run(h.respond(session, prompt, *values()))
    first, old_id = session.turns[0], session.turns[1]["id"]
    out = run(h.edit(session, *values(), edit=edit(2, "two, edited")))
    assert [t["prompt"] for t in session.turns] == ["one", "two, edited"] and session.turns[0] is first
    assert session.turns[1]["id"] != old_id and all(c["reason"] == "end" for c in session.turns[1]["columns"].values())
    assert backend.asked[-1][-1] == {"role": "user", "content": "two, edited"} and len(backend.asked[-1]) == 3
    for column in ("fused", "solo0", "solo1"):
        messages = out[-1][column]["value"]
        assert len(messages) == 4 and messages[2]["content"] == "two, edited"


@pytest.mark.parametrize("index, text, message", [(0, "x", "only the last message"), (2, "  ", "empty"),
                                                  (2, "y" * 11, "limit is 10")])
def test_edit_refuses_what_it_cannot_do(tmp_path, index, text, message):
    backend = Recording()
    h = handlers(tmp_path, backend, max_prompt_chars=10)
    session = Session()
    for prompt in ("one", "two"):
        run(h.respond(session, prompt, *values()))
    out = run(h.edit(session, *values(), edit=edit(index, text)))
    assert len(out) == 1 and message in out[0]["status"] and len(backend.asked) == 2
    assert out[0]["fused"]["value"][2]["content"] == "two"  # the columns show the real prompt again
    assert "send a prompt first" in run(h.edit(Session(), *values(), edit=edit(0, "x")))[0]["status"]


def labels(out):
    return [out[k]["label"] for k in ("fused", "solo0", "solo1")]


def test_blind_mode_holds_for_every_vote(tmp_path):
    h = handlers(tmp_path)
    session = Session()
    h.set_blind(session, True)
    orders = []
    for turn in range(6):
        out = run(h.respond(session, f"q{turn}", *values()))[-1]
        assert labels(out) == ["Answer A", "Answer B", "Answer C"], turn  # hidden again on every turn
        assert out["chart"] == "" and 'class="tok' not in str(out["fused"]["value"])
        orders.append(tuple(session.turns[-1]["order"]))
        voted = h.vote(session, FUSED_KEY)
        assert all(": " in label for label in labels(voted)) and voted["chart"]
        fused_column = ("fused", "solo0", "solo1")[orders[-1].index(FUSED_KEY)]
        assert voted[fused_column]["label"].endswith("Ensemble (fused)")
    assert len(set(orders)) > 1  # drawn again per turn (6 draws of 3! = 6 orders all equal: p = 6**-5)
    # Earlier turns keep their names inline once voted; the page labels name only the last turn's draw.
    out = run(h.respond(session, "last", *values()))[-1]
    for n, order in enumerate(orders):
        for column, key in zip(("fused", "solo0", "solo1"), order, strict=True):
            answer = out[column]["value"][2 * n + 1]["content"]
            assert ("Ensemble (fused)" if key == FUSED_KEY else f"{session.names[int(key)]} alone") in answer
    assert "reveal" not in str(out["fused"]["value"][-1]) and labels(out) == ["Answer A", "Answer B", "Answer C"]


def test_streaming_renders_only_the_live_turn(tmp_path, monkeypatch):
    h = handlers(tmp_path, Scripted(n=40, delay=0.01), updates_per_second=1e9, max_turns=9)
    session = Session()
    for turn in range(8):
        run(h.respond(session, f"q{turn}", *values()))
    rendered = []
    real = ui.columns.column_messages
    monkeypatch.setattr(ui.columns, "column_messages", lambda turns, *a: rendered.append(len(turns)) or real(turns, *a))
    out = run(h.respond(session, "q8", *values()))
    streamed = [o for o in out if "chart" in o and "raw" not in o]
    assert len(streamed) >= 6  # views while streaming (the engine's thread may hand over several pieces at once)
    assert set(rendered) == {1} and len(rendered) <= 3 * (len(out) + 1)  # the live turn only, 3 columns a view
    assert len(out[-1]["fused"]["value"]) == 18 and 'id="raw-fused-8"' in out[-1]["raw"]
    assert all("raw" not in o and "vote_choice" not in o for o in streamed)  # the rest comes with the last view
    with_narrow = [o for o in streamed if "solo0" in o]
    assert len(streamed) / 3 - 1 <= len(with_narrow) <= len(streamed) / 3 + 1  # narrow columns: a third of views
    assert "solo0" in out[-1] and len(out[-1]["solo0"]["value"]) == 18
