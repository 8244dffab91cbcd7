"""The OpenAI-compatible server (ensemble/serve) on tiny fixture models, on loopback, in this process."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
import yaml

from ensemble.models.pool import ModelPool
from ensemble.presets import load_preset
from ensemble.serve.routes import create_app
from ensemble.serve.service import Limits, Service, build_service


def tiny_preset(directory: Path, fixture_dirs: dict[str, Path], members=("bpe-qwen2", "uni-llama"),
                method: str = "unite", max_new_tokens: int = 16, **extra) -> Path:
    """A preset YAML over fixture models (fp32, so answers are exactly reproducible)."""
    data = {"members": [{"model": str(fixture_dirs[m]), "dtype": "fp32"} for m in members], "method": method,
            "sampling": {"max_new_tokens": max_new_tokens}, **extra}
    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class Running:
    url: str  # ends in /v1
    service: Service


@contextmanager
def serving(preset: Path, api_key: str | None = None, pool: ModelPool | None = None, **limits):
    """Load the preset through a ModelPool (as `python -m ensemble serve` does) and serve it on a free port."""
    config = load_preset(str(preset))
    models = (pool or ModelPool()).load(config.members)
    service = build_service(preset.stem, config, models, Limits(**limits))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(service, api_key), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    try:
        yield Running(f"http://127.0.0.1:{sock.getsockname()[1]}/v1", service)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def wait_idle(service: Service, timeout: float = 20.0) -> dict:
    """Until no answer runs or waits; returns the gate's state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = service.gate.state()
        if state["running"] == 0 and state["waiting"] == 0:
            return state
        time.sleep(0.02)
    raise AssertionError(f"still busy after {timeout}s: {service.gate.state()}")
