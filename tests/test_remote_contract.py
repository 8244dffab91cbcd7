"""Request/reply contracts of the three servers, on replies in their documented shapes (tests/data/remote/).

vLLM and SGLang were not run here (no GPU): their replies are written in the shapes of their docs and source
(vLLM: /v1/completions with `return_tokens_as_token_ids`, keys `token_id:N`, ModelCard `owned_by: "vllm"`,
`max_model_len`; SGLang: /generate `meta_info.output_top_logprobs` as [logprob, id, text|null] per
tokenizer_manager.detokenize_logprob_tokens, ModelCard `owned_by: "sglang"`). The llama.cpp replies follow the
vendored server's source (server-task.cpp probs_vector_to_json, server-context.cpp get_res_model_info); the
real server itself is exercised by tests/test_remote_llamacpp.py.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ensemble.decode.remote import ServerClient, ServerError
from ensemble.decode.servers import DIALECTS, ReplyError, dialect_of, served_facts

DATA = Path(__file__).parent / "data" / "remote"
IDS = [151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198]


def recorded(name: str):
    return json.loads((DATA / name).read_text())


CASES = {  # dialect: (models reply, next-token reply, top ids in order, context)
    "vllm": ("vllm-models.json", "vllm-completion.json", [785, 40, 9707, 32, 16], 32768),
    "sglang": ("sglang-models.json", "sglang-generate.json", [785, 40, 9707, 32, 16], 32768),
    "llamacpp": ("llamacpp-models.json", "llamacpp-completion.json", [504, 2893, 378, 1055, 57], 4096),
}


def test_vllm_request_is_the_documented_one():
    body = DIALECTS["vllm"].body(IDS, 20, "Qwen/Qwen2.5-0.5B-Instruct")
    assert DIALECTS["vllm"].path == "/v1/completions"
    assert body == {"model": "Qwen/Qwen2.5-0.5B-Instruct", "prompt": IDS, "max_tokens": 1, "logprobs": 20,
                    "temperature": 0, "return_tokens_as_token_ids": True}
    assert "prompt_logprobs" not in body and "echo" not in body  # both would bypass the prefix cache


def test_sglang_request_is_the_documented_one():
    body = DIALECTS["sglang"].body(IDS, 20, "ignored")
    assert DIALECTS["sglang"].path == "/generate"
    assert body == {"input_ids": IDS, "sampling_params": {"max_new_tokens": 1, "temperature": 0},
                    "return_logprob": True, "top_logprobs_num": 20, "stream": False}


def test_llamacpp_request_is_the_documented_one():
    body = DIALECTS["llamacpp"].body(IDS, 20, "ignored")
    assert DIALECTS["llamacpp"].path == "/completion"
    assert body["prompt"] == IDS and body["n_predict"] == 1 and body["n_probs"] == 20 and body["cache_prompt"]
    assert body["post_sampling_probs"] is False


@pytest.mark.parametrize("kind", sorted(CASES))
def test_recorded_replies_parse(kind):
    models_file, reply_file, ids, context = CASES[kind]
    models = recorded(models_file)
    assert dialect_of(models) == kind
    served, ctx = served_facts(models)
    assert served == models["data"][0]["id"] and ctx == context
    top = DIALECTS[kind].parse(recorded(reply_file))
    assert len(top.ids) == len(set(top.ids)) >= 5
    assert list(top.logprobs) == sorted(top.logprobs, reverse=True) and all(lp <= 0 for lp in top.logprobs)
    assert list(top.ids) == ids


def test_vllm_without_token_id_keys_is_refused_not_guessed():
    with pytest.raises(ReplyError, match="return_tokens_as_token_ids"):
        DIALECTS["vllm"].parse(recorded("vllm-completion-text-keys.json"))


@pytest.mark.parametrize(("kind", "reply"), [
    ("vllm", {"choices": []}), ("vllm", {"choices": [{"logprobs": None}]}),
    ("sglang", {"meta_info": {}}), ("sglang", {"meta_info": {"output_top_logprobs": [[["x", 1, None]]]}}),
    ("llamacpp", {"completion_probabilities": [{"top_logprobs": [{"id": -1, "logprob": -0.1}]}]}),
    ("llamacpp", {"completion_probabilities": [{"top_logprobs": [{"id": 3, "logprob": 0.5}]}]}),
    ("llamacpp", {"completion_probabilities": [{"top_logprobs": []}]}),
])
def test_malformed_replies_raise_reply_errors(kind, reply):
    with pytest.raises(ReplyError):
        DIALECTS[kind].parse(reply)


class Replay:
    """Serves one recorded reply at the dialect's path; records the request bodies."""

    def __init__(self, path: str, reply):
        self.bodies: list[dict] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                replay.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                data = json.dumps(reply).encode() if self.path == path else b'{"error": "no route"}'
                self.send_response(200 if self.path == path else 404)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("kind", ["vllm", "sglang"])
def test_the_client_posts_to_the_documented_path(kind):
    _, reply_file, ids, _ = CASES[kind]
    dialect = DIALECTS[kind]
    server = Replay(dialect.path, recorded(reply_file))
    try:
        client = ServerClient(f"http://127.0.0.1:{server.httpd.server_address[1]}", dialect, "m", 2.0)
        top = client.next_token(IDS)
        assert list(top.ids) == ids and server.bodies == [dialect.body(IDS, 20, "m")]
        other = DIALECTS["llamacpp" if kind == "vllm" else "vllm"]
        wrong = ServerClient(client.base, other, "m", 2.0)
        with pytest.raises(ServerError, match="HTTP 404"):
            wrong.next_token(IDS)
    finally:
        server.close()
