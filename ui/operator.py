"""Operator controls and Space mode: flags and env vars -> the model Policy, the starting preset, the KV budget.

On a Space (SPACE_ID set) the defaults close up: only the presets' models, no local paths. Off a Space, local
paths are allowed only when the app listens on loopback. No torch here (app.py and ui/ never import it).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ensemble.config import EnsembleConfig, MemberSpec
from ensemble.models.policy import DEFAULT_MAX_PARAMS, Policy, is_hub_id, parse_params, split_list

OFFLINE_PRESET = "offline-default"
HUB_PRESET = "hub-default"  # presets/hub-default.yaml: what a Space runs when the offline wheels are absent
CHARS_PER_TOKEN = 3  # budget assumption: English prose and code average 3.5-4.5 characters per token
TEMPLATE_TOKENS = 16  # chat-template markers per message
LOOPBACK = ("127.", "localhost", "::1")


def on_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def add_flags(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument("--allow-models", default=env("ENSEMBLE_ALLOW_MODELS"),
                   help="Hub ids visitors may load: comma-separated globs ('*' = any), 'presets' = only the "
                        "presets' models; default: 'presets' on a Space, else any")
    p.add_argument("--allow-local-paths", choices=("auto", "yes", "no"),
                   default=env("ENSEMBLE_ALLOW_LOCAL_PATHS", "auto"),
                   help="local folders, .gguf files, offline:NAME; auto = yes only on loopback and off Spaces")
    p.add_argument("--max-params", default=env("ENSEMBLE_MAX_PARAMS", f"{DEFAULT_MAX_PARAMS // 10**9}B"),
                   help="largest member, from its metadata before any download (9B, 500M; none = no limit)")
    p.add_argument("--token-for-visitors", action="store_true",
                   default=env("ENSEMBLE_TOKEN_FOR_VISITORS", "") in ("1", "true", "yes"),
                   help="send HF_TOKEN for visitor-chosen repos too (default: only for the presets' models)")
    p.add_argument("--max-per-client", type=int, default=int(env("ENSEMBLE_MAX_PER_CLIENT", "4")),
                   help="requests one client may have waiting or running at once")
    p.add_argument("--shares-per-minute", type=float, default=float(env("ENSEMBLE_SHARES_PER_MINUTE", "6")),
                   help="Share presses per browser session per minute")


def local_paths_allowed(choice: str, host: str) -> bool:
    if choice in ("yes", "no"):
        return choice == "yes"
    return not on_space() and str(host).startswith(LOOPBACK)


def make_policy(args: argparse.Namespace, presets: Mapping[str, EnsembleConfig]) -> Policy:
    operator = frozenset(m.model for c in presets.values() for m in c.members)
    allow_text = args.allow_models or ("presets" if on_space() else "*")
    allow = None if allow_text.strip() == "*" else () if allow_text.strip() == "presets" else split_list(allow_text)
    try:
        max_params = parse_params(args.max_params)
    except ValueError as e:
        raise SystemExit(f"--max-params: {e}") from None
    return Policy(allow=allow, local_paths=local_paths_allowed(args.allow_local_paths, args.host),
                  max_params=max_params, token_for_visitors=args.token_for_visitors, operator_models=operator)


def offline_ready(members: Iterable[MemberSpec]) -> bool:
    """True if every offline:NAME member is converted in the cache (scripts/install-models.sh ran)."""
    from ensemble.models.offline import MARKER, resolve

    try:
        return all((Path(resolve(m.model)) / MARKER).exists() for m in members if m.model.startswith("offline:"))
    except ValueError:
        return False


def starting_preset(requested: str, presets: Mapping[str, EnsembleConfig]) -> str:
    """--preset if given; else the offline default when its models are installed, else the Hub preset."""
    if requested:
        return requested
    if OFFLINE_PRESET in presets and offline_ready(presets[OFFLINE_PRESET].members):
        return OFFLINE_PRESET
    return HUB_PRESET if HUB_PRESET in presets else OFFLINE_PRESET


def startup_presets(start: str, presets: Mapping[str, EnsembleConfig], policy: Policy) -> list[EnsembleConfig]:
    """What ZeroGPU loads before serving: the starting preset, then every other preset made only of Hub models."""
    others = [c for n, c in sorted(presets.items()) if n != start
              and all(is_hub_id(m.model) and m.model in policy.operator_models for m in c.members)]
    return [presets[start], *others] if start in presets else others


def context_tokens(max_turns: int, max_prompt_chars: int, max_new_tokens: int) -> int:
    """KV positions one cache must hold for the longest conversation the UI allows: every turn's prompt and
    fused answer, plus the chat template (CHARS_PER_TOKEN is the assumption; docs/app.md)."""
    per_turn = math.ceil(max_prompt_chars / CHARS_PER_TOKEN) + max_new_tokens + 2 * TEMPLATE_TOKENS
    return max_turns * per_turn + TEMPLATE_TOKENS


def offered(presets: Mapping[str, EnsembleConfig], policy: Policy) -> list[str]:
    """The member dropdowns' choices: the presets' models (always allowed: policy.operator_models) that this
    server can load, i.e. offline ones only when installed."""
    models = {m.model: m for c in presets.values() for m in c.members}
    return sorted(name for name, m in models.items() if offline_ready([m]))
