"""The model picker's values <-> a settings dict <-> EnsembleConfig. Validation gives messages, not exceptions.

Settings (JSON-ready, stored with shared comparisons):
    {"preset": str, "members": [{"model", "quant", "weight"}], "method": str, "primary": int,
     "per_prompt": bool, "sampling": {"max_new_tokens", "temperature", "top_p", "seed"}}
Picker values, in order: preset, method, primary (1-based), per_prompt, max_new_tokens, temperature, top_p, seed,
then SLOTS x (model, quant, weight).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig, is_remote
from ensemble.errors import ConfigError

from .state import Limits

SLOTS = 4
MIN_MEMBERS = 2
QUANTS = ("auto", "4bit", "8bit", "bf16", "fp16", "fp32")  # MemberSpec.dtype; auto = the best that fits
MAX_MODEL_CHARS = 300
HEAD = ("preset", "method", "primary", "per_prompt", "max_new_tokens", "temperature", "top_p", "seed")
FIELDS = HEAD + tuple(f"{k}{i}" for i in range(SLOTS) for k in ("model", "quant", "weight"))  # component names


def member_spec(model: str, quant: str, weight: float) -> MemberSpec:
    """The one place a picker row becomes a MemberSpec."""
    return MemberSpec(model, weight=weight, dtype=quant)


def settings_from_values(values: Sequence, methods: Sequence[str], limits: Limits) -> tuple[dict | None, list[str]]:
    """Picker values -> (settings, problems). Settings is None when anything is wrong."""
    head = dict(zip(HEAD, values[: len(HEAD)], strict=True))
    rows = [values[len(HEAD) + 3 * i: len(HEAD) + 3 * i + 3] for i in range(SLOTS)]
    problems: list[str] = []
    members = [m for slot, row in enumerate(rows, 1) if (m := _member(slot, *row, problems))]
    if not limits.allow_remote and any(is_remote(m["model"]) for m in members):
        problems.append("server URLs (http://...) are off here; the operator can allow them with --allow-remote")
    if not MIN_MEMBERS <= len(members) <= SLOTS:
        problems.append(f"pick {MIN_MEMBERS} to {SLOTS} members (got {len(members)})")
    if head["method"] not in methods:
        problems.append(f"method must be one of {', '.join(methods)}")
    primary = _int(head["primary"], 1) - 1
    if members and not 0 <= primary < len(members):
        problems.append(f"primary must be a member number from 1 to {len(members)}")
    sampling = {"max_new_tokens": _int(head["max_new_tokens"], 0), "temperature": head["temperature"],
                "top_p": head["top_p"], "seed": _int(head["seed"], 0)}
    if not 1 <= sampling["max_new_tokens"] <= limits.max_new_tokens:
        problems.append(f"max new tokens must be from 1 to {limits.max_new_tokens}")
    try:
        SamplingConfig(**{k: v for k, v in sampling.items()})
    except (ConfigError, TypeError) as e:
        problems.append(str(e))
    if problems:
        return None, problems
    settings = {"preset": head["preset"] or "", "members": members, "method": head["method"], "primary": primary,
                "per_prompt": bool(head["per_prompt"]),
                "sampling": {k: (float(v) if k in ("temperature", "top_p") else v) for k, v in sampling.items()}}
    return settings, []


def _member(slot: int, model, quant, weight, problems: list[str]) -> dict | None:
    model = (model or "").strip()
    if not model:
        return None
    if len(model) > MAX_MODEL_CHARS or not model.isprintable():
        problems.append(f"member {slot}: not a model id or path")
    if quant not in QUANTS:
        problems.append(f"member {slot}: quantization must be one of {', '.join(QUANTS)}")
    if not _number(weight) or not float(weight) > 0:
        problems.append(f"member {slot}: weight must be a number > 0")
    return {"model": model, "quant": quant, "weight": float(weight) if _number(weight) else 1.0}


def config_from_settings(settings: Mapping, presets: Mapping[str, EnsembleConfig]) -> EnsembleConfig:
    """Settings -> EnsembleConfig, keeping the preset's stop strings and prompt format (and its method
    options when the method is the preset's)."""
    base = presets.get(settings.get("preset") or "")
    members = tuple(member_spec(m["model"], m["quant"], m["weight"]) for m in settings["members"])
    stop = base.sampling.stop if base else ()
    sampling = SamplingConfig(**settings["sampling"], stop=stop)
    options = base.options if base and base.method == settings["method"] else {}
    return EnsembleConfig(members=members, method=settings["method"], options=options, primary=settings["primary"],
                          sampling=sampling, prompt_format=base.prompt_format if base else "chat",
                          per_prompt="demos" if settings.get("per_prompt") else "off",
                          drop_gap=base.drop_gap if base else EnsembleConfig.drop_gap)


def values_from_settings(settings: Mapping) -> list:
    """Settings -> picker values (the inverse of settings_from_values)."""
    s = settings["sampling"]
    head = [settings.get("preset", ""), settings["method"], settings["primary"] + 1,
            bool(settings.get("per_prompt")), s["max_new_tokens"],
            s["temperature"], s["top_p"], s["seed"]]
    rows = []
    for i in range(SLOTS):
        m = settings["members"][i] if i < len(settings["members"]) else None
        rows += [m["model"], m["quant"], m["weight"]] if m else ["", "auto", 1.0]
    return head + rows


def settings_from_config(name: str, config: EnsembleConfig) -> dict:
    """A preset -> settings (the member's dtype is its quantization choice)."""
    members = [{"model": m.model, "quant": m.dtype, "weight": m.weight} for m in config.members]
    s = config.sampling
    return {"preset": name, "members": members[:SLOTS], "method": config.method, "primary": config.primary,
            "per_prompt": config.per_prompt == "demos",
            "sampling": {"max_new_tokens": s.max_new_tokens, "temperature": s.temperature, "top_p": s.top_p,
                         "seed": s.seed}}


def member_names(settings: Mapping) -> list[str]:
    return [MemberSpec(m["model"]).name for m in settings["members"]]


def _number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool) and float(value) == float(value)


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
