"""The spine's errors, on the contract's base (`deployments.contract.errors`); `serve_app/http/errors.py` maps
the whole hierarchy to HTTP in one place."""

from __future__ import annotations

from deployments.contract.errors import InvalidInput, JobCancelled, JobFailed, VideoServeError

__all__ = [
    "BudgetExhausted",
    "IdempotencyConflict",
    "InvalidInput",
    "JobCancelled",
    "JobFailed",
    "JobNotFound",
    "JobNotReady",
    "NotFound",
    "QueueFull",
    "RateLimited",
    "StorageError",
    "Unauthorized",
    "Unavailable",
    "VideoServeError",
]


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


class RateLimited(VideoServeError):
    """A tenant limit refuses the request: `limit` names it (max_queued, max_running, submissions_per_minute),
    `value` is its configured value; the client may retry after `retry_after_s`."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, limit: str, value: float, retry_after_s: int) -> None:
        super().__init__(message)
        self.limit, self.value, self.retry_after_s = limit, value, max(retry_after_s, 1)

    def body(self) -> dict[str, object]:
        """The error envelope's fields beyond code and message."""
        return {"limit": self.limit, "value": self.value, "retry_after_s": self.retry_after_s}


class BudgetExhausted(RateLimited):
    """The tenant used its daily GPU budget; new jobs are refused until the next UTC day."""

    code = "budget_exhausted"

    def __init__(self, message: str, value: float, used: float, retry_after_s: int) -> None:
        super().__init__(message, "daily_gpu_seconds", value, retry_after_s)
        self.used = used

    def body(self) -> dict[str, object]:
        return {**super().body(), "used": self.used}


class StorageError(VideoServeError):
    status_code = 503
    code = "storage_unavailable"


class JobNotReady(VideoServeError):
    """The job has no result (yet, or ever)."""

    status_code = 409
    code = "job_not_ready"


class Unavailable(VideoServeError):
    """A queue or the storage cannot answer right now (a replica restarting); safe to retry."""

    status_code = 503
    code = "unavailable"
