"""How a run that returned no result ends, and what the caller reads of it.

An input error raised by a model (the contract's `JobFailed`, `InvalidInput`) is final: the job fails at once with
its code, since a retry cannot fix the input. Anything else is a lost run (a crash, a killed replica, a lost node,
out of memory, a lost heartbeat) and is retried up to `queue.max_attempts`. Callers read a short reason written
for them; the exception itself goes to the server log under the job id.
"""

from __future__ import annotations

import re

from ray.exceptions import ActorDiedError, NodeDiedError, OutOfMemoryError, RayActorError, RayTaskError

from serve_app.errors import InvalidInput, JobFailed, StorageError
from serve_app.schemas import JobError

# What must never reach a caller: terminal colour codes, Ray's actor and task reprs, process ids, addresses, paths.
_INSIDES = (
    (re.compile(r"\x1b\[[0-9;]*[A-Za-z]"), ""),
    (re.compile(r"ray::\S+"), "<task>"),
    (re.compile(r"\b(pid|ip|node_id|actor_id|worker_id)=\S+", re.IGNORECASE), ""),
    (re.compile(r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b"), "<address>"),
    (re.compile(r"(?<![\w:])(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{1,4}(?![\w:])", re.IGNORECASE), "<address>"),  # IPv6
    (re.compile(r"(?<![\w:])[0-9a-f:]*::[0-9a-f:]*(?![\w:])", re.IGNORECASE), "<address>"),  # IPv6, shortened
    (re.compile(r"(?<![\w.])/(?:[\w.@+-]+/)+[\w.@+-]*"), "<path>"),
)
MAX_MESSAGE = 500


class RunLost(Exception):
    """The replica running a job went silent: no report for `heartbeat_timeout_s` (frozen, hung or gone)."""


def caller_safe(message: str) -> str:
    """`message` without the server's insides (colour codes, Ray reprs, pids, addresses, paths), on one line."""
    for pattern, replacement in _INSIDES:
        message = pattern.sub(replacement, message)
    return " ".join(message.split())[:MAX_MESSAGE]


def final_error(exc: BaseException) -> JobError | None:
    """The job's error when `exc` (raised by a run) is an input error no retry can fix; None for a lost run."""
    cause = exc.cause if isinstance(exc, RayTaskError) else exc
    if isinstance(cause, JobFailed):
        return JobError(code=cause.code, message=caller_safe(cause.message))
    if isinstance(cause, InvalidInput):
        return JobError(code="invalid_input", message=caller_safe(cause.message))
    return None


def lost_run_reason(exc: BaseException) -> str:
    """Why a run was lost, in words for the caller."""
    cause = exc.cause if isinstance(exc, RayTaskError) else exc
    if isinstance(cause, StorageError):
        return "storage was unavailable to the replica (StorageError)"
    if isinstance(exc, RunLost):
        return "no heartbeat from its replica (frozen, hung or gone)"
    if isinstance(exc, OutOfMemoryError):
        return "its replica ran out of memory"
    if isinstance(exc, NodeDiedError):
        return "the node running it was lost"
    if isinstance(exc, ActorDiedError | RayActorError):
        return "its replica died"
    return "its replica crashed"
