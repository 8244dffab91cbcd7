"""MemberSpec with `model: http://HOST:PORT` -> RemoteModel: ask the server what it is, load the tokenizer here.

The server kind comes from GET /v1/models (`owned_by`), else from probing llama.cpp's /props and SGLang's
/get_model_info, else it is taken for an OpenAI-compatible server with token-id prompts (vLLM). The tokenizer
is the member's `tokenizer` (Hub id, folder, .gguf, offline:NAME), else the model id the server reports; it
must be the served model's own, since this process writes the ids the server reads.
"""

from __future__ import annotations

import httpx

from ..align.vocab import build_byte_vocab
from ..config import MemberSpec
from ..decode.prompting import Continuation
from ..decode.remote import RemoteModel, ServerClient
from ..decode.servers import DIALECTS, ReplyError, dialect_of, served_facts
from ..errors import LoadError
from .hub import translate
from .locate import locate

DEFAULT_CONTEXT = 4096  # when the server does not say
PROBE = "Hello world! The answer is 42, not 41."  # tokenized here and by the server: the tokenizers must agree


def server_base(model: str) -> str:
    """http://host:port[/v1][/] -> http://host:port (vLLM's documented base URL ends in /v1)."""
    base = model.strip().rstrip("/")
    return base.removesuffix("/v1")


def load_remote(spec: MemberSpec) -> RemoteModel:
    base = server_base(spec.model)
    with httpx.Client(timeout=httpx.Timeout(spec.timeout)) as http:
        models = _get_json(http, base, "/v1/models", spec)
        if models is None:
            raise LoadError(f"{spec.name}: {base}/v1/models does not answer with JSON; is an inference server "
                            "(llama.cpp, vLLM, SGLang) running there?")
        kind = dialect_of(models) or _probe(http, base, spec)
        try:
            served, context = served_facts(models)
        except ReplyError as e:
            raise LoadError(f"{spec.name}: {e}") from None
        if kind == "llamacpp":  # the slot's context (-c), smaller than the training context /v1/models gives
            props = _get_json(http, base, "/props", spec) or {}
            slot = props.get("default_generation_settings") or {}
            context = slot.get("n_ctx") or props.get("n_ctx") or context
        source = spec.tokenizer or served
        tokenizer, ends = load_tokenizer(source, spec)
        check_tokenizer(http, base, kind, served, tokenizer, spec, source)
    vocab = build_byte_vocab(tokenizer, 0, ends)
    client = ServerClient(base, DIALECTS[kind], served, spec.timeout)
    return RemoteModel(spec, tokenizer, vocab, Continuation(tokenizer, vocab), int(context) or DEFAULT_CONTEXT, client)


def _get_json(http: httpx.Client, base: str, path: str, spec: MemberSpec):
    try:
        reply = http.get(base + path)
    except httpx.HTTPError as e:
        raise LoadError(f"{spec.name}: cannot reach {base} ({type(e).__name__}: {e})") from None
    if reply.status_code != 200:
        return None
    try:
        return reply.json()
    except ValueError:
        return None


def _probe(http: httpx.Client, base: str, spec: MemberSpec) -> str:
    if _get_json(http, base, "/props", spec) is not None:
        return "llamacpp"
    if _get_json(http, base, "/get_model_info", spec) is not None:
        return "sglang"
    return "vllm"


def check_tokenizer(http: httpx.Client, base: str, kind: str, served: str, tokenizer, spec: MemberSpec,
                    source: str) -> None:
    """Compare ids for PROBE with the server's own /tokenize (llama.cpp, vLLM); a server without it is not
    checked. A mismatch means this process would write ids the served model reads as other text."""
    if kind == "llamacpp":
        request = {"content": PROBE, "add_special": False, "parse_special": False}
    elif kind == "vllm":
        request = {"model": served, "prompt": PROBE, "add_special_tokens": False}
    else:
        return
    try:
        reply = http.post(base + "/tokenize", json=request)
        theirs = reply.json().get("tokens") if reply.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return
    if not isinstance(theirs, list) or not all(isinstance(t, int) for t in theirs):
        return
    ours = list(tokenizer(PROBE, add_special_tokens=False)["input_ids"])
    if ours != theirs:
        raise LoadError(f"{spec.name}: tokenizer {source!r} is not the served model's: the server reads "
                        f"{PROBE!r} as {theirs[:6]}..., this tokenizer as {ours[:6]}...; set `tokenizer` to the "
                        "served model's own")


def load_tokenizer(source: str, spec: MemberSpec):
    """(fast tokenizer, end-of-turn ids from generation_config.json when the source has one)."""
    from transformers import AutoTokenizer, GenerationConfig

    try:
        where, extra = locate(source)
    except LoadError as e:
        raise LoadError(f"{spec.name}: tokenizer {source!r}: {e}; set the member's `tokenizer` to the served "
                        "model's Hub id, folder, .gguf or offline:NAME") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=spec.trust_remote_code, **extra)
    except Exception as e:
        raise translate(e, source) from e
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise LoadError(f"{spec.name}: needs a fast (Rust) tokenizer; {source} gives {type(tokenizer).__name__}")
    try:
        ends = GenerationConfig.from_pretrained(where, **extra).eos_token_id
    except Exception:  # no generation_config.json: the tokenizer's own EOS only
        ends = None
    return tokenizer, [ends] if isinstance(ends, int) else list(ends or [])
