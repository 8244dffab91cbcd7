"""The README's YAML front matter against the Hub's Spaces configuration rules, and the Hub preset a Space runs
against the recorded licence and gating facts (tests/data/space-models.json, written from the model cards).

Rules from the Hub's "Spaces Configuration Reference" (the accepted keys, the thumbnail colours, the sdk values,
the hardware flavours) and the Hub's 60-character cap on short_description (uploads with a longer one are
rejected; seen in public Space repos' fixes, e.g. nekuda-ai/WindTunnel#20)."""

import json
import re
from pathlib import Path

import gradio
import yaml

from ensemble.presets import load_preset
from ui.operator import HUB_PRESET

ROOT = Path(__file__).resolve().parent.parent
FACTS = json.loads((ROOT / "tests" / "data" / "space-models.json").read_text())["models"]
KEYS = {"title", "emoji", "colorFrom", "colorTo", "sdk", "python_version", "sdk_version", "suggested_hardware",
        "suggested_storage", "app_file", "app_port", "base_path", "fullWidth", "header", "short_description",
        "models", "datasets", "tags", "thumbnail", "pinned", "hf_oauth", "hf_oauth_scopes",
        "hf_oauth_expiration_minutes", "hf_oauth_authorized_org", "disable_embedding", "startup_duration_timeout",
        "custom_headers", "preload_from_hub", "license"}
COLOURS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
HARDWARE = {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "l4x4", "a10g-small", "a10g-large",
            "a10g-largex2", "a10g-largex4", "a100-large", "v5e-1x1", "v5e-2x2", "v5e-2x4"}
OPEN_LICENCES = {"apache-2.0", "mit"}


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md must start with a YAML block"
    return yaml.safe_load(match[1])


def test_front_matter_follows_the_spaces_rules():
    card = front_matter()
    assert set(card) <= KEYS, set(card) - KEYS
    assert card["sdk"] == "gradio" and (ROOT / card["app_file"]).is_file()
    assert card["colorFrom"] in COLOURS and card["colorTo"] in COLOURS
    assert len(card["short_description"]) <= 60, len(card["short_description"])
    assert card.get("suggested_hardware", "cpu-basic") in HARDWARE
    assert re.fullmatch(r"3\.\d+(\.\d+)?", str(card["python_version"]))
    assert len(card["emoji"]) <= 2 and not card["emoji"].isascii()


def test_sdk_version_is_the_pinned_gradio():
    pinned = re.search(r"^gradio==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)[1]
    assert front_matter()["sdk_version"] == pinned == gradio.__version__


def test_listed_models_are_the_hub_preset_and_open():
    preset = load_preset(HUB_PRESET)
    listed = front_matter()["models"]
    assert listed == [m.model for m in preset.members]
    for model in listed:
        assert FACTS[model]["gated"] is False and FACTS[model]["license"] in OPEN_LICENCES, model
    assert not any(FACTS[m]["gated"] for m in listed) and FACTS["google/gemma-3-270m"]["gated"]  # the fixture knows


def test_hub_preset_members_have_different_tokenizers_and_are_small():
    members = load_preset(HUB_PRESET).members
    assert len({FACTS[m.model]["tokenizer"] for m in members}) == len(members) >= 2
    assert len({FACTS[m.model]["vocab_size"] for m in members}) == len(members)
    assert all(FACTS[m.model]["params"] < 1_000_000_000 for m in members)
