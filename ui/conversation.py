"""The conversation's own settings beside the picker's: the system prompt, and the one-line summary that the
folded models panel shows. Pure; no gradio."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .state import Limits

MAX_SUMMARY_NAMES = 4


def system_text(values: Sequence) -> str:
    """The system prompt field's value (the input after the picker's), stripped; '' when absent."""
    value = values[0] if values else ""
    return value.strip() if isinstance(value, str) else ""


def system_problems(system: str, limits: Limits) -> list[str]:
    problems = []
    if len(system) > limits.max_prompt_chars:
        problems.append(f"the system prompt is {len(system)} characters; the limit is {limits.max_prompt_chars}")
    if any(not (ch.isprintable() or ch in "\n\t") for ch in system):
        problems.append("the system prompt has control characters")
    return problems


def models_summary(settings: Mapping | None, names: Sequence[str], system: str = "") -> str:
    """The folded models panel's label: members, method, and whether a system prompt is set."""
    if not settings or not names:
        return "Models"
    members = " + ".join(names[:MAX_SUMMARY_NAMES])
    extra = " · system prompt set" if system else ""
    return f"Models: {members} · {settings['method']}{extra} (open to change)"
