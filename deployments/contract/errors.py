"""The errors a model may raise, and the base of the whole app's error hierarchy (the spine extends it)."""

from __future__ import annotations

import re

MAX_MESSAGE_CHARS = 500
# what must never reach a caller: terminal colour codes, Ray's actor reprs and ids, addresses, server paths
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_RAY_IDS = re.compile(r"\bray::\S+|\b(?:pid|ip|node_id|node_ip|actor_id|worker_id|job_id_hex)=\S+", re.IGNORECASE)
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
_IPV6 = re.compile(
    r"\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){3,7}\b"  # full form
    r"|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{1,4})*::[0-9A-Fa-f:]*"  # with `::`
)
_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+[\w.@+-]*")


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


class InvalidMedia(JobFailed):
    """An input file a run cannot use (changed since staging, or past a check): final, never retried.

    `code` is `invalid_<kind>` (invalid_image, invalid_video, invalid_audio); the message is written for the
    caller and names the input, never a server path or a library's repr."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, code=f"invalid_{kind}")
        self.kind = kind


class InputTooLarge(InvalidInput):
    """An upload body over the size limit: 413, and nothing is stored."""

    status_code = 413
    code = "payload_too_large"


def caller_safe(message: str) -> str:
    """`message` with what only the server may see taken out (colour codes, `ray::` reprs, `pid=`/`ip=` fields,
    IP addresses, absolute paths) and cut to MAX_MESSAGE_CHARS: for job records, webhooks and events."""
    text = _ANSI.sub("", message)
    text = _RAY_IDS.sub("[hidden]", text)
    text = _IPV4.sub("[address]", text)
    text = _IPV6.sub("[address]", text)
    text = _PATH.sub("[path]", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."
