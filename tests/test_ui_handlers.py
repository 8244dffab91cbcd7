"""ui.handlers with a scripted backend (no models): limits, errors as messages, throttling, share round trip."""

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig
from ensemble.decode.events import FUSED, Finished, Piece, Stats
from ensemble.errors import LoadError, PromptError
from ui.handlers import Context, Handlers, picker_updates
from ui.picker import FIELDS, settings_from_config
from ui.state import Limits, Session
from ui.store import ComparisonStore

PRESET = EnsembleConfig(members=(MemberSpec("org/a"), MemberSpec("org/b")), sampling=SamplingConfig(8))
STATS = Stats(1, 0.0, 0.0, 0.0, (), (), (), ())


class Scripted:
    """Streams `n` pieces per column instantly, like a very fast engine; can fail on load or mid-stream."""

    def __init__(self, n=3, load_error=None, stream_error=None, delay=0.0):
        self.n, self.load_error, self.stream_error, self.loads, self.closed = n, load_error, stream_error, [], 0
        self.pieces = 0
        self.delay = delay  # seconds a piece (the engine runs in its own thread, not paced by the page)

    def load(self, config, progress):
        progress(0.5, "loading")
        if self.load_error:
            raise self.load_error
        self.loads.append(config)

    def stream(self, config, messages, should_stop):
        try:
            for i in range(self.n):
                if should_stop():
                    for s in (FUSED, 0, 1):
                        yield Finished(s, "", "cancelled", STATS)
                    return
                if self.stream_error and i == 1:
                    raise self.stream_error
                for s in (FUSED, 0, 1):
                    yield Piece(s, f"<t{i}>", i % 2, (0.6, 0.4), (True, False), (1, 1))
                self.pieces = i + 1
                time.sleep(self.delay)
            for s in (FUSED, 0, 1):
                yield Finished(s, "".join(f"<t{i}>" for i in range(self.n)), "end", STATS)
        finally:
            self.closed += 1


def handlers(tmp_path, backend=None, **limits):
    ctx = Context(backend or Scripted(), ComparisonStore(tmp_path), {"p": PRESET}, ["gac", "unite"],
                  Limits(**limits), "p")
    return Handlers(ctx)


def values():
    return [picker_updates(settings_from_config("p", PRESET))[k] for k in FIELDS]


def run(gen):
    return list(gen)


def test_loading_shows_a_progress_bar(tmp_path):
    out = run(handlers(tmp_path).respond(Session(), "hi", *values()))
    bars = [o["status"] for o in out if 'role="progressbar"' in o.get("status", "")]
    assert any('aria-valuenow="50"' in b and "loading" in b for b in bars)


def test_a_turn_streams_every_column(tmp_path):
    h = handlers(tmp_path)
    session = Session()
    out = run(h.respond(session, "hi", *values()))
    assert session.names == ["a", "b"] and len(session.turns) == 1
    last = out[-1]
    assert last["fused"]["value"][1]["content"].count('class="tok') == 3
    assert "&lt;t0>" in last["solo1"]["value"][1]["content"] and last["solo1"]["visible"]
    assert not last["solo2"]["visible"] and "drove" in last["chart"]


def test_updates_are_throttled(tmp_path):
    """6000 events from a fast engine: while it streams, the page gets about 10 views a second, not one per
    event (the first view, sent when the models are loaded, is not a streamed one)."""
    h = handlers(tmp_path, Scripted(n=2000, delay=1e-4), updates_per_second=10)
    times = [time.monotonic() for o in h.respond(Session(), "hi", *values()) if "generating" in o.get("status", "")]
    streamed = times[1:]
    assert len(streamed) >= 3
    assert (len(streamed) - 1) / (streamed[-1] - streamed[0]) <= 10 * 1.1


@pytest.mark.parametrize("prompt, limit, message", [("", {}, "type a prompt"),
                                                    ("x" * 11, {"max_prompt_chars": 10}, "limit is 10")])
def test_prompt_limits(tmp_path, prompt, limit, message):
    out = run(handlers(tmp_path, **limit).respond(Session(), prompt, *values()))
    assert len(out) == 1 and message in out[0]["status"]


def test_turn_limit_and_regenerate(tmp_path):
    backend = Scripted()
    h = handlers(tmp_path, backend, max_turns=2)
    session = Session()
    for prompt in ("one", "two"):
        run(h.respond(session, prompt, *values()))
    assert "reached 2 turns" in run(h.respond(session, "three", *values()))[0]["status"]
    run(h.regenerate(session, *values()))
    assert [t["prompt"] for t in session.turns] == ["one", "two"] and len(backend.loads) == 3


@pytest.mark.parametrize("backend, message", [(Scripted(load_error=LoadError("no such model <x>")), "no such model"),
                                              (Scripted(stream_error=PromptError("too long")), "too long"),
                                              (Scripted(stream_error=RuntimeError("cuda")), "RuntimeError")])
