"""What an operator lets visitors load: allowed Hub ids, local paths, a size ceiling, whose Hub token.

    policy = Policy(allow=("HuggingFaceTB/*", "Qwen/Qwen2.5-0.5B-Instruct"), local_paths=False,
                    max_params=9_000_000_000, operator_models=frozenset(preset_models))
    policy.check(spec.model)             # LoadError (one line) before anything is read or downloaded
    where, extra = policy.locate(model)  # locate.locate, or the Hub id as it is (never a folder) when paths are off
    policy.check_size(name, params)      # after the metadata (config.json + safetensors header), before download

`check` looks at the string only: it never touches the file system, so its answer cannot tell a visitor
whether a server path exists. A string that could be a folder or a file (starts with `.`, `/`, `~`, a drive
letter, has more than one `/`, ends in `.gguf`) is "a local path" whether or not it exists. An `owner/name`
that happens to also be a folder under the working directory would be opened as that folder by
`from_pretrained`; with local paths off, `locate` answers it exactly as the Hub answers a missing repo.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import is_remote
from ..errors import LoadError
from .locate import locate as locate_any

DEFAULT_MAX_PARAMS = 9_000_000_000
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKmMbBtT]?)")
UNITS = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}
NOT_ON_HUB = ("could not load {!r}: no such model on the Hugging Face Hub (check the owner/name spelling; "
              "a private repo needs `hf auth login` or HF_TOKEN)")  # hub.translate's words, kept identical


def parse_params(text: str | int | None) -> int | None:
    """'9B' / '500M' / '7.5b' / 123 -> parameters; '', 'none', 0 -> None (no ceiling)."""
    if text is None or str(text).strip().lower() in ("", "none", "0", "off"):
        return None
    match = SIZE.fullmatch(str(text).strip())
    if not match:
        raise ValueError(f"not a parameter count: {text!r} (try 9B, 500M)")
    return int(float(match[1]) * UNITS[match[2].lower()])


def split_list(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """'a/b, c/*' or ['a/b', 'c/*'] -> ('a/b', 'c/*'); commas or whitespace separate."""
    if text is None:
        return ()
    parts = re.split(r"[,\s]+", text) if isinstance(text, str) else list(text)
    return tuple(p.strip() for p in parts if p and p.strip())


def is_hub_id(model: str) -> bool:
    return bool(HUB_ID.fullmatch(model)) and ".." not in model and not model.endswith((".gguf", "."))


@dataclass(frozen=True)
class Policy:
    allow: tuple[str, ...] | None = None  # Hub id globs (fnmatch, case-sensitive); None: any Hub id
    local_paths: bool = True  # folders, .gguf files and offline:NAME
    max_params: int | None = DEFAULT_MAX_PARAMS
    token_for_visitors: bool = False  # send the operator's HF token for models not in operator_models
    operator_models: frozenset[str] = field(default_factory=frozenset)  # the presets' models: always allowed

    def check(self, model: str) -> None:
        """Raise LoadError if `model` may not be loaded here. Looks at the string only."""
        if model in self.operator_models or is_remote(model):  # served members: the app's --allow-remote decides
            return
        if not is_hub_id(model):
            if not self.local_paths:
                raise LoadError(f"{model!r}: this server loads Hugging Face Hub models only (owner/name); "
                                "local paths are turned off")
            return
        if self.allow is not None and not any(fnmatch.fnmatchcase(model, pattern) for pattern in self.allow):
            offered = ", ".join(self.allow) or "only its presets' models"
            raise LoadError(f"{model!r} is not offered on this server (allowed: {offered})")

    def check_all(self, models: Iterable[str]) -> None:
        for model in models:
            self.check(model)

    def check_size(self, name: str, params: int) -> None:
        if self.max_params is not None and params > self.max_params:
            raise LoadError(f"{name}: {params / 1e9:.2f}B parameters; this server's limit is "
                            f"{self.max_params / 1e9:g}B (--max-params)")

    def locate(self, model: str) -> tuple[str, dict]:
        """Where `from_pretrained` should look, and its extra kwargs (token=False for visitors' Hub repos)."""
        if self.local_paths or model in self.operator_models or not is_hub_id(model):
            where, extra = locate_any(model)
        else:
            if Path(model).exists():  # a folder under the working directory: never opened, never admitted
                raise LoadError(NOT_ON_HUB.format(model))
            where, extra = model, {}
        if is_hub_id(where) and where == model and not self.uses_token(model):
            extra = {**extra, "token": False}
        return where, extra

    def uses_token(self, model: str) -> bool:
        return self.token_for_visitors or model in self.operator_models
