"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with the HTTP status."""

from __future__ import annotations

from .schemas import ErrorBody, ErrorDetail


class ApiError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status = status
        self.detail = ErrorDetail(message=message, type=type, param=param, code=code)

    def body(self) -> dict:
        return ErrorBody(error=self.detail).model_dump()


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def unsupported(param: str, what: str) -> ApiError:
    return ApiError(400, f"{param}: {what} is not supported by this server", param=param, code="unsupported_parameter")


def server_error(message: str) -> ApiError:
    return ApiError(500, message, type="server_error", code="server_error")
