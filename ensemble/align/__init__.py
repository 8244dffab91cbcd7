"""Alignment methods, chosen by name. Adding one = one file + one line here; the engine never branches
on the method's name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..config import from_dict
from ..errors import ConfigError
from .average import Average, AverageOptions
from .base import Aligned, Method
from .deepen import Deepen, DeepenOptions
from .gac import Gac, GacOptions
from .unite import Unite, UniteOptions

METHODS = {
    "average": (Average, AverageOptions),
    "deepen": (Deepen, DeepenOptions),
    "gac": (Gac, GacOptions),
    "unite": (Unite, UniteOptions),
}


def make_method(name: str, members: Sequence, options: Mapping | None = None, primary: int = 0) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; choose one of: {', '.join(sorted(METHODS))}")
    cls, options_cls = METHODS[name]
    return cls(members, from_dict(options_cls, options or {}), primary)


__all__ = ["METHODS", "Aligned", "Method", "make_method"]