def test_errors_become_messages(tmp_path, backend, message):
    out = run(handlers(tmp_path, backend).respond(Session(), "hi", *values()))
    assert message in out[-1]["status"] and "error" in out[-1]["status"]
    assert "&lt;x&gt;" in out[-1]["status"] or "<x>" not in out[-1]["status"]


def test_stop_ends_only_this_sessions_answer_cleanly(tmp_path):
    h = handlers(tmp_path, Scripted(n=200, delay=0.01), updates_per_second=1e9)
    mine, other = Session(), Session()
    gen = h.respond(mine, "hi", *values(), request=SimpleNamespace(session_hash="tab1"))
    gen_other = h.respond(other, "hi", *values(), request=SimpleNamespace(session_hash="tab2"))
    for _ in range(5):
        next(gen), next(gen_other)
    assert "stopping" in h.stop(request=SimpleNamespace(session_hash="tab1"))["status"]
    out = list(gen)
    assert "stopped" in out[-1]["status"] and out[-1]["send"]["interactive"]
    assert {c["reason"] for c in mine.turns[0]["columns"].values()} == {"cancelled"}
    assert "[stopped]" in out[-1]["fused"]["value"][1]["content"]
    list(gen_other)
    assert {c["reason"] for c in other.turns[0]["columns"].values()} == {"end"}


def test_stop_while_waiting_in_the_queue_drops_the_request(tmp_path):
    backend = Scripted()
    h = handlers(tmp_path, backend)
    tab = SimpleNamespace(session_hash="tab1")
    h.sent(request=tab)
    h.stop(request=tab)  # pressed before the request left the queue
    out = run(h.respond(Session(), "hi", *values(), request=tab))
    assert len(out) == 1 and "stopped" in out[0]["status"] and backend.loads == []
    h.sent(request=tab)  # a later Send is not stopped by that press
    assert len(run(h.respond(Session(), "hi", *values(), request=tab))) > 1


def test_closing_the_handler_closes_the_engine_stream(tmp_path):
    backend = Scripted(n=500, delay=0.01)
    gen = handlers(tmp_path, backend, updates_per_second=1e9).respond(Session(), "hi", *values())
    while "chart" not in next(gen):  # past the loading progress, into the answer
        pass
    next(gen)
    gen.close()  # what Gradio does when the tab closes
    assert backend.closed == 1  # closed by the time the handler is: decoding stopped, caches freed
    assert backend.pieces < 500


def test_share_then_open_the_link(tmp_path):
    h = handlers(tmp_path)
    session = Session()
    run(h.respond(session, "hi <b>", *values()))
    link = h.share(session, request=SimpleNamespace(base_url="http://host:1/"))["link"]["value"]
    assert link.startswith("http://host:1/?c=")
    page = h.on_load(request=SimpleNamespace(query_params={"c": link.split("=")[1]}))
    assert page["session"].turns == session.turns and page["rerun"]["visible"] and not page["send"]["interactive"]
    assert page["fused"]["value"] == h.view(session)["fused"]["value"]
    assert "press re-run" in page["status"]
    assert "a shared comparison" in run(h.respond(page["session"], "more", *values()))[0]["status"]
    assert len(run(h.rerun(page["session"]))) > 1


def test_bad_links_are_messages(tmp_path):
    h = handlers(tmp_path)
    page = h.on_load(request=SimpleNamespace(query_params={"c": "A" * 22, "method": "<img src=x onerror=alert(1)>"}))
    assert "no shared comparison" in page["status"] and "&lt;img" in page["status"] and "<img" not in page["status"]
    assert page["method"] == "unite"  # the preset's, not the link's


def test_export_writes_json_and_markdown(tmp_path):
    h = handlers(tmp_path)
    assert "nothing to export" in h.export(Session())["status"]
    session = Session()
    run(h.respond(session, "hi", *values()))
    paths = h.export(session)["files"]["value"]
    record = json.loads(Path(paths[0]).read_text())
    assert record["turns"] == session.turns and record["settings"]["method"] == PRESET.method
    assert "> <t0><t1><t2>" in Path(paths[1]).read_text()


def test_a_failed_load_loses_nothing(tmp_path):
    backend = Scripted()
    h = handlers(tmp_path, backend)
    session = Session()
    run(h.respond(session, "one", *values()))
    before = [dict(t) for t in session.turns]
    backend.load_error = LoadError("out of memory")
    assert "out of memory" in run(h.regenerate(session, *values()))[-1]["status"]
    changed = values()
    changed[FIELDS.index("method")] = "gac"  # a new member set: the conversation would restart
    assert "out of memory" in run(h.respond(session, "two", *changed))[-1]["status"]
    assert session.turns == before
