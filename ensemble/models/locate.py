"""Model string -> what `from_pretrained` takes: `offline:NAME`, a local folder, a `.gguf` file or a Hub id.

Imports nothing of the loading stack, so the Hub metadata (hub.py), CALM compositions (ensemble/compose)
and the loader can all resolve a model string the same way.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import LoadError


def locate(model: str) -> tuple[str, dict]:
    """Model string -> (from_pretrained path or id, extra kwargs). Raises LoadError for a missing folder
    or an id that can't be a Hub repo."""
    if model.startswith("offline:"):
        from .offline import resolve

        try:
            model = resolve(model)
        except ValueError as e:
            raise LoadError(str(e)) from None
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").exists() and len(ggufs) == 1:
            return str(path), {"gguf_file": ggufs[0].name}
        if not (path / "config.json").exists() and not (path / "compose.json").exists():
            raise LoadError(f"{model}: folder has no config.json (and not exactly one .gguf file)")
        return str(path), {}
    if model.startswith((".", "/", "~")) or path.suffix == ".gguf" or model.count("/") > 1:
        raise LoadError(f"{model}: no such folder or file")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError as e:
        raise LoadError(f"{model!r} is not a local folder nor a valid Hub id (owner/name): {e}") from None
    return model, {}
