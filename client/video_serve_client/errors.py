"""Typed errors: one class per kind of API answer, each carrying the API's code, message and field list."""

from __future__ import annotations

from typing import Any


class VideoServeError(Exception):
    """Base of every error this client raises."""


class APIError(VideoServeError):
    """An error answer of the API: `{"error": {"code", "message", "fields"}}`."""

    def __init__(self, status_code: int, code: str, message: str, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code, self.code, self.message = status_code, code, message
        self.fields = fields or []


class AuthenticationError(APIError):
    """401: no key, or a key the server does not know."""


class NotFoundError(APIError):
    """404: no such job, or a job of another key."""


class ConflictError(APIError):
    """409: an Idempotency-Key reused with another body, or a download of a job without a video."""


class InvalidRequestError(APIError):
    """422: bad input; `fields` names each field at fault."""


class RateLimitError(APIError):
    """429: the model's backlog is full (raised once retries are spent)."""


class UnavailableError(APIError):
    """503: a queue restarting or storage unreachable (raised once retries are spent)."""


class JobFailedError(VideoServeError):
    """A job ended failed or cancelled; `job` is its final view."""

    def __init__(self, job: dict[str, Any]) -> None:
        reason = job.get("error_message") or job["status"]
        super().__init__(f"job {job['job_id']} {job['status']}: {reason}")
        self.job = job


class WaitTimeout(VideoServeError):
    """The job did not end within the time given to wait."""


ERRORS_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
    429: RateLimitError,
    503: UnavailableError,
}


def error_from(status_code: int, body: Any) -> APIError:
    """The typed error of an error answer (any body shape; the API's envelope when it has one)."""
    error = body.get("error", {}) if isinstance(body, dict) else {}
    cls = ERRORS_BY_STATUS.get(status_code, APIError)
    return cls(status_code, error.get("code", "http_error"), error.get("message", str(body)[:300]), error.get("fields"))
