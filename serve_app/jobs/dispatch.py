"""The dispatch order: which waiting job of a model goes to its GPUs next. A policy owns the waiting jobs and what
it weighs; the queue tells it when a job starts running and when a run ends, so it may weigh what each tenant
already used. The queue's policy is `fairshare.FairShareOrder` (weighted fair share of GPU time by tenant)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class DispatchOrder(Protocol):
    """What the queue needs of a policy. Every call is cheap and synchronous (the queue's event loop calls it)."""

    def push(self, job_id: str, tenant: str) -> None:
        """A job is ready to run: a new one, or a queued one recovered after a restart."""

    def discard(self, job_id: str) -> bool:
        """Forget a waiting job (cancelled); False when it was not waiting."""

    def pop(self) -> str | None:
        """The job to dispatch now, taken out of the order; None when no waiting job may run yet."""

    def started(self, job_id: str, tenant: str) -> None:
        """A popped job was sent to the model."""

    def ended(self, job_id: str, tenant: str, gpu_s: float) -> None:
        """A dispatched job's run is over (any outcome), having used `gpu_s` GPU-seconds."""

    def waiting(self) -> Iterator[str]:
        """The waiting jobs in the order they would be dispatched now."""

    def __contains__(self, job_id: object) -> bool: ...

    def __len__(self) -> int: ...
