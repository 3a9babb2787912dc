"""The errors a model may raise, and the base of the whole app's error hierarchy (the spine extends it)."""

from __future__ import annotations


class VideoServeError(Exception):
    """Base of every error this project raises on purpose; `status_code` is its HTTP answer."""

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


class JobCancelled(Exception):
    """Raised inside a model run when the job's cancel flag is seen."""


class JobFailed(VideoServeError):
    """A model run failed for a reason that a retry cannot fix (bad media, a face that is required)."""

    code = "job_failed"

    def __init__(self, message: str, code: str = "job_failed") -> None:
        super().__init__(message)
        self.code = code
