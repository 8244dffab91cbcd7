"""The app started as a Space starts it (SPACE_ID set, listening on 0.0.0.0, the operator's HF_TOKEN in the
environment) on a machine without the offline wheels: the Hub preset is selected, local paths and Hub ids
outside the presets are refused before anything is read or downloaded, visitors' repos go without the token,
and a shared comparison survives a restart."""

from types import SimpleNamespace

import gradio as gr
import pytest
from gradio_client import Client

import app
import ensemble.models.pool
from tests.browser.server import FIXTURES, free_port
from ui.operator import HUB_PRESET, context_tokens
from ui.state import Session

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
HUB_MODELS = ["HuggingFaceTB/SmolLM2-360M-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"]


@pytest.fixture
def space(monkeypatch, tmp_path):
    for name, value in {"SPACE_ID": "someone/ensemble-chat", "SYSTEM": "spaces", "GRADIO_SERVER_NAME": "0.0.0.0",
                        "HF_TOKEN": "hf_operator_secret", "ENSEMBLE_CACHE": str(tmp_path / "no-offline-wheels"),
                        "ENSEMBLE_DATA_DIR": str(tmp_path / "data")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    for name in ("member_facts", "download", "load_model"):  # nothing may be read, fetched or loaded
        monkeypatch.setattr(ensemble.models.pool, name, lambda *a, _n=name, **k: pytest.fail(f"{_n} called"))
    created = []
    real = app.Models
    monkeypatch.setattr(app, "Models", lambda **kw: created.append(real(**kw)) or created[-1])
    return created


def start(created):
    demo = app.make_app(app.parse_args([]))
    return demo, created[-1]


def component(demo, elem_id):
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def handler(demo, name):
    return next(fn.fn for fn in demo.fns.values() if fn.name == name)


def test_space_mode_picks_the_hub_preset_and_closes_up(space):
    demo, models = start(space)
    assert component(demo, "preset").value == HUB_PRESET
    assert [component(demo, f"model{i}").value for i in range(2)] == HUB_MODELS
    choices = [c[0] if isinstance(c, tuple) else c for c in component(demo, "model0").choices]
    assert not any(c.startswith("offline:") for c in choices)  # not installed: not offered
    policy = models.policy
    assert policy.local_paths is False and policy.allow == () and policy.max_params == 9 * 10**9
    assert policy.locate(HUB_MODELS[0]) == (HUB_MODELS[0], {})  # the operator's preset: their token
    assert policy.locate("someone/else") == ("someone/else", {"token": False})  # a visitor's: never
    # KV budget per cache: every turn the UI allows (8 prompts of 4,000 characters, 8 answers of 512 tokens)
    assert models.pool.context == context_tokens(8, 4000, 512) >= 8 * (4000 // 3 + 512) > 4096


def test_refusals_over_the_api_come_before_any_read(space, fixture_dirs):
    demo, models = start(space)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}", verbose=False)
        local = [str(fixture_dirs[n]) for n in FIXTURES[:2]]
        missing = ["/no/such/folder", "/etc"]
        errors = []
        for members in (local, missing, ["evil/huge-model", HUB_MODELS[1]], ["../x", HUB_MODELS[0]]):
            with pytest.raises(Exception) as refused:
                client.predict(members=members, prompt="hi", api_name="/generate")
            errors.append(str(refused.value))
        assert "local paths are turned off" in errors[0] and "local paths are turned off" in errors[1]
        assert errors[0].replace(local[0], "X") == errors[1].replace(missing[0], "X")  # exists or not: same words
        assert "'evil/huge-model' is not offered on this server" in errors[2]
        assert "local paths are turned off" in errors[3]
        assert all("\n" not in e.strip() and "Traceback" not in e for e in errors)
        assert models.models == {}  # nothing loaded, read or downloaded (the pool's functions would have failed)
    finally:
        demo.close()


def test_share_survives_a_restart(space):
    demo, _ = start(space)
    turn = {"prompt": "What is 2+2?", "columns": {k: {"text": "4", "pieces": [], "reason": "end", "error": ""}
                                                  for k in ("fused", "0", "1")}}
    settings = {"preset": HUB_PRESET, "members": [{"model": m, "quant": "bf16", "weight": 1.0} for m in HUB_MODELS],
                "method": "unite", "primary": 0,
                "sampling": {"max_new_tokens": 64, "temperature": 0.0, "top_p": 1.0, "seed": 0}}
    session = Session(settings, ["SmolLM2-360M-Instruct", "Qwen2.5-0.5B-Instruct"], [turn])
    out = handler(demo, "share")(SimpleNamespace(session_hash="visitor", base_url="http://x/"), session)
    link = next(v for c, v in out.items() if getattr(c, "elem_id", None) == "link")["value"]
    assert link.startswith("https://huggingface.co/spaces/someone/ensemble-chat/?c=")
    demo.close()
    restarted, _ = start(space)  # a new process would see the same data dir
    request = SimpleNamespace(query_params={"c": link.split("?c=")[1]}, session_hash="later")
    shown = handler(restarted, "on_load")(request)
    fused = next(v for c, v in shown.items() if getattr(c, "elem_id", None) == "col-fused")
    assert "What is 2+2?" in str(fused) and isinstance(restarted, gr.Blocks)
