"""How a run that returned no result ends, and what the caller reads of it.

An input error raised by a model (the contract's `JobFailed`, `InvalidInput`) is final: the job fails at once with
its code, since a retry cannot fix the input. Anything else is a lost run (a crash, a killed replica, a lost node,
out of memory, a lost heartbeat) and is retried up to `queue.max_attempts`. Callers read a short reason written
for them; the exception itself goes to the server log under the job id.
"""

from __future__ import annotations

from ray.exceptions import ActorDiedError, NodeDiedError, OutOfMemoryError, RayActorError, RayTaskError

from deployments.contract import caller_safe
from serve_app.errors import InvalidInput, JobFailed, StorageError
from serve_app.schemas import JobError


class RunLost(Exception):
    """The replica running a job went silent: no report for `heartbeat_timeout_s` (frozen, hung or gone)."""


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
