"""A job's usage, from its runs: the queue notes when each attempt starts and ends (`run_started`, `run_ended`)
and, at the terminal state, `usage_of` turns the runs into the record's `usage`.

- `gpu_s`: each run's wall time x the GPUs of its replica, over every attempt (crashed ones are the operator's
  cost: they count here);
- `billable_gpu_s` and `cost`: only the run that produced the job's outcome (the caller's cost);
- a replica without a GPU counts as one device of type `cpu`, so the local profile measures the same way.
A chained job's usage is the sum of its stages' (`chain_usage`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from deployments.contract import PlacementArgs
from serve_app.schemas import JobRecord, RunTiming, Usage, utcnow

CPU = "cpu"


def accelerator_of(placement: PlacementArgs) -> tuple[str, float]:
    """(accelerator type, devices) of a model's replicas: `accelerator_type`, else the first custom resource
    (the RTX 4090 nodes advertise `rtx4090`), else `gpu`; (`cpu`, 1) for a replica without a GPU."""
    if placement.num_gpus <= 0:
        return CPU, 1.0
    if placement.accelerator_type:
        return placement.accelerator_type, placement.num_gpus
    return next(iter(placement.resources), "gpu"), placement.num_gpus


def run_started(record: JobRecord, at: datetime, accelerator: str, devices: float) -> None:
    """The current attempt's run began (its first report); a second call for the same attempt changes nothing."""
    if any(run.attempt == record.attempts for run in record.runs):
        return
    record.runs.append(RunTiming(attempt=record.attempts, started_at=at, devices=devices, accelerator=accelerator))


def run_ended(record: JobRecord, at: datetime, produced_result: bool) -> None:
    """The current attempt's run is over: it produced the job's outcome, or it crashed or was lost (then `at`
    is best the last time it was heard from)."""
    for run in record.runs:
        if run.attempt == record.attempts and run.ended_at is None:
            run.ended_at, run.produced_result = max(at, run.started_at), produced_result


def run_wall_s(run: RunTiming, now: datetime | None = None) -> float:
    """Wall time of one run (so far, for a run still going)."""
    end = run.ended_at or now or utcnow()
    return max((end - run.started_at).total_seconds(), 0.0)


def run_gpu_s(run: RunTiming, now: datetime | None = None) -> float:
    """GPU-seconds of one run: its wall time x the GPUs of its replica."""
    return run_wall_s(run, now) * run.devices


def usage_of(record: JobRecord, price_per_gpu_hour: Callable[[str], float], now: datetime | None = None) -> Usage:
    """The usage of one (non-chained) job from its runs; runs still open count up to `now`."""
    now = now or utcnow()
    first_start = min((run.started_at for run in record.runs), default=None)
    queued_until = first_start or record.completed_at or now
    billable = [run for run in record.runs if run.produced_result]
    accelerators = list(dict.fromkeys(run.accelerator for run in record.runs))
    return Usage(
        queued_s=_round(max((queued_until - record.created_at).total_seconds(), 0.0)),
        run_s=_round(sum(run_wall_s(run, now) for run in record.runs)),
        gpu_s=_round(sum(run_gpu_s(run, now) for run in record.runs)),
        billable_gpu_s=_round(sum(run_gpu_s(run, now) for run in billable)),
        accelerator="+".join(accelerators) or None,
        attempts=max(record.attempts, len(record.runs)),
        cost=round(sum(run_gpu_s(run, now) * price_per_gpu_hour(run.accelerator) for run in billable) / 3600, 6),
    )


def chain_usage(queued_s: float, stages: Iterable[Usage]) -> Usage:
    """A chained job's usage: its own wait for a start, and the sum of its stages' runs and costs."""
    stages = list(stages)
    accelerators = dict.fromkeys(a for s in stages if s.accelerator for a in s.accelerator.split("+"))
    return Usage(
        queued_s=_round(queued_s),
        run_s=_round(sum(s.run_s for s in stages)),
        gpu_s=_round(sum(s.gpu_s for s in stages)),
        billable_gpu_s=_round(sum(s.billable_gpu_s for s in stages)),
        accelerator="+".join(accelerators) or None,
        attempts=sum(s.attempts for s in stages),
        cost=round(sum(s.cost for s in stages), 6),
    )


def _round(seconds: float) -> float:
    return round(seconds, 3)
