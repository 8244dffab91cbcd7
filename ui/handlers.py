"""Gradio callbacks: read the picker and the session, run the engine through the backend, return named updates.

Handlers return {name: value} dicts; ui/layout.py maps the names to components. The backend (app.py) is the
only thing that loads models:
    backend.load(config, progress)                       progress(fraction, message)
    backend.stream(config, messages, should_stop, solo=True) -> Iterator[engine event]
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import gradio as gr

from ensemble.config import EnsembleConfig
from ensemble.errors import EnsembleError

from .columns import draw_order
from .conversation import models_summary, system_problems, system_text
from .export import to_json, to_markdown
from .handlers_edit import EditHandlers
from .handlers_view import ViewHandlers
from .handlers_vote import VoteHandlers
from .limits import AnswerClock, ExportDir, ShareGuard
from .links import parse_link, share_url
from .picker import FIELDS, config_from_settings, member_names, settings_from_config, settings_from_values
from .picker import values_from_settings as picker_values
from .pump import Pump
from .render import progress_html, status_html
from .state import Limits, Session, StopSignals, apply_event, fail_turn, new_turn
from .store import ComparisonStore, UnknownComparison

log = logging.getLogger("ensemble.app")
NARROW_EVERY = 3
Updates = dict[str, Any]


class Backend(Protocol):
    def load(self, config: EnsembleConfig, progress: Callable[[float, str], None]) -> None: ...

    def stream(self, config: EnsembleConfig, messages: list[dict], should_stop: Callable[[], bool],
               solo: bool = True) -> Iterator: ...


@dataclass(frozen=True)
class Context:
    backend: Backend
    store: ComparisonStore
    presets: Mapping[str, EnsembleConfig]
    methods: Sequence[str]
    limits: Limits
    default_preset: str
    public_url: str = ""  # base of share links; else the Space's page, else the request's own address
    stops: StopSignals = field(default_factory=StopSignals)
    shares: ShareGuard = field(default_factory=ShareGuard)  # ui/limits.py: Share's rate, per session and overall
    exports: ExportDir = field(default_factory=ExportDir)  # ui/limits.py: Export folders, old ones deleted


class Handlers(VoteHandlers, ViewHandlers, EditHandlers):
    def __init__(self, ctx: Context):
        self.ctx = ctx

    # ------------------------------------------------------------------ chat

    def respond(self, session: Session, prompt: str, *values, request=None) -> Iterator[Updates]:
        """values: the picker's (ui.picker.FIELDS), then the system prompt."""
        session.settle()
        prompt = (prompt or "").strip()
        settings, system, problems = self.settings(values)
        problems += self.prompt_problems(prompt, session)
        if problems:
            yield {"status": status_html(problems, "error")}
            return
        yield from self.run(session, settings, [prompt], self.stop_check(request), clear_prompt=True, system=system)

    def regenerate(self, session: Session, *values, request=None) -> Iterator[Updates]:
        session.settle()
        settings, system, problems = self.settings(values)
        if not session.turns or session.shared_id:
            problems.append("nothing to regenerate yet" if not session.turns else "re-run the shared comparison first")
        if problems:
            yield {"status": status_html(problems, "error")}
            return
        yield from self.run(session, settings, [session.turns[-1]["prompt"]], self.stop_check(request), keep=-1,
                            system=system)

    def settings(self, values: Sequence) -> tuple[dict | None, str, list[str]]:
        """(picker settings, system prompt, problems) from the picker's values and the system prompt field."""
        settings, problems = settings_from_values(values[:len(FIELDS)], self.ctx.methods, self.ctx.limits)
        system = system_text(values[len(FIELDS):])
        return settings, system, problems + system_problems(system, self.ctx.limits)

    def rerun(self, session: Session, *, request=None) -> Iterator[Updates]:
        """A shared comparison, decoded again with its own settings (this loads the models)."""
        session.settle()
        if not session.settings or not session.turns:
            yield {"status": status_html(["there is no comparison to re-run"], "error")}
            return
        prompts = [t["prompt"] for t in session.turns]
        yield from self.run(session, session.settings, prompts, self.stop_check(request), keep=0,
                            system=session.system)

    def stop_check(self, request) -> Callable[[], bool]:
        """True once Stop is pressed after this request was sent, or the answer ran past its time limit."""
        key = getattr(request, "session_hash", None) or ""
        sent = self.ctx.stops.sent_at(key)  # the time limit starts when decoding does (stream_turn)
        return AnswerClock(lambda: self.ctx.stops.stopped_since(key, sent), self.ctx.limits.answer_seconds)

    def run(self, session: Session, settings: dict, prompts: list[str], should_stop: Callable[[], bool],
            clear_prompt: bool = False, keep: int | None = None, system: str = "") -> Iterator[Updates]:
        """Load the ensemble, then answer `prompts` in turn after the first `keep` turns (all by default).
        The conversation changes only once the models are loaded, so a failed load loses nothing."""
        if should_stop():  # stopped while it waited in the queue
            yield {"status": status_html(["stopped"])}
            return
        notes = []
        if session.settings and _ensemble_part(session.settings) != _ensemble_part(settings) and session.turns:
            keep = 0
            notes.append("members or method changed: a new conversation started")
        elif session.turns and session.system != system and keep != 0:
            keep = 0  # every turn of a stored conversation was answered with the one system prompt it shows
            notes.append("system prompt changed: a new conversation started")
        try:
            config = config_from_settings(settings, self.ctx.presets)
            yield from self.load(config)
        except Exception as e:  # EnsembleError: bad id, missing folder, out of memory...; all go to the page
            if not isinstance(e, EnsembleError):
                log.exception("loading failed")
            yield {"status": status_html([f"could not load the ensemble: {e}"], "error"),
                   "send": gr.update(interactive=True)}
            return
        session.settings, session.names, session.shared_id = settings, member_names(settings), ""
        session.turns, session.system = session.turns[:keep], system
        # The first view after a load folds the models panel to its one-line summary (and clears the prompt).
        extra = {"prompt": ""} if clear_prompt else {}
        extra["models_panel"] = gr.update(open=False, label=models_summary(settings, session.names, system))
        for prompt in prompts:
            yield {**self.view(session, notes + ["generating…"], busy=True), **extra}
            error = yield from self.stream_turn(session, config, prompt, should_stop)
            if error:
                yield self.view(session, [error], "error")
                return
            if should_stop():
                yield self.view(session, notes + ["stopped"])
                return
        yield self.view(session, notes)

    def load(self, config: EnsembleConfig) -> Iterator[Updates]:
        """backend.load in a worker thread; its progress reports become a progress bar on the page."""
        reports: queue.SimpleQueue = queue.SimpleQueue()
        failure: list[Exception] = []

        def work():
            try:
                self.ctx.backend.load(config, lambda fraction, message: reports.put((fraction, message)))
            except Exception as e:  # re-raised in the handler's thread below
                failure.append(e)
            finally:
                reports.put(None)

        threading.Thread(target=work, daemon=True, name="load-models").start()
        yield {"status": progress_html(0.0, "loading models…"), "send": gr.update(interactive=False)}
        while (report := reports.get()) is not None:
            yield {"status": progress_html(*report)}
        if failure:
            raise failure[0]

    def stream_turn(self, session: Session, config: EnsembleConfig, prompt: str, should_stop: Callable[[], bool]):
        """Decode one turn (in its own thread: ui.pump), yielding at most `updates_per_second` views. Returns an
        error message or ''."""
        messages = session.history() + [{"role": "user", "content": prompt}]
        turn = new_turn(prompt, len(config.members))
        draw_order(session, turn)
        session.turns.append(turn)
        getattr(should_stop, "start", lambda: None)()  # AnswerClock: the models are loaded, decoding starts
        pump = Pump(lambda closed: self.ctx.backend.stream(config, messages, lambda: should_stop() or closed()))
        error = ""
        try:
            for n, events in enumerate(pump.batches(1 / self.ctx.limits.updates_per_second)):
                for event in events:
                    apply_event(turn, event)
                # The narrow columns refresh at a third of the rate: in the browser, Gradio's markdown and code
                # highlighting of four growing answers cost more than the wide one (docs/bench-ui.md).
                yield self.view(session, ["generating…"], busy=True, streaming=True, narrow=n % NARROW_EVERY == 0)
        except EnsembleError as e:
            error = str(e)
        except Exception as e:  # a crash must reach the page as a message, not a hung column
            log.exception("generation failed")
            error = f"generation failed ({type(e).__name__}); see the server log"
        finally:
            pump.close()  # also when Gradio closes this generator (tab closed): stop decoding, free the caches
        if error:
            fail_turn(turn, error)
        return error

    def prompt_problems(self, prompt: str, session: Session) -> list[str]:
        limits = self.ctx.limits
        problems = []
        if not prompt:
            problems.append("type a prompt first")
        if len(prompt) > limits.max_prompt_chars:
            problems.append(f"the prompt is {len(prompt)} characters; the limit is {limits.max_prompt_chars}")
        if session.shared_id:
            problems.append("this is a shared comparison: press re-run or clear to chat")
        elif len(session.turns) >= limits.max_turns:
            problems.append(f"this conversation reached {limits.max_turns} turns; press clear to start another")
        return problems

    # ------------------------------------------------------------------ buttons

    def sent(self, *, request=None) -> None:
        self.ctx.stops.mark("sent", getattr(request, "session_hash", None) or "")

    def stop(self, *, request=None) -> Updates:
        self.ctx.stops.mark("stop", getattr(request, "session_hash", None) or "")
        return {"status": status_html(["stopping…"])}

    def share(self, session: Session, *, request=None) -> Updates:
        session.settle()
        if not session.turns:
            return {"status": status_html(["nothing to share yet: send a prompt first"], "error")}
        if refused := self.ctx.shares.check(getattr(request, "session_hash", None) or "",
                                            self.ctx.limits.shares_per_minute):
            return {"status": status_html([refused], "error")}
        try:
            comparison = self.ctx.store.create(session.record())
        except ValueError as e:
            return {"status": status_html([str(e)], "error")}
        return {"link": gr.update(value=share_url(self.base_url(request), comparison), visible=True),
                "status": status_html(["stored: anyone with the link can view this comparison"])}

    def base_url(self, request) -> str:
        if self.ctx.public_url:
            return self.ctx.public_url
        if os.environ.get("SPACE_ID"):
            return f"https://huggingface.co/spaces/{os.environ['SPACE_ID']}"
        return str(request.base_url) if request is not None else "http://127.0.0.1:7860/"

    def export(self, session: Session) -> Updates:
        session.settle()
        if not session.turns:
            return {"status": status_html(["nothing to export yet"], "error")}
        folder = self.ctx.exports.new()  # old exports are deleted here
        record = session.record()
        (folder / "comparison.json").write_text(to_json(record), encoding="utf-8")
        (folder / "comparison.md").write_text(to_markdown(record), encoding="utf-8")
        files = [str(folder / "comparison.json"), str(folder / "comparison.md")]
        return {"files": gr.update(value=files, visible=True), "status": ""}

    def pick_preset(self, name: str) -> Updates:
        if name not in self.ctx.presets:
            return {"status": status_html([f"unknown preset {name!r}"], "error")}
        return picker_updates(settings_from_config(name, self.ctx.presets[name]))

    # ------------------------------------------------------------------ page load

    def on_load(self, *, request) -> Updates:
        link = parse_link(dict(request.query_params), sorted(self.ctx.presets), self.ctx.methods,
                          self.ctx.limits.max_prompt_chars)
        problems = list(link.problems)
        out: Updates = {}
        if link.comparison:
            try:
                record = self.ctx.store.get(link.comparison)
                session = Session(record["settings"], record["members"], record["turns"], link.comparison,
                                  system=str(record.get("system") or ""))
                view = self.view(session, ["a shared comparison, shown as stored (read-only): press re-run "
                                           "to decode it again with the same settings, or clear to chat"])
                fold = gr.update(open=False, label=models_summary(session.settings, session.names, session.system))
                return {**view, **picker_updates(record["settings"]), "system": session.system, "models_panel": fold,
                        **({"status": status_html(problems, "warn")} if problems else {})}
            except (UnknownComparison, KeyError, TypeError):
                problems.append("no shared comparison with this id (it may have been typed wrong)")
        preset = link.preset or self.ctx.default_preset
        if preset in self.ctx.presets:
            settings = settings_from_config(preset, self.ctx.presets[preset])
            out.update(picker_updates({**settings, "method": link.method or settings["method"]}))
        if link.prompt:
            out["prompt"] = link.prompt
        out["status"] = status_html(problems, "warn")
        return out


def picker_updates(settings: Mapping) -> Updates:
    return dict(zip(FIELDS, picker_values(settings), strict=True))


def _ensemble_part(settings: Mapping) -> tuple:
    return (tuple(tuple(sorted(m.items())) for m in settings["members"]), settings["method"], settings["primary"])
