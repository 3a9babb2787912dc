"""One error hierarchy for the whole app; `gateway.py` maps it to HTTP in one place."""

from __future__ import annotations


class VideoServeError(Exception):
    """Base of every error this project raises on purpose."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple:
        # Errors cross Ray processes (queue -> gateway); subclasses take other arguments than `args`.
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[VideoServeError], state: dict) -> VideoServeError:
    error = cls.__new__(cls)
    Exception.__init__(error, state["message"])
    error.__dict__.update(state)
    return error


class InvalidInput(VideoServeError):
    """A request field breaks a rule; the message names the field, the value and the rule."""

    status_code = 422
    code = "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Unauthorized(VideoServeError):
    status_code = 401
    code = "unauthorized"


class JobNotFound(VideoServeError):
    status_code = 404
    code = "job_not_found"


class NotFound(VideoServeError):
    status_code = 404
    code = "not_found"


class IdempotencyConflict(VideoServeError):
    """The same Idempotency-Key was sent with a different body."""

    status_code = 409
    code = "idempotency_key_reused"


class QueueFull(VideoServeError):
    """The model's backlog is at its limit; the client should retry later."""

    status_code = 429
    code = "queue_full"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StorageError(VideoServeError):
    status_code = 503
    code = "storage_unavailable"


class JobCancelled(Exception):
    """Raised inside a model run when the job's cancel flag is seen."""


class JobFailed(VideoServeError):
    """A model run failed for a reason that a retry cannot fix (bad media, a face that is required)."""

    code = "job_failed"

    def __init__(self, message: str, code: str = "job_failed") -> None:
        super().__init__(message)
        self.code = code


class JobNotReady(VideoServeError):
    """The job has no result (yet, or ever)."""

    status_code = 409
    code = "job_not_ready"


class Unavailable(VideoServeError):
    """A queue or the storage cannot answer right now (a replica restarting); safe to retry."""

    status_code = 503
    code = "unavailable"
