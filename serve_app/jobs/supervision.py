"""Run supervision: which running jobs went silent. One rule for every run, dispatched or adopted after a restart:
a run is lost once its last sign of life is older than the heartbeat timeout. A dispatched run's first sign of life
is its first report (it may wait at the handle for a replica to start); an adopted run's is its adoption."""

from __future__ import annotations

import time
from collections.abc import Callable


class RunSupervisor:
    """The last sign of life of each supervised run, on a monotonic clock (injected in tests)."""

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout_s = timeout_s
        self._clock = clock
        self._alive_at: dict[str, float | None] = {}  # job -> last sign of life; None: dispatched, no report yet
        self._adopted: set[str] = set()

    def dispatched(self, job_id: str) -> None:
        """A new attempt was sent to the model: it is timed from its first report."""
        self._alive_at[job_id] = None
        self._adopted.discard(job_id)

    def adopted(self, job_id: str) -> None:
        """A run from before a queue restart: it has one timeout from now to report or to leave its result."""
        self._alive_at[job_id] = self._clock()
        self._adopted.add(job_id)

    def beat(self, job_id: str) -> None:
        """The run reported (progress or heartbeat)."""
        self._alive_at[job_id] = self._clock()

    def forget(self, job_id: str) -> None:
        """The run is over, or is being run again."""
        self._alive_at.pop(job_id, None)
        self._adopted.discard(job_id)

    def lost(self, job_id: str) -> bool:
        """True when the run's last sign of life is older than the timeout (never before its first one)."""
        alive_at = self._alive_at.get(job_id)
        return alive_at is not None and self._clock() - alive_at > self._timeout_s

    def is_adopted(self, job_id: str) -> bool:
        return job_id in self._adopted

    def adopted_ids(self) -> list[str]:
        """The adopted runs still supervised, in adoption order."""
        return [job_id for job_id in self._alive_at if job_id in self._adopted]
