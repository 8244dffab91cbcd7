"""app.py: flags and environment, the model cache behind the UI, and the app built on the real presets."""

import gradio as gr

from app import Models, make_app, parse_args
from ensemble.decode.events import FUSED, Finished
from tests.browser.server import tiny_presets


def test_flags_and_environment(monkeypatch, tmp_path):
    args = parse_args([])
    assert (args.host, args.port, args.preset) == ("127.0.0.1", 7860, "")  # "": ui.operator.starting_preset
    monkeypatch.setenv("GRADIO_SERVER_PORT", "9999")
    monkeypatch.setenv("ENSEMBLE_DATA_DIR", str(tmp_path))
    args = parse_args(["--host", "0.0.0.0", "--queue-size", "3"])
    assert (args.host, args.port, args.data_dir, args.queue_size) == ("0.0.0.0", 9999, str(tmp_path), 3)


def test_app_builds_on_the_real_presets_without_loading(tmp_path):
    models = Models()
    demo = make_app(parse_args(["--data-dir", str(tmp_path)]), models)
    assert isinstance(demo, gr.Blocks) and models.ensembles == {} and models.models == {}
    assert (tmp_path / "comparisons.sqlite3").exists()


def test_models_load_once_report_progress_and_evict(fixture_dirs):
    presets = tiny_presets(fixture_dirs, max_new_tokens=4)
    models = Models(keep=1)
    reports = []
    models.load(presets["tiny"], lambda f, msg: reports.append((f, msg)))
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("aligning" in msg for _, msg in reports) and sum("ready" in msg for _, msg in reports) >= 3
    loaded, count = dict(models.models), len(reports)
    models.load(presets["tiny"], lambda f, msg: reports.append((f, msg)))
    assert len(reports) == count  # cached: nothing to do
    models.load(presets["tiny-pair"], lambda *a: None)  # two of the same models, another method
    assert len(models.ensembles) == 1 and len(models.models) == 2
    assert all(models.models[k] is loaded[k] for k in models.models)  # weights reused, not reloaded
    events = list(models.stream(presets["tiny-pair"], [{"role": "user", "content": "hi"}], lambda: False))
    assert {e.stream for e in events if isinstance(e, Finished)} == {FUSED, 0, 1}
