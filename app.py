"""The Ensemble Chat web app: `python app.py [--host H] [--port P] [--preset NAME] [--data-dir D]`.

argparse -> presets -> Models (all model loading) -> ui.build_app -> launch.
"""

from __future__ import annotations

import argparse
import os

if os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true"):
    import spaces  # noqa: F401  # before anything touches CUDA (ZeroGPU's rule); it emulates CUDA from here on

from ensemble.models.backend import Models  # every model load and answer; ZeroGPU-aware
from ensemble.presets import list_presets, load_preset
from ui.operator import add_flags

__all__ = ["Models", "main", "make_app", "parse_args"]


def parse_args(argv=None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=env("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--preset", default=env("ENSEMBLE_PRESET", ""),
                   help="the picker's default (default: offline-default if installed, else hub-default)")
    p.add_argument("--data-dir", default=env("ENSEMBLE_DATA_DIR"), help="shared comparisons (SQLite); "
                   "default /data/ensemble-chat when /data exists, else ~/.local/share/ensemble-chat")
    p.add_argument("--public-url", default=env("ENSEMBLE_PUBLIC_URL", ""), help="base of share links")
    p.add_argument("--queue-size", type=int, default=16, help="waiting requests beyond this are refused")
    p.add_argument("--concurrency", type=int, default=1, help="loads/decodes on the device at once")
    p.add_argument("--max-prompt-chars", type=int, default=4000)
    p.add_argument("--max-turns", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=512, help="cap on the decoding slider")
    p.add_argument("--answer-seconds", type=float, default=180.0, help="an answer stops after this long")
    p.add_argument("--updates-per-second", type=float, default=15.0, help="streaming refresh rate in the browser")
    p.add_argument("--preload", action="store_true", help="load the default preset before serving (always on ZeroGPU)")
    p.add_argument("--allow-remote", action="store_true", default=env("ENSEMBLE_ALLOW_REMOTE", "") == "1",
                   help="let the picker take members served at http://HOST:PORT (docs/remote.md)")
    add_flags(p)
    return p.parse_args(argv)


def make_app(args: argparse.Namespace, models: Models | None = None):
    """The app for `args`; `models` defaults to one built from the operator flags (ui/operator.py)."""
    from ensemble.align import METHODS
    from ui import Context, Limits, build_app
    from ui.limits import ClientCap
    from ui.operator import context_tokens, make_policy, offered, starting_preset, startup_presets
    from ui.store import ComparisonStore, default_data_dir

    presets = {name: load_preset(name) for name in list_presets()}
    limits = Limits(args.max_prompt_chars, args.max_turns, args.max_new_tokens, args.queue_size, args.answer_seconds,
                    args.updates_per_second, args.max_per_client, args.shares_per_minute, args.allow_remote)
    policy, start = make_policy(args, presets), starting_preset(args.preset, presets)
    models = models or Models(policy=policy, context=context_tokens(args.max_turns, args.max_prompt_chars,
                                                                    args.max_new_tokens),
                              answer_seconds=args.answer_seconds)
    store = ComparisonStore(args.data_dir or default_data_dir())
    ctx = Context(models, store, presets, sorted(METHODS), limits, start, args.public_url)
    if args.preload or models.zero_gpu:  # ZeroGPU: load before the GPU worker forks, never after
        configs = startup_presets(start, presets, models.policy) if models.zero_gpu else [presets[start]]
        models.start_up(configs, lambda f, msg: print(f"[{f:.0%}] {msg}", flush=True))
    demo = build_app(ctx, offered(presets, models.policy), args.concurrency)
    ClientCap(demo._queue, args.max_per_client)  # one client cannot take every queue slot
    return demo


def main(argv=None) -> None:
    args = parse_args(argv)
    from ui.layout import launch_options

    demo = make_app(args)
    demo.launch(server_name=args.host, server_port=args.port, **launch_options())


if __name__ == "__main__":
    main()
