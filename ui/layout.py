"""build_app(ctx) -> gr.Blocks: every component once, then the wiring in one block."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

import gradio as gr

from .api import generate_endpoint
from .handlers import Context, Handlers
from .picker import FIELDS, QUANTS, SLOTS, settings_from_config, values_from_settings
from .render import COLOURS, DARK_COLOURS, LINES
from .state import Session

ASSETS = Path(__file__).parent / "assets"


def css() -> str:
    """assets/app.css plus the per-member rules made from ui.render's palette (one source for the colours)."""
    rules = [f".tok.m{i} {{ background: {light}; text-decoration-style: {line}; }}\n"
             f".dark .tok.m{i} {{ background: {dark}; }}"
             for i, (light, dark, line) in enumerate(zip(COLOURS, DARK_COLOURS, LINES, strict=True))]
    return (ASSETS / "app.css").read_text(encoding="utf-8") + "\n".join(rules)


def launch_options() -> dict:
    """What `demo.launch` needs besides host and port."""
    return {"css": css(), "js": (ASSETS / "app.js").read_text(encoding="utf-8"),
            "footer_links": ["gradio", "settings"], "run_history": False}


def build_app(ctx: Context, model_choices: Sequence[str], concurrency: int = 1) -> gr.Blocks:
    """The whole UI. `model_choices` fill the member dropdowns (free Hub ids and paths are accepted too)."""
    handlers = Handlers(ctx)
    c: dict[str, gr.components.Component] = {}
    # delete_cache: Gradio's copies of exported files go after an hour (checked hourly).
    with gr.Blocks(title="Ensemble Chat", fill_width=True, analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:
        c["session"] = gr.State(Session())
        gr.Markdown("## Ensemble Chat\nSeveral small models answer together, token by token. The fused answer "
                    "is coloured and underlined by the member that drove each token (hover, tap or Tab to a token "
                    "for every member's share); each member's own answer streams beside it.")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat_tab(c, ctx, model_choices)
            with gr.Tab("Results", id="results-tab") as results_tab:
                gr.Markdown("How often the fused answer won the vote against each member, per member set and "
                            "method (votes of every user of this server).")
                c["results"] = gr.HTML(elem_id="results")
        c["results_tab"] = results_tab
        wire(demo, c, handlers, concurrency)
        # The one public endpoint; the UI's own events are hidden from "Use via API" (wire).
        gr.api(generate_endpoint(ctx), api_name="generate", concurrency_limit=concurrency, concurrency_id="gpu")
    demo.queue(max_size=ctx.limits.queue_size, default_concurrency_limit=concurrency)
    return demo


def chat_tab(c: dict, ctx: Context, model_choices: Sequence[str]) -> None:
    c["status"] = gr.HTML(elem_id="status")
    picker(c, ctx, model_choices)
    with gr.Row():
        c["chart"] = gr.HTML(elem_id="chart")
        with gr.Column(scale=0, min_width=220):
            c["colour"] = gr.Checkbox(True, label="Colour tokens by member", elem_id="colour")
            c["blind"] = gr.Checkbox(False, label="Blind vote (shuffle, hide names)", elem_id="blind")
    with gr.Row(equal_height=True):
        # The fused column is rendered here (ui/markdown.py: structure plus attribution spans); the solo ones by
        # Gradio's sanitised markdown. No LaTeX: a "$" in an answer stays a "$".
        c["fused"] = gr.Chatbot(label="Ensemble (fused)", elem_id="col-fused", render_markdown=False,
                                buttons=["copy"], height=460, scale=2, min_width=320)
        for i in range(SLOTS):
            c[f"solo{i}"] = gr.Chatbot(label=f"member {i + 1} alone", elem_id=f"col-solo{i}", height=460,
                                       latex_delimiters=[], buttons=["copy"], visible=False, min_width=240)
    c["system"] = gr.Textbox(label="System prompt (optional; changing it starts a new conversation)", lines=1,
                             max_lines=6, elem_id="system", max_length=ctx.limits.max_prompt_chars,
                             placeholder="e.g. You are a concise assistant. Answer in English.")
    c["raw"] = gr.HTML(elem_id="raw")  # hidden: each answer's exact text, for the copy buttons
    with gr.Row():
        c["prompt"] = gr.Textbox(label="Prompt (Enter sends, Shift+Enter for a new line, Esc stops)",
                                 elem_id="prompt", lines=2, scale=5, max_length=ctx.limits.max_prompt_chars,
                                 placeholder="Ask the ensemble…")
        c["send"] = gr.Button("Send", variant="primary", elem_id="send", scale=1)
        c["stop"] = gr.Button("Stop", variant="stop", elem_id="stop", scale=1)
    with gr.Row(equal_height=True):
        c["vote_choice"] = gr.Radio([], label="Which answer was best?", elem_id="vote-choice", scale=4)
        c["vote"] = gr.Button("Vote", elem_id="vote", size="sm", scale=1)
        c["votes"] = gr.HTML(elem_id="votes")
    with gr.Row():
        c["regen"] = gr.Button("Regenerate", elem_id="regen", size="sm")
        c["clear"] = gr.Button("Clear", elem_id="clear", size="sm")
        c["share"] = gr.Button("Share", elem_id="share", size="sm")
        c["export"] = gr.Button("Export JSON + Markdown", elem_id="export", size="sm")
        c["rerun"] = gr.Button("Re-run this comparison", elem_id="rerun", size="sm", visible=False)
    c["link"] = gr.Textbox(label="Share link", elem_id="link", buttons=["copy"], interactive=False, visible=False)
    c["files"] = gr.File(label="Export", elem_id="files", file_count="multiple", interactive=False, visible=False)


def picker(c: dict, ctx: Context, model_choices: Sequence[str]) -> None:
    """The member rows and decoding settings, starting at the default preset (so API calls get it too)."""
    preset = ctx.presets.get(ctx.default_preset)
    v = dict(zip(FIELDS, values_from_settings(settings_from_config(ctx.default_preset, preset)), strict=True)) \
        if preset else {}
    with gr.Accordion("Models", open=True, elem_id="models-panel") as c["models_panel"]:
        with gr.Row():
            c["preset"] = gr.Dropdown(sorted(ctx.presets), value=v.get("preset"), label="Preset", elem_id="preset")
            c["method"] = gr.Dropdown(list(ctx.methods), value=v.get("method"), label="Method", elem_id="method")
            c["primary"] = gr.Dropdown(list(range(1, SLOTS + 1)), value=v.get("primary", 1), label="Primary member",
                                       elem_id="primary")
            c["per_prompt"] = gr.Checkbox(
                value=v.get("per_prompt", False), label="Per prompt: members from the prompt's examples",
                info="Scores each member on the worked examples in a few-shot prompt; one far behind sits out",
                elem_id="per_prompt")
        for i in range(SLOTS):
            with gr.Row():
                c[f"model{i}"] = gr.Dropdown(
                    [""] + list(model_choices), value=v.get(f"model{i}", ""), allow_custom_value=True, scale=4,
                    label=f"Member {i + 1} (preset model, Hub id or local path; empty = none)", elem_id=f"model{i}")
                c[f"quant{i}"] = gr.Dropdown(list(QUANTS), value=v.get(f"quant{i}", "auto"), label="Quantization",
                                             elem_id=f"quant{i}")
                c[f"weight{i}"] = gr.Number(v.get(f"weight{i}", 1.0), label="Weight", minimum=0, elem_id=f"weight{i}")
    with gr.Accordion("Decoding", open=False):
        with gr.Row():
            c["max_new_tokens"] = gr.Slider(1, ctx.limits.max_new_tokens, value=v.get("max_new_tokens", 64), step=1,
                                            label="Max new tokens", elem_id="max_new_tokens")
            c["temperature"] = gr.Slider(0, 2, value=v.get("temperature", 0), step=0.05,
                                         label="Temperature (0 = greedy)")
            c["top_p"] = gr.Slider(0.05, 1, value=v.get("top_p", 1), step=0.05, label="Top-p")
            c["seed"] = gr.Number(v.get("seed", 0), precision=0, label="Seed")


def wire(demo: gr.Blocks, c: dict, h: Handlers, concurrency: int) -> None:
    fields = list(FIELDS)
    picks = [c[k] for k in fields]
    view = ["session", "chart", "status", "fused", "send", "rerun", "raw", "votes", "vote_choice",
            *(f"solo{i}" for i in range(SLOTS))]
    run_out = outputs(c, view + ["prompt", "models_panel"])
    # Loads and decodes share one concurrency group: `concurrency` of them on the device at a time.
    # The UI's own events are private: not on the "Use via API" page and not for clients (they take 21 positional
    # values and return HTML); clients use /generate.
    hidden = {"api_visibility": "private"}
    gpu = {"concurrency_limit": concurrency, "concurrency_id": "gpu", "show_progress": "minimal", **hidden}
    sent = named(h.sent, c)  # when the request was made, before it waits in the queue: Stop applies from then
    gr.on([c["send"].click, c["prompt"].submit], sent, queue=False, api_visibility="private").then(
        named(h.respond, c), [c["session"], c["prompt"], *picks, c["system"]], run_out, api_name="chat", **gpu)
    c["regen"].click(sent, queue=False, api_visibility="private").then(
        named(h.regenerate, c), [c["session"], *picks, c["system"]], run_out, api_name="regenerate", **gpu)
    for column in ("fused", *(f"solo{i}" for i in range(SLOTS))):  # edit the last prompt in any column
        c[column].edit(named(h.edit, c), [c["session"], *picks, c["system"]], run_out, **gpu)
    c["rerun"].click(sent, queue=False, api_visibility="private").then(
        named(h.rerun, c), [c["session"]], run_out, api_name="rerun", **gpu)
    c["stop"].click(named(h.stop, c), None, outputs(c, ["status"]), queue=False, **hidden)
    c["vote"].click(named(h.vote, c), [c["session"], c["vote_choice"]], outputs(c, view + ["results"]),
                    queue=False, api_visibility="private")
    c["blind"].input(named(h.set_blind, c), [c["session"], c["blind"]], outputs(c, view), queue=False,
                     api_visibility="private")
    c["results_tab"].select(named(h.results, c), None, outputs(c, ["results"]), queue=False,
                            api_visibility="private")
    c["colour"].change(None, [c["colour"]], None, js="(on) => { document.body.classList.toggle('plain', !on); }",
                       api_visibility="private")
    for clear in [c["clear"].click] + [c[k].clear for k in ("fused", *(f"solo{i}" for i in range(SLOTS)))]:
        clear(named(h.clear, c), [c["session"]], outputs(c, view), queue=False, **hidden)  # any bin clears all
    # Share and Export skip the queue: quick, and they must work while answers fill it (ui/limits.py).
    c["share"].click(named(h.share, c), [c["session"]], outputs(c, ["link", "status"]), queue=False, **hidden)
    c["export"].click(named(h.export, c), [c["session"]], outputs(c, ["files", "status"]), queue=False, **hidden)
    c["preset"].input(named(h.pick_preset, c), [c["preset"]], outputs(c, fields + ["status"]), queue=False, **hidden)
    load_out = outputs(c, view + fields + ["prompt", "system", "models_panel"])
    demo.load(named(h.on_load, c), None, load_out, queue=False, **hidden)


def outputs(c: dict, names: Sequence[str]) -> list:
    return [c[n] for n in names]


def named(fn: Callable, c: dict) -> Callable:
    """Adapt a handler for Gradio: it returns {name: value} and Gradio wants {component: value}; its keyword-only
    `request` (and `edit`, the Chatbot's gr.EditData) become leading positional parameters Gradio fills in by their
    annotations (Gradio looks only at positional ones)."""
    special = [(k, t) for k, t in (("request", gr.Request), ("edit", gr.EditData))
               if k in inspect.signature(fn).parameters]

    def call_with(args: tuple):
        return fn(*args[len(special):], **{k: v for (k, _), v in zip(special, args, strict=False)})

    def convert(updates: dict | None) -> dict | None:
        return None if updates is None else {c[k]: v for k, v in updates.items()}

    if inspect.isgeneratorfunction(fn):
        def adapted(*args):
            for updates in call_with(args):
                yield convert(updates)
    else:
        def adapted(*args):
            return convert(call_with(args))
    adapted.__signature__ = inspect.Signature(
        [inspect.Parameter(k, inspect.Parameter.POSITIONAL_ONLY, annotation=t) for k, t in special]
        + [inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL)])
    adapted.__annotations__ = dict(special)
    adapted.__name__ = adapted.__qualname__ = fn.__name__
    adapted.__doc__ = fn.__doc__
    return adapted
