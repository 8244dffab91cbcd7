"""The FastAPI app: /v1/models, /v1/chat/completions, /v1/completions (SSE or whole), /health.

Every error is OpenAI's shape: unknown model 404, bad or unsupported parameters and over-long prompts 400,
a missing or wrong key 401, a full line 429, no slot in time 503.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from .answer import DONE, Answer
from .errors import ApiError, server_error
from .gate import QueueFull
from .schemas import ChatRequest, CompletionRequest, Sampling
from .service import Job, Service
from .shapes import Shape

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def create_app(service: Service, api_key: str | None = None) -> FastAPI:
    app = FastAPI(title="Ensemble Chat", docs_url=None, redoc_url=None, openapi_url=None)
    add_error_handlers(app)
    guard = [Depends(key_check(api_key))]

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", **service.gate.state(), "finished": dict(service.finished)}

    @app.get("/v1/models", dependencies=guard)
    def models() -> dict:
        return service.cards().model_dump()

    @app.get("/v1/models/{model}", dependencies=guard)
    def model(model: str) -> dict:
        return service.card(service.target(model)).model_dump()

    @app.post("/v1/chat/completions", dependencies=guard)
    async def chat(body: ChatRequest, request: Request):
        job = await run_in_threadpool(service.chat_job, body)
        return await respond(service, job, shape(body, job, chat=True), body.stream, request)

    @app.post("/v1/completions", dependencies=guard)
    async def completions(body: CompletionRequest, request: Request):
        job = await run_in_threadpool(service.completion_job, body)
        return await respond(service, job, shape(body, job, chat=False), body.stream, request)

    return app


def shape(body: Sampling, job: Job, chat: bool) -> Shape:
    usage = bool(body.stream_options and body.stream_options.include_usage)
    return Shape(chat, job.target.id, job.target.names, job.top_logprobs, usage)


async def respond(service: Service, job: Job, shape: Shape, stream: bool, request: Request):
    try:
        ticket = service.gate.admit()
    except QueueFull as e:
        raise ApiError(429, str(e), type="requests", code="rate_limit_exceeded") from None
    answer = Answer(job, ticket, service.record).start()
    first = await answer.next(request)  # waits in line; an error before the first token keeps its status
    if isinstance(first, ApiError):
        raise first
    if first is DONE:  # the client left while waiting
        return JSONResponse({}, status_code=499)
    if stream:
        return StreamingResponse(events(answer, shape, first), media_type="text/event-stream", headers=SSE_HEADERS)
    deltas = [first]
    while (item := await answer.next(request)) is not DONE:
        if isinstance(item, ApiError):
            raise item
        deltas.append(item)
    return JSONResponse(shape.response(deltas))


async def events(answer: Answer, shape: Shape, item) -> AsyncIterator[str]:
    """Server-sent events. When the client disconnects, Starlette cancels this generator; `finally` then
    stops the answer, and the engine frees its caches."""
    try:
        while item is not DONE:
            if isinstance(item, ApiError):
                yield sse(item.body())
                break
            for chunk in shape.chunks(item):
                yield sse(chunk)
            item = await answer.next()
        yield "data: [DONE]\n\n"
    finally:
        answer.stop()


def sse(payload: dict) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def key_check(api_key: str | None):
    async def check(authorization: str | None = Header(None)) -> None:
        if api_key is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
            raise ApiError(401, "Incorrect or missing API key: send it as the header `Authorization: Bearer KEY`",
                           code="invalid_api_key")

    return check


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return JSONResponse(validation_error(e.errors()).body(), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        error = ApiError(e.status_code, str(e.detail), code="not_found" if e.status_code == 404 else None)
        return JSONResponse(error.body(), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def crashed(request: Request, e: Exception):
        return JSONResponse(server_error(f"{type(e).__name__}: {e}").body(), status_code=500)


def validation_error(errors: list[dict]) -> ApiError:
    """pydantic's errors -> one 400 naming the first bad field (every reason given for it: a union field has
    one per alternative)."""
    if not errors:
        return ApiError(400, "invalid request")
    if errors[0].get("type") == "json_invalid":
        return ApiError(400, f"the body is not valid JSON: {errors[0].get('msg')}")
    paths = [[str(part) for part in error.get("loc", ()) if part != "body"] for error in errors]
    param = paths[0][0] if paths[0] else None
    reasons = [f"{'.'.join(path)}: {error['msg']}" for path, error in zip(paths, errors, strict=True)
               if (path[0] if path else None) == param]
    return ApiError(400, "; ".join(dict.fromkeys(reasons)), param=param)
