"""ui.picker and ui.state: picker values <-> settings <-> EnsembleConfig, and events folded into turns."""

import pytest

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig
from ensemble.decode.events import FUSED, Finished, MemberFailed, Piece, Started, Stats
from ui.picker import (
    FIELDS,
    config_from_settings,
    settings_from_config,
    settings_from_values,
    values_from_settings,
)
from ui.state import Limits, Session, apply_event, new_turn

METHODS = ["average", "gac", "unite"]
PRESET = EnsembleConfig(members=(MemberSpec("org/a", dtype="bf16"), MemberSpec("org/b", weight=2.0)), method="gac",
                        options={"threshold": 0.5}, sampling=SamplingConfig(max_new_tokens=32, stop=("\nUser:",)))
STATS = Stats(1, 0.0, 0.0, 0.0, (), (), (), ())


def values(**over):
    v = dict(zip(FIELDS, values_from_settings(settings_from_config("p", PRESET)), strict=True))
    v.update(over)
    return [v[k] for k in FIELDS]


def test_preset_round_trips_through_the_picker():
    settings, problems = settings_from_values(values(), METHODS, Limits())
    assert problems == [] and settings == settings_from_config("p", PRESET)
    config = config_from_settings(settings, {"p": PRESET})
    assert config.members == PRESET.members and config.options == {"threshold": 0.5}
    assert config.sampling == PRESET.sampling  # stop strings come from the preset


def test_changing_the_method_drops_the_preset_options():
    settings, _ = settings_from_values(values(method="unite"), METHODS, Limits())
    assert config_from_settings(settings, {"p": PRESET}).options == {}


@pytest.mark.parametrize("over, message", [
    ({"model1": ""}, "pick 2 to 4 members"),
    ({"method": "nope"}, "method must be one of"),
    ({"weight0": -1}, "weight must be a number > 0"),
    ({"weight0": "abc"}, "weight must be a number > 0"),
    ({"quant0": "3bit"}, "quantization must be one of"),
    ({"primary": 3}, "primary must be a member number from 1 to 2"),
    ({"max_new_tokens": 10_000}, "max new tokens must be from 1 to 512"),
    ({"temperature": -1}, "temperature must be >= 0"),
    ({"model0": "a\x00b"}, "not a model id or path"),
])
def test_bad_picker_values_give_messages(over, message):
    settings, problems = settings_from_values(values(**over), METHODS, Limits())
    assert settings is None and any(message in p for p in problems), problems


def test_quantization_choice_is_the_member_dtype():
    settings, problems = settings_from_values(values(quant0="4bit", quant1="8bit"), METHODS, Limits())
    assert not problems, problems
    config = config_from_settings(settings, {})
    assert [m.dtype for m in config.members[:2]] == ["4bit", "8bit"]


def test_events_fill_the_turn():
    turn = new_turn("q", 2)
    events = [Started(FUSED, ("a", "b"), "unite", (3, 4)), Piece(FUSED, "Hel", 0, (0.7, 0.3), (True, False), (1, 2)),
              Piece(1, "Yo", 0, (1.0,), (True,), (1,)), Piece(FUSED, "lo", 1, (0.2, 0.8), (False, True), (1, 1)),
              MemberFailed(0, 0, "a", "out of memory"), Finished(FUSED, "Hello", "end", STATS)]
    for e in events:
        apply_event(turn, e)
    fused = turn["columns"]["fused"]
    assert fused["text"] == "Hello" and [p["driver"] for p in fused["pieces"]] == [0, 1] and fused["reason"] == "end"
    assert turn["columns"]["1"]["text"] == "Yo" and turn["columns"]["1"]["pieces"] == []
    assert "out of memory" in turn["columns"]["0"]["error"]


def test_session_history_and_settle():
    session = Session(turns=[new_turn("q1", 2)])
    session.turns[0]["columns"]["fused"]["text"] = "a1"
    assert session.history() == [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]
    session.settle()
    assert {c["reason"] for c in session.turns[0]["columns"].values()} == {"cancelled"}


def test_the_per_prompt_switch_reaches_the_config():
    settings, problems = settings_from_values(values(per_prompt=True), METHODS, Limits())
    assert problems == [] and settings["per_prompt"] is True
    assert config_from_settings(settings, {"p": PRESET}).per_prompt == "demos"
    assert config_from_settings({**settings, "per_prompt": False}, {"p": PRESET}).per_prompt == "off"
    old_share = {k: v for k, v in settings.items() if k != "per_prompt"}  # links made before the switch existed
    assert config_from_settings(old_share, {"p": PRESET}).per_prompt == "off"


def test_an_answers_plan_is_kept_and_shown_escaped():
    from ui.render import fused_html

    turn = new_turn("q", 3)
    apply_event(turn, Started(FUSED, ("a", "b", "c"), "unite", (1, 1, 1), (1.0, 0.0, 1.0), 2, (1,), (0.8, 1.5, 0.7)))
    apply_event(turn, Piece(FUSED, "x", 2, (0.5, 0.0, 0.5), (True, False, True), (1, 0, 1)))
    assert turn["columns"]["fused"]["plan"] == {"primary": 2, "dropped": [1], "bits_per_byte": [0.8, 1.5, 0.7]}
    html = fused_html(turn["columns"]["fused"], ["<i>A", "B", "C"])
    assert "main C; sat out: B" in html and "&lt;i&gt;A 0.80" in html and "<i>" not in html
    plain = new_turn("q", 2)
    apply_event(plain, Started(FUSED, ("a", "b"), "unite", (1, 1), (1.0, 1.0), 0, (), (None, None)))
    assert "plan" not in plain["columns"]["fused"]
