"""Start and stop llama.cpp's own server (scripts/llama-server.sh) on a free loopback port, for tests and bench."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
NAME = "smollm2-135m-instruct"
START_S = 900.0  # a fresh clone builds the server first (minutes); scripts/test.sh builds it before pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    def __init__(self, name: str = NAME, log: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log or os.devnull, "wb")  # noqa: SIM115 (closed in stop)
        env = dict(os.environ, PYTHON=sys.executable)
        # exec'd by the script, so this pid is llama-server itself once it runs
        self.proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "llama-server.sh"), name, str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"scripts/llama-server.sh exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama-server not ready on {self.url} after {START_S:.0f}s")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
