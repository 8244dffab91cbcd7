"""`python -m ensemble serve --preset NAME [--host 127.0.0.1] [--port 8000] [--api-key KEY] [--insecure]`.

Without a key (`--api-key` or the environment variable ENSEMBLE_API_KEY) the server binds to loopback
addresses only, unless `--insecure` says that is meant. Nothing heavy is imported until `run`.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os

from ..errors import EnsembleError

KEY_ENV = "ENSEMBLE_API_KEY"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="serve a preset as an OpenAI-compatible API (docs/serve.md)")
    p.add_argument("--preset", required=True, help="preset name or YAML path")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=os.environ.get(KEY_ENV) or None,
                   help=f"clients must send `Authorization: Bearer KEY` (default: ${KEY_ENV}; none = open)")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without an API key")
    p.add_argument("--max-new-tokens", type=int, default=512, help="the most tokens a request may ask for")
    p.add_argument("--max-prompt-tokens", type=int, help="prompt limit per member (default: the preset's, "
                   "else each member's context minus max_tokens)")
    p.add_argument("--queue-size", type=int, default=16, help="waiting requests beyond this get HTTP 429")
    p.add_argument("--concurrency", type=int, default=1, help="answers on the device at once")
    p.add_argument("--wait-seconds", type=float, default=300.0, help="a request waiting longer gets HTTP 503")
    p.add_argument("--answer-seconds", type=float, default=300.0, help="an answer stops after this long")
    return p


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def check_bind(host: str, api_key: str | None, insecure: bool) -> None:
    if not (api_key or insecure or is_loopback(host)):
        raise EnsembleError(f"refusing to serve on {host} without an API key: give --api-key (or set {KEY_ENV}), "
                            "bind to 127.0.0.1, or pass --insecure if an open server is really meant")


def run(args: argparse.Namespace) -> int:
    """Check the flags, load the preset's members through the pool, then serve until interrupted."""
    from ..align import METHODS
    from ..presets import load_preset, preset_path

    check_bind(args.host, args.api_key, args.insecure)
    config = load_preset(args.preset)
    if config.method not in METHODS:
        raise EnsembleError(f"unknown method {config.method!r}; choose one of: {', '.join(sorted(METHODS))}")
    if args.max_prompt_tokens is not None:
        config = dataclasses.replace(config, max_prompt_tokens=args.max_prompt_tokens)
    from .service import Limits

    limits = Limits(args.max_new_tokens, args.concurrency, args.queue_size, args.wait_seconds, args.answer_seconds)
    if min(limits.max_new_tokens, limits.slots) < 1 or limits.queue < 0 or min(limits.wait_s, limits.answer_s) <= 0:
        raise EnsembleError(f"--max-new-tokens and --concurrency must be >= 1, --queue-size >= 0 and the seconds "
                            f"> 0; got {limits}")
    import uvicorn

    from ..models.pool import ModelPool
    from .routes import create_app
    from .service import build_service

    models = ModelPool().load(config.members, lambda p: print(f"[{p.fraction:.0%}] {p.message}", flush=True))
    service = build_service(preset_path(args.preset).stem, config, models, limits)
    print(f"serving {', '.join(service.targets)} on http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(create_app(service, args.api_key), host=args.host, port=args.port, log_level="info")
    return 0
