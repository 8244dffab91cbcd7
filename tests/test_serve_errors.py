"""Bad requests get OpenAI-shaped 4xx errors through the real OpenAI client; API keys; the bind check."""

from __future__ import annotations

import httpx
import openai
import pytest

from ensemble import cli
from ensemble.errors import EnsembleError
from ensemble.serve.cli import check_bind, is_loopback
from tests.serve_helpers import serving, tiny_preset

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def preset(fixture_dirs, tmp_path_factory):
    return tiny_preset(tmp_path_factory.mktemp("serve-errors"), fixture_dirs, members=("bpe-qwen2",),
                       max_prompt_tokens=64)


@pytest.fixture(scope="module")
def server(preset):
    with serving(preset, max_new_tokens=32) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)


BAD = [  # (request, error class, param, code)
    ({"model": "gpt-4o", "messages": HI}, openai.NotFoundError, "model", "model_not_found"),
    ({"model": "tiny", "messages": HI, "temperature": -1}, openai.BadRequestError, "temperature", None),
    ({"model": "tiny", "messages": HI, "top_p": 1.5}, openai.BadRequestError, "top_p", None),
    ({"model": "tiny", "messages": HI, "max_tokens": 0}, openai.BadRequestError, "max_tokens", None),
    ({"model": "tiny", "messages": HI, "max_tokens": 33}, openai.BadRequestError, "max_tokens", None),
    ({"model": "tiny", "messages": HI, "n": 2}, openai.BadRequestError, "n", "unsupported_parameter"),
    ({"model": "tiny", "messages": HI, "top_logprobs": 21}, openai.BadRequestError, "top_logprobs", None),
    ({"model": "tiny", "messages": HI, "stop": ["a", "b", "c", "d", "e"]}, openai.BadRequestError, "stop", None),
    ({"model": "tiny", "messages": HI, "presence_penalty": 0.5}, openai.BadRequestError, "presence_penalty",
     "unsupported_parameter"),
    ({"model": "tiny", "messages": HI, "tools": [{"type": "function", "function": {"name": "f"}}]},
     openai.BadRequestError, "tools", "unsupported_parameter"),
    ({"model": "tiny", "messages": []}, openai.BadRequestError, "messages", None),
    ({"model": "tiny", "messages": [{"role": "assistant", "content": "hi"}]}, openai.BadRequestError, "messages",
     None),
    ({"model": "tiny", "messages": [{"role": "user", "content": "   "}]}, openai.BadRequestError, "messages", None),
    ({"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     openai.BadRequestError, "messages[0].content", "unsupported_parameter"),
    ({"model": "tiny", "messages": [{"role": "user", "content": "word " * 200}]}, openai.BadRequestError,
     "messages", "context_length_exceeded"),
]


@pytest.mark.parametrize(("body", "kind", "param", "code"), BAD, ids=[str(i) for i in range(len(BAD))])
@pytest.mark.parametrize("stream", [False, True])
def test_bad_chat_requests_get_openai_errors(client, body, kind, param, code, stream):
    with pytest.raises(kind) as caught:
        client.chat.completions.create(**body, stream=stream)
    error = caught.value
    assert error.param == param and error.code == code
    assert error.body["message"] and error.body["type"] == "invalid_request_error"


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"prompt": "word " * 200}, "prompt", "context_length_exceeded"),
    ({"prompt": ["one", "two"]}, "prompt", "unsupported_parameter"),
    ({"prompt": [1, 2, 3]}, "prompt", "unsupported_parameter"),
    ({"prompt": "hi", "echo": True}, "echo", "unsupported_parameter"),
    ({"prompt": "hi", "logprobs": 6}, "logprobs", None),
])
def test_bad_completion_requests_get_openai_errors(client, body, param, code):
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="tiny", **body)
    assert caught.value.param == param and caught.value.code == code


def test_malformed_bodies_and_unknown_paths_are_openai_shaped(server):
    bad_json = httpx.post(f"{server.url}/chat/completions", content=b"{nope",
                          headers={"content-type": "application/json"})
    missing = httpx.post(f"{server.url}/chat/completions", json={"messages": HI})
    nowhere = httpx.get(f"{server.url}/engines")
    for response, status in ((bad_json, 400), (missing, 400), (nowhere, 404)):
        assert response.status_code == status
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert missing.json()["error"]["param"] == "model"


def test_a_wrong_or_missing_key_is_refused(preset):
    with serving(preset, api_key="s3cret") as running:
        intruder = openai.OpenAI(base_url=running.url, api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            intruder.chat.completions.create(model="tiny", messages=HI, max_tokens=2)
        assert caught.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            intruder.models.list()
        anonymous = httpx.post(f"{running.url}/chat/completions", json={"model": "tiny", "messages": HI})
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
        assert not running.service.finished  # nothing ran for them
        friend = openai.OpenAI(base_url=running.url, api_key="s3cret", max_retries=0)
        assert friend.chat.completions.create(model="tiny", messages=HI, max_tokens=2).choices[0].finish_reason
        assert sum(running.service.finished.values()) == 1


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("[::1]", True), ("127.0.0.2", True), ("0.0.0.0", False),
                                                ("::", False), ("192.168.1.5", False), ("example.com", False)])
def test_only_loopback_binds_without_a_key(host, loopback):
    assert is_loopback(host) == loopback
    check_bind(host, "key", insecure=False)
    check_bind(host, None, insecure=True)
    if loopback:
        check_bind(host, None, insecure=False)
    else:
        with pytest.raises(EnsembleError, match="--api-key"):
            check_bind(host, None, insecure=False)


def test_serve_refuses_an_open_public_bind_before_loading(preset, monkeypatch, capsys):
    monkeypatch.delenv("ENSEMBLE_API_KEY", raising=False)
    monkeypatch.setattr("ensemble.models.pool.ModelPool.load", lambda *a, **k: pytest.fail("loaded models"))
    assert cli.main(["serve", "--preset", str(preset), "--host", "0.0.0.0"]) == 2
    assert "without an API key" in capsys.readouterr().err
