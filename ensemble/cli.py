"""Command line: `python -m ensemble generate --model A --model B --method unite --prompt "..." --json`.

`python -m ensemble serve --preset NAME` serves the preset as an OpenAI-compatible API (ensemble/serve/).

The `generate` form below is a public contract; keep it working.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import DTYPES, EnsembleConfig, MemberSpec, SamplingConfig
from .decode.events import FUSED, Finished, MemberFailed, Piece, to_dict
from .decode.prompting import check_messages
from .errors import EnsembleError
from .presets import PRESET_DIR, list_presets, load_preset, preset_path
from .serve.cli import add_parser as add_serve_parser

DEV_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigbench" / "qa_wikidata.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ensemble", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="run an ensemble on one prompt")
    gen.add_argument("--prompt", required=True)
    add_run_flags(gen)
    gen.add_argument("--json", action="store_true", help="print one JSON object")
    gen.add_argument("--events", action="store_true", help="print every event as a JSON line")
    chat = sub.add_parser("chat", help="multi-turn chat in the terminal; the driver of each token is coloured")
    add_run_flags(chat)
    sub.add_parser("presets", help="list presets")
    gen.add_argument("--vote", action="store_true", help="also run --solo and vote over the fused and solo "
                     "answers' final numbers (math)")
    for name, text in (("score", "score each member on a dev set; write scores, weights and primary"),
                       ("check", "compatibility check: dev scores, answer lengths, vocabulary overlap")):
        dev = sub.add_parser(name, help=text)
        dev.add_argument("--preset", required=True)
        dev.add_argument("--data", type=Path, default=DEV_DATA,
                         help="BIG-bench-style JSON, GSM8K-style JSONL, or `gsm8k` (default: qa_wikidata)")
        dev.add_argument("--n", type=int, default=50, help="dev examples (the last n of the seed-0 order)")
        dev.add_argument("--out", type=Path, help="preset to write (default: presets/<preset>-adapt.yaml)")
    dev.add_argument("--apply", choices=["drop", "weight"], help="write the suggested preset to --out")
    add_serve_parser(sub)
    return parser


def add_run_flags(gen: argparse.ArgumentParser) -> None:
    gen.add_argument("--model", action="append", default=[], metavar="M",
                     help="Hub id, local folder, .gguf, offline:NAME, or a server URL http://HOST:PORT "
                     "(docs/remote.md); repeat for 1-4 members")
    gen.add_argument("--preset", help=f"preset name or YAML path (available: {', '.join(list_presets())})")
    gen.add_argument("--method", help="average | deepen | gac | unite (default: the preset's, else unite)")
    gen.add_argument("--max-new-tokens", type=int)
    gen.add_argument("--temperature", type=float)
    gen.add_argument("--top-p", type=float)
    gen.add_argument("--seed", type=int)
    gen.add_argument("--stop", action="append", help="stop string; repeatable")
    gen.add_argument("--dtype", choices=DTYPES,
                     help="weight format of every member; 8bit/4bit: bitsandbytes (default: auto = the checkpoint's "
                     "own, quantized on a GPU only as far as needed to fit)")
    gen.add_argument("--weight", type=float, action="append", help="per-member weight, in --model order")
    gen.add_argument("--primary", type=int, help="index of the main member")
    gen.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                     help="method option, e.g. top_k=5 (unite) or threshold=0.8 (gac)")
    gen.add_argument("--plain", action="store_true", help="plain-completion prompts, no chat templates")
    gen.add_argument("--resync-window", type=int, help="answer tokens each member re-tokenizes per piece (8); "
                     "0 = only append the new piece's ids")
    gen.add_argument("--solo", action="store_true", help="also each member's own greedy answer")


def config_from_args(args: argparse.Namespace) -> EnsembleConfig:
    base = load_preset(args.preset) if args.preset else None
    if not args.model and base is None:
        raise EnsembleError("give at least one --model, or a --preset")
    if args.model:
        weights = args.weight or [1.0] * len(args.model)
        if len(weights) != len(args.model):
            raise EnsembleError(f"{len(weights)} --weight values for {len(args.model)} --model values")
        pairs = zip(args.model, weights, strict=True)
        members = tuple(MemberSpec(m, weight=w, dtype=args.dtype or "auto") for m, w in pairs)
    else:
        members = tuple(dataclasses.replace(m, dtype=args.dtype or m.dtype) for m in base.members)
    s = base.sampling if base else SamplingConfig()
    sampling = SamplingConfig(
        max_new_tokens=_pick(args.max_new_tokens, s.max_new_tokens), temperature=_pick(args.temperature, s.temperature),
        top_p=_pick(args.top_p, s.top_p), seed=_pick(args.seed, s.seed), stop=tuple(args.stop or s.stop))
    options = dict(base.options) if base and not args.method else {}
    options.update(_parse_option(o) for o in args.option)
    return EnsembleConfig(members=members, method=args.method or (base.method if base else "unite"),
                          options=options, primary=_pick(args.primary, base.primary if base else 0),
                          sampling=sampling, prompt_format="plain" if args.plain else "chat",
                          resync_window=_pick(args.resync_window, base.resync_window if base else 8))


def check_method(config: EnsembleConfig) -> None:
    from .align import METHODS

    if config.method not in METHODS:
        raise EnsembleError(f"unknown method {config.method!r}; choose one of: {', '.join(sorted(METHODS))}")


def _pick(value, default):
    return default if value is None else value


def _parse_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise EnsembleError(f"--option {text!r}: expected KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def run_generate(args: argparse.Namespace) -> int:
    from .decode.engine import Ensemble
    from .models.pool import load_models

    config = config_from_args(args)
    messages = check_messages([{"role": "user", "content": args.prompt}])  # before any model loads
    check_method(config)
    models = load_models(config.members)
    ensemble = Ensemble(models, config)
    pieces, finished, failures = [], {}, []
    quiet = args.json or args.events
    args.solo = args.solo or args.vote
    for event in ensemble.stream(messages, solo=args.solo):
        if args.events:
            print(json.dumps(to_dict(event), ensure_ascii=False), flush=True)
        if isinstance(event, Piece) and event.stream == FUSED:
            pieces.append({"text": event.text, "driver": event.driver, "shares": list(event.shares)})
            if not quiet:
                print(event.text, end="", flush=True)
        elif isinstance(event, MemberFailed):
            failures.append(to_dict(event))
            print(f"\n[member {event.name} failed: {event.error}]", file=sys.stderr)
        elif isinstance(event, Finished):
            finished[event.stream] = event
    fused = finished[FUSED]
    result = {"text": fused.text, "pieces": pieces, "members": [m.name for m in models], "method": config.method,
              "finish_reason": fused.reason, "timing": to_dict(fused.stats), "failures": failures}
    result["timing"].pop("type")
    if args.solo:
        result["solo"] = [{"member": models[i].name, "text": finished[i].text} for i in range(len(models))]
    if args.vote:
        result["vote"] = vote_over([fused.text] + [finished[i].text for i in range(len(models))],
                                   ["fused"] + [m.name for m in models])
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    elif not args.events:
        print_tail(result, fused)
    return 0


def print_tail(result: dict, fused: Finished) -> None:
    print()
    for solo in result.get("solo", []):
        print(f"\n--- {solo['member']} alone ---\n{solo['text']}")
    if "vote" in result:
        print(f"\n--- vote: {result['vote']['answer']} (from {result['vote']['from']}) ---")
    print(f"\n[{fused.stats.steps} tokens, {fused.stats.ms_per_step:.0f} ms/token, {fused.reason}]", file=sys.stderr)


COLOURS = ("\033[36m", "\033[33m", "\033[35m", "\033[32m")  # one per member, as in the UI legend
RESET = "\033[0m"


def run_chat(args: argparse.Namespace) -> int:
    from .decode.engine import Ensemble
    from .models.pool import load_models

    config = config_from_args(args)
    check_method(config)
    models = load_models(config.members)
    ensemble = Ensemble(models, config)
    colour = sys.stdout.isatty()
    legend = "  ".join(f"{COLOURS[i] if colour else ''}{m.name}{RESET if colour else ''}" for i, m in enumerate(models))
    print(f"Ensemble of {legend} ({config.method}). Empty line or Ctrl-D quits; /reset clears the chat.")
    messages: list[dict] = []
    while True:
        try:
            line = input("\nyou> ").strip()
        except EOFError:
            return 0
        if not line:
            return 0
        if line == "/reset":
            messages.clear()
            continue
        messages.append({"role": "user", "content": line})
        print("ensemble> ", end="", flush=True)
        answer, solos = "", {}
        for event in ensemble.stream(messages, solo=args.solo):
            if isinstance(event, Piece) and event.stream == FUSED:
                print(f"{COLOURS[event.driver]}{event.text}{RESET}" if colour else event.text, end="", flush=True)
            elif isinstance(event, MemberFailed):
                print(f"\n[member {event.name} failed: {event.error}]", file=sys.stderr)
            elif isinstance(event, Finished) and event.stream == FUSED:
                answer = event.text
            elif isinstance(event, Finished):
                solos[event.stream] = event.text
        print()
        for i, text in sorted(solos.items()):
            print(f"--- {models[i].name} alone ---\n{text}")
        messages.append({"role": "assistant", "content": answer})


def vote_over(texts: list[str], names: list[str]) -> dict:
    from .tune.vote import final_answer, vote

    k = vote(texts)
    return {"text": texts[k], "answer": final_answer(texts[k]), "from": names[k]}


def run_dev(args: argparse.Namespace) -> int:
    """`score`: write dev scores, weights and primary. `check`: print the compatibility report (and with
    --apply, write the suggested preset)."""
    from .models.pool import load_models
    from .tune.compat import check
    from .tune.scoring import dev_examples, score_members, write_scores

    path = preset_path(args.preset)
    config = load_preset(str(path))
    examples = dev_examples(args.data, args.n)  # before any model loads
    models = load_models(config.members)
    scores = score_members(models, examples)
    out = args.out or PRESET_DIR / f"{path.stem}-adapt.yaml"
    dev = f"{args.n} examples of {args.data.name}"
    if args.command == "score":
        data = write_scores(path, scores, out, dev=dev)
        print(f"wrote {out}: weights {[m['weight'] for m in data['members']]}, primary {data['primary']}")
        return 0
    report = check(scores, [m.vocab for m in models])
    print(report.text())
    if args.apply:
        write_scores(path, scores, out, report.drop if args.apply == "drop" else (), dev=dev)
        print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "presets":
            print("\n".join(list_presets()))
            return 0
        if args.command in ("score", "check"):
            return run_dev(args)
        if args.command == "serve":
            from .serve.cli import run

            return run(args)
        return run_chat(args) if args.command == "chat" else run_generate(args)
    except EnsembleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
