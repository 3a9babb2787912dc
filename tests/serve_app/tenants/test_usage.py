"""Usage from a job's runs, and a chain's usage from its stages (no Ray)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deployments.contract import PlacementArgs
from serve_app.schemas import JobRecord, Usage
from serve_app.settings import TenantsArgs
from serve_app.tenants.usage import accelerator_of, chain_usage, run_ended, run_started, usage_of

T0 = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
PRICES = TenantsArgs(gpu_hour_price={"A100": 1.8, "rtx4090": 0.36})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record() -> JobRecord:
    return JobRecord(job_id="m-1", model="m", params={}, output_key="jobs/m-1/output.mp4", created_at=T0)


@pytest.mark.parametrize(
    ("placement", "expected"),
    [
        (PlacementArgs(num_gpus=1, accelerator_type="A100"), ("A100", 1)),
        (PlacementArgs(num_gpus=1, resources={"rtx4090": 1}), ("rtx4090", 1)),
        (PlacementArgs(num_gpus=2), ("gpu", 2)),
        (PlacementArgs(num_gpus=0.5, accelerator_type="A100"), ("A100", 0.5)),
        (PlacementArgs(), ("cpu", 1)),
    ],
)
def test_the_accelerator_and_devices_of_a_replica(placement: PlacementArgs, expected: tuple[str, float]) -> None:
    assert accelerator_of(placement) == expected


def test_a_crashed_attempt_is_in_gpu_s_but_not_billable() -> None:
    job = record()
    job.attempts = 1
    run_started(job, at(5), "A100", 2)
    run_started(job, at(6), "A100", 2)  # a second report of the same attempt changes nothing
    run_ended(job, at(15), produced_result=False)  # the replica died 10 s in
    job.attempts = 2
    run_started(job, at(20), "A100", 2)
    run_ended(job, at(50), produced_result=True)
    job.status, job.completed_at = "completed", at(51)
    usage = usage_of(job, PRICES.price_per_gpu_hour)
    assert usage == Usage(queued_s=5, run_s=40, gpu_s=80, billable_gpu_s=60, accelerator="A100", attempts=2, cost=0.03)


def test_a_job_cancelled_before_it_ran_used_nothing_but_its_wait() -> None:
    job = record()
    job.status, job.completed_at = "cancelled", at(7)
    assert usage_of(job, PRICES.price_per_gpu_hour) == Usage(queued_s=7)


def test_a_run_still_going_counts_up_to_now() -> None:
    job = record()
    job.attempts = 1
    run_started(job, at(1), "cpu", 1)
    usage = usage_of(job, PRICES.price_per_gpu_hour, now=at(4))
    assert (usage.run_s, usage.gpu_s, usage.billable_gpu_s, usage.cost) == (3, 3, 0, 0)


def test_a_chains_usage_is_the_sum_of_its_stages() -> None:
    first = Usage(queued_s=9, run_s=30, gpu_s=40, billable_gpu_s=30, accelerator="A100", attempts=2, cost=0.015)
    second = Usage(queued_s=3, run_s=10, gpu_s=10, billable_gpu_s=10, accelerator="rtx4090", attempts=1, cost=0.001)
    assert chain_usage(2, [first, second]) == Usage(
        queued_s=2, run_s=40, gpu_s=50, billable_gpu_s=40, accelerator="A100+rtx4090", attempts=3, cost=0.016
    )
    assert chain_usage(1, []) == Usage(queued_s=1)
