"""presets/*.yaml -> EnsembleConfig. Unknown keys raise (config.from_dict)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from .config import EnsembleConfig
from .errors import ConfigError


def _preset_dir() -> Path:
    """presets/ beside the package (a checkout or an editable install); else the copy that a wheel installs
    under <prefix>/share/ensemble-chat/presets (pyproject.toml's data-files)."""
    beside = Path(__file__).resolve().parent.parent / "presets"
    return beside if beside.is_dir() else Path(sys.prefix) / "share" / "ensemble-chat" / "presets"


PRESET_DIR = _preset_dir()


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise ConfigError(f"no preset {name_or_path!r}; available: {', '.join(list_presets()) or 'none'}")
    return path


def load_preset(name_or_path: str) -> EnsembleConfig:
    path = preset_path(name_or_path)
    data = yaml.safe_load(path.read_text()) or {}
    data.pop("description", None)
    return EnsembleConfig.from_dict(data)
