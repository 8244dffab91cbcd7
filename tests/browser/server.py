"""The real app (app.Models backend, ui.build_app) on the tiny fixture models, served in this process."""

from __future__ import annotations

import socket
from pathlib import Path

from ensemble.align import METHODS
from ensemble.config import EnsembleConfig, MemberSpec, SamplingConfig

FIXTURES = ("bpe-qwen2", "uni-llama", "uni-gemma3")


def tiny_presets(fixture_dirs: dict[str, Path], max_new_tokens: int = 24) -> dict[str, EnsembleConfig]:
    members = tuple(MemberSpec(str(fixture_dirs[name]), dtype="fp32") for name in FIXTURES)
    sampling = SamplingConfig(max_new_tokens=max_new_tokens)
    return {"tiny": EnsembleConfig(members=members, method="unite", sampling=sampling),
            "tiny-pair": EnsembleConfig(members=members[:2], method="gac", sampling=sampling)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(fixture_dirs, data_dir: Path, max_new_tokens: int = 24, **limits):
    """Start the app in a background thread; returns (url, demo, models). demo.close() stops it."""
    from app import Models
    from ui import Context, Limits, build_app
    from ui.layout import launch_options
    from ui.store import ComparisonStore

    presets = tiny_presets(fixture_dirs, max_new_tokens)
    models = Models()
    ctx = Context(models, ComparisonStore(data_dir), presets, sorted(METHODS), Limits(**limits), "tiny")
    demo = build_app(ctx, [str(fixture_dirs[n]) for n in FIXTURES])
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options())
    return f"http://127.0.0.1:{port}", demo, models
