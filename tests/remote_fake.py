"""A tiny llama.cpp-shaped server for tests: http.server on a free loopback port, in a thread.

`mode` picks what POST /completion does:
    "model"   the top-k of a local LoadedModel (fp32, full recompute per request), llama.cpp's reply shape
    "garbage" 200 with a body that is not JSON
    "wrong"   200 with JSON that lacks completion_probabilities
    "hang"    never answers (sleeps until the server stops)
    "http500" HTTP 500 every time
`delay` sleeps before each /completion reply (overlap tests). `calls` counts /completion requests.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


class FakeServer:
    def __init__(self, mode: str = "model", lm=None, delay: float = 0.0, k: int = 20):
        self.mode, self.lm, self.delay, self.k = mode, lm, delay, k
        self.calls = 0
        self.bodies: list[dict] = []
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def top_k(self, ids: list[int]) -> list[dict]:
        with torch.inference_mode():
            logits = self.lm.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
        top = torch.log_softmax(logits, -1).topk(self.k)
        return [{"id": int(i), "token": "", "bytes": [], "logprob": float(lp)}
                for lp, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]

    def answer(self, path: str, body: dict) -> tuple[int, bytes] | None:
        """(status, body) for one POST; None = never answer (hang)."""
        if path == "/tokenize":  # llama.cpp's shape
            ids = self.lm.tokenizer(body["content"], add_special_tokens=False)["input_ids"] if self.lm else []
            return 200, json.dumps({"tokens": list(ids)}).encode()
        self.calls += 1
        self.bodies.append(body)
        if self.delay:
            time.sleep(self.delay)
        if self.mode == "hang":
            self.stopping.wait(60)
            return None
        canned = {"garbage": (200, b"<html>oops</html>"), "wrong": (200, b'{"content": "hi"}'),
                  "http500": (500, b'{"error": {"code": 500, "message": "slot unavailable"}}')}
        if self.mode in canned:
            return canned[self.mode]
        top = self.top_k(body["prompt"])
        reply = {"content": "", "tokens": [], "completion_probabilities": [{**top[0], "top_logprobs": top}]}
        return 200, json.dumps(reply).encode()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/v1/models":
                    data = {"object": "list", "data": [{"id": "fake.gguf", "object": "model", "owned_by": "llamacpp",
                                                        "meta": {"n_ctx_train": 2048}}]}
                    self._send(200, json.dumps(data).encode())
                elif self.path == "/props":
                    self._send(200, json.dumps({"default_generation_settings": {"n_ctx": 1024}}).encode())
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                answer = fake.answer(self.path, body)
                if answer is not None:
                    self._send(*answer)

        return Handler
