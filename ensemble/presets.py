"""presets/*.yaml -> EnsembleConfig. Unknown keys raise (config.from_dict)."""

from __future__ import annotations

from pathlib import Path

import yaml

from .config import EnsembleConfig
from .errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"


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
