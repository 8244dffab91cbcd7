"""A composition on disk: `compose.json` (the frozen members it references, the layer map, settings) and
`composition.safetensors` (the trained projections and cross-attention blocks, nothing else)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import ConfigError, LoadError
from .model import ComposedLM, decoder_layers
from .spec import ComposeConfig, check_layers, default_connections

CONFIG_FILE = "compose.json"
WEIGHTS_FILE = "composition.safetensors"


def is_composition(folder) -> bool:
    return (Path(folder).expanduser() / CONFIG_FILE).is_file()


def read_config(folder: Path) -> ComposeConfig:
    try:
        return ComposeConfig.from_dict(json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as e:
        raise LoadError(f"{folder}: unreadable {CONFIG_FILE}: {e}") from None


def member_refs(folder) -> list[str]:
    """The frozen members a composition folder names, anchor first (for memory estimates before loading)."""
    folder = Path(folder).expanduser()
    cfg = read_config(folder)
    return [_member_path(ref, folder) for ref in (cfg.anchor, *cfg.augments)]


def _member_path(ref: str, folder: Path) -> str:
    local = folder / ref
    return str(local) if not Path(ref).is_absolute() and local.is_dir() else ref


def _load_member(ref: str, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..models.locate import locate

    where, extra = locate(ref)
    try:
        tok = AutoTokenizer.from_pretrained(where, **extra)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **extra)
    except (OSError, ValueError, KeyError) as e:
        raise LoadError(f"could not load composition member {ref!r}: {str(e).splitlines()[0]}") from e
    return tok, model


def compose(cfg: ComposeConfig, dtype="auto", every: int = 4, base: Path | None = None, seed: int = 0) -> ComposedLM:
    """Load the frozen members and build the composition (zero-initialised outputs, the rest seeded).
    Without `cfg.connections`, connect every `every`-th augmenting layer (spec.default_connections)."""
    base = base or Path(".")
    tok, anchor = _load_member(_member_path(cfg.anchor, base), dtype)
    loaded = [_load_member(_member_path(a, base), dtype) for a in cfg.augments]
    aug_layers = [len(decoder_layers(m)) for _, m in loaded]
    n_anchor = len(decoder_layers(anchor))
    if not cfg.connections:
        cfg = ComposeConfig(cfg.anchor, cfg.augments, default_connections(aug_layers, n_anchor, every), cfg.heads)
    check_layers(cfg, aug_layers, n_anchor)
    with torch.random.fork_rng(devices=[]):  # a seeded init that leaves the caller's RNG alone
        torch.manual_seed(seed)
        return ComposedLM(cfg, anchor, tok, [m for _, m in loaded], [t for t, _ in loaded])


def save_composed(model: ComposedLM, folder) -> None:
    """Member references that are local folders are written relative to `folder`, so a working directory
    holding members and composition can move as a whole."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def ref(r: str) -> str:
        return os.path.relpath(Path(r).resolve(), folder.resolve()) if Path(r).is_dir() else r

    data = model.cfg.to_dict() | {"anchor": ref(model.cfg.anchor), "augments": [ref(a) for a in model.cfg.augments]}
    weights = {k: v.detach().float().cpu().contiguous() for k, v in model.composition_state().items()}
    save_file(weights, str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def load_composed(folder, dtype="auto") -> tuple[object, ComposedLM]:
    """(anchor tokenizer, composed model) for a folder written by `save_composed`."""
    folder = Path(folder).expanduser()
    cfg = read_config(folder)
    if not cfg.connections:
        raise ConfigError(f"{folder / CONFIG_FILE}: no connections")
    model = compose(cfg, dtype, base=folder)
    state = load_file(str(folder / WEIGHTS_FILE)) if (folder / WEIGHTS_FILE).is_file() else None
    if state is None:
        raise LoadError(f"{folder}: {WEIGHTS_FILE} is missing")
    model.blocks.load_state_dict(state)
    return model.tokenizer, model


def composition_size(model: ComposedLM) -> int:
    return sum(p.numel() for p in model.blocks.parameters())


__all__ = ["compose", "save_composed", "load_composed", "is_composition", "composition_size"]
