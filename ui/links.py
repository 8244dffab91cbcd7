"""Links into the app: `?c=<id>` opens a stored comparison; `?preset=&method=&prompt=` prefill settings.

Every parameter is checked; a bad one becomes a message for the page, never an exception.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ID_BYTES = 16  # 128 random bits: unguessable
ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
KNOWN = ("c", "preset", "method", "prompt")
SHOWN_CHARS = 40  # how much of a bad value a message repeats


@dataclass(frozen=True)
class Link:
    comparison: str = ""
    preset: str = ""
    method: str = ""
    prompt: str = ""
    problems: tuple[str, ...] = ()


def new_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def valid_id(value: str) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


def parse_link(params: Mapping[str, str], presets: Sequence[str], methods: Sequence[str],
               max_prompt_chars: int) -> Link:
    """Query parameters -> a Link holding only valid values, plus one message per bad parameter."""
    problems = [f"unknown link parameter {_shown(k)!r} ignored" for k in params if k not in KNOWN
                and not k.startswith("__")]  # Gradio's own (?__theme=dark)
    values = {k: str(params.get(k, "")) for k in KNOWN}
    comparison = values["c"]
    if comparison and not valid_id(comparison):
        problems.append(f"no shared comparison {_shown(comparison)!r}: the link is malformed")
        comparison = ""
    preset = values["preset"]
    if preset and preset not in presets:
        problems.append(f"unknown preset {_shown(preset)!r}; available: {', '.join(presets)}")
        preset = ""
    method = values["method"]
    if method and method not in methods:
        problems.append(f"unknown method {_shown(method)!r}; choose one of: {', '.join(methods)}")
        method = ""
    prompt = values["prompt"]
    if len(prompt) > max_prompt_chars:
        problems.append(f"the prompt in the link is {len(prompt)} characters; the limit is {max_prompt_chars}")
        prompt = ""
    elif any(not (ch.isprintable() or ch in "\n\t") for ch in prompt):
        problems.append("the prompt in the link has control characters; it was left out")
        prompt = ""
    return Link(comparison, preset, method, prompt, tuple(problems))


def share_url(base: str, comparison: str) -> str:
    return f"{base.split('?')[0].rstrip('/')}/?c={comparison}"


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"
