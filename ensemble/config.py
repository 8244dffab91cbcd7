"""Frozen configs. Data flows one way: preset YAML / CLI flags -> dicts -> these dataclasses -> arguments.

`from_dict` rejects unknown keys, so a typo in a preset fails loudly instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

MAX_MEMBERS = 4
REMOTE_SCHEMES = ("http://", "https://")  # a member whose model is a URL is served by an inference server
# Methods that need every member's full next-token distribution; a served member gives only its top-k.
FULL_DISTRIBUTION = ("average", "deepen")
DTYPES = ("auto", "bf16", "fp32", "fp16", "8bit", "4bit")  # 8bit/4bit: bitsandbytes (ensemble/models/quantize.py)


@dataclass(frozen=True)
class MemberSpec:
    model: str  # Hub id, local folder, folder or file with a .gguf, offline:NAME, or a server URL http://HOST:PORT
    weight: float = 1.0
    dtype: str = "auto"  # auto: the checkpoint's own dtype, else 8bit, else 4bit, whichever first fits the GPUs
    name: str = ""  # display name; derived from `model` when empty
    trust_remote_code: bool = False
    score: float | None = None  # dev-set accuracy in [0, 1], written by `python -m ensemble score`
    # Served members only (model: http://HOST:PORT, docs/remote.md): where the tokenizer comes from (a Hub id,
    # local folder, .gguf or offline:NAME; empty = the model id the server reports), and how long one call may take.
    tokenizer: str = ""
    timeout: float = 30.0

    def __post_init__(self):
        if not self.model or not str(self.model).strip():
            raise ConfigError("a member needs a model: a Hub id or a local folder")
        if self.score is not None and not 0 <= self.score <= 1:
            raise ConfigError(f"member {self.model!r}: score must be in [0, 1], got {self.score}")
        if not 0 < self.weight < math.inf:
            raise ConfigError(f"member {self.model!r}: weight must be > 0, got {self.weight}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"member {self.model!r}: dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not 0 < self.timeout < math.inf:
            raise ConfigError(f"member {self.model!r}: timeout must be > 0 seconds, got {self.timeout}")
        if self.tokenizer and not self.remote:
            raise ConfigError(f"member {self.model!r}: tokenizer is only for served members (model: http://HOST:PORT)")
        if not self.name:
            name = self.model.split("://", 1)[1].strip("/").removesuffix("/v1") if self.remote else self.model
            object.__setattr__(self, "name", Path(str(name).rstrip("/")).name.removeprefix("offline:"))

    @property
    def remote(self) -> bool:
        return is_remote(self.model)


def is_remote(model: str) -> bool:
    return str(model).strip().lower().startswith(REMOTE_SCHEMES)


@dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not 0 <= self.temperature < math.inf:  # written so that nan fails too
            raise ConfigError(f"temperature must be >= 0 and finite, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        object.__setattr__(self, "stop", tuple(s for s in self.stop if s))


@dataclass(frozen=True)
class EnsembleConfig:
    members: tuple[MemberSpec, ...]
    method: str = "unite"
    options: Mapping = field(default_factory=dict)  # method options, validated by the method's own dataclass
    primary: int = 0  # main member: GaC gating, prompt-length reference
    sampling: SamplingConfig = SamplingConfig()
    resync_window: int = 8  # answer tokens re-tokenized with each new piece; 0 = append the piece's own ids
    max_prompt_tokens: int = 0  # 0 = the smallest member context minus max_new_tokens
    prompt_format: str = "chat"  # chat: each member's own template (plain if it has none); plain: no templates
    # Per prompt (decode/demos.py): "demos" scores each member on the prompt's worked examples, makes the best
    # the main member and drops members more than `drop_gap` (relative bits per byte) behind it; "off": never.
    per_prompt: str = "off"
    drop_gap: float = 0.25

    def __post_init__(self):
        n = len(self.members)
        if not 1 <= n <= MAX_MEMBERS:
            raise ConfigError(f"an ensemble takes 1 to {MAX_MEMBERS} members, got {n}")
        if not 0 <= self.primary < n:
            raise ConfigError(f"primary must be a member index in [0, {n - 1}], got {self.primary}")
        if self.resync_window < 0:
            raise ConfigError(f"resync_window must be >= 0, got {self.resync_window}")
        if self.prompt_format not in ("chat", "plain"):
            raise ConfigError(f"prompt_format must be 'chat' or 'plain', got {self.prompt_format!r}")
        if self.per_prompt not in ("off", "demos"):
            raise ConfigError(f"per_prompt must be 'off' or 'demos', got {self.per_prompt!r}")
        if not 0 <= self.drop_gap < math.inf:
            raise ConfigError(f"drop_gap must be >= 0, got {self.drop_gap}")
        object.__setattr__(self, "options", dict(self.options))
        check_remote_method(self)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(m.weight for m in self.members)

    @classmethod
    def from_dict(cls, data: Mapping) -> EnsembleConfig:
        return from_dict(cls, data)


def check_remote_method(config: EnsembleConfig) -> None:
    """Served members give their top-k only. Methods that need full distributions refuse them, in one line,
    rather than fuse a silently truncated one (docs/remote.md)."""
    served = [m.name for m in config.members if m.remote]
    if not served:
        return
    threshold = config.options.get("threshold", 0) if config.method == "gac" else 1
    if config.method in FULL_DISTRIBUTION or not _positive(threshold):
        raise ConfigError(f"method {config.method!r} needs every member's full distribution, but {served[0]} is "
                          "served remotely and gives only its top-k; use unite, or gac with a threshold")


def _positive(value) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False


def from_dict(cls, data: Mapping):
    """Build dataclass `cls` from plain data, recursively; unknown keys raise ConfigError naming them."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {unknown}; allowed: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = _coerce(hints[key], value, key)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{cls.__name__}: {e}") from None


def _coerce(hint, value, key):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    if origin is tuple:
        items = [value] if isinstance(value, str | Mapping) else list(value)
        inner = args[0] if args else object
        return tuple(_coerce(inner, v, key) for v in items)
    if hint in (int, float) and not isinstance(value, bool):
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}") from None
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    return value


def cache_root() -> Path:
    """Where converted models and alignment tables are cached: $ENSEMBLE_CACHE, else ~/.cache/ensemble-chat."""
    env = os.environ.get("ENSEMBLE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ensemble-chat"
