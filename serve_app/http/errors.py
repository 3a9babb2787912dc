"""The one place the error hierarchy becomes HTTP: `{"error": {"code", "message", ...}}` for every error, with the
fields at fault listed on a 422."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from serve_app import metrics
from serve_app.errors import InvalidInput, QueueFull, RateLimited, VideoServeError
from serve_app.tenants.limits import Quota

logger = logging.getLogger("serve_app.http.errors")


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    """The one error envelope: `{"error": {"code", "message", ...}}`."""
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def field_of(error: dict, model_names: frozenset[str]) -> str:
    """Dotted field path of a validation error, without `body` and the `model` discriminator tag."""
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return "model"
    if error["type"] == "json_invalid":
        return "body"
    loc = [str(p) for p in error["loc"][1:]]
    if loc and loc[0] in model_names:
        loc = loc[1:]
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if not loc and error["type"] == "value_error" and ": " in message:
        return message.split(": ", 1)[0]  # cross-field rules name their field first (plugin.exactly_one)
    return ".".join(loc) or "body"


def add_error_handlers(app: FastAPI, model_names: frozenset[str]) -> None:
    """Every error leaves as the one envelope; 422s list each field at fault."""

    @app.exception_handler(VideoServeError)
    async def on_app_error(request: Request, exc: VideoServeError) -> JSONResponse:
        extra: dict[str, Any] = {}
        if isinstance(exc, InvalidInput):
            extra["fields"] = [{"field": exc.field, "message": exc.message}]
            metrics.input_rejected(exc.field, "input_check")
        if isinstance(exc, RateLimited):
            extra.update(exc.body())
        response = error_response(exc.status_code, exc.code, exc.message, **extra)
        if isinstance(exc, (QueueFull, RateLimited)):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        if isinstance(exc, RateLimited) and exc.limit == "submissions_per_minute":
            response.headers.update(Quota(int(exc.value), 0, exc.retry_after_s).headers())
        return response

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        fields = [
            {"field": field_of(e, model_names), "message": str(e["msg"]).removeprefix("Value error, ")} for e in errors
        ]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        metrics.input_rejected(fields[0]["field"], errors[0]["type"])  # one count per request, by its first error
        return error_response(422, "invalid_request", summary, fields=fields)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; the request id is in the server log")
