"""TenantAccounts, the queue's tenant part, on a real local storage directory and a recording limiter (no Ray)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from deployments.contract import PlacementArgs
from serve_app.errors import RateLimited
from serve_app.jobs.fairshare import FairShareOrder
from serve_app.schemas import JobRecord, Usage
from serve_app.settings import TenantLimits, TenantsArgs
from serve_app.storage.backends import LocalStorage
from serve_app.tenants.accounting import TenantAccounts, tenant_of
from serve_app.tenants.ledger import Ledger, LedgerEntry

TENANTS = TenantsArgs(overrides={"acme": TenantLimits(max_queued=1)}, gpu_hour_price={"A100": 3.6})
A100 = PlacementArgs(num_gpus=1, accelerator_type="A100")


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path, "http://127.0.0.1:1", b"k")


def job(job_id: str = "m-1", owner: str | None = "acme") -> JobRecord:
    return JobRecord(job_id=job_id, model="m", params={}, output_key="k", owner=owner, tenant=owner)


def test_the_tenant_of_a_job_and_of_one_from_before_tenants() -> None:
    assert tenant_of(job()) == "acme"
    assert tenant_of(job(owner=None)) == "default" and tenant_of(None) == "default"


def test_max_queued_is_checked_against_the_dispatch_order() -> None:
    accounts = TenantAccounts("m", TENANTS, A100, None, retry_after_s=7)  # type: ignore[arg-type]
    order = FairShareOrder(TENANTS, "m")
    accounts.check_submit("acme", order)
    order.push("m-1", "acme")
    with pytest.raises(RateLimited) as refused:
        accounts.check_submit("acme", order)
    assert (refused.value.limit, refused.value.value, refused.value.retry_after_s) == ("max_queued", 1, 7)
    accounts.check_submit("acme", order, admin=True)  # admin keys are exempt
    accounts.check_submit("beta", order)


def test_a_crashed_attempt_counts_in_gpu_s_and_the_job_is_billed_once(storage: LocalStorage) -> None:
    charged: list[LedgerEntry] = []

    async def charge(entry: LedgerEntry) -> None:
        charged.append(entry)

    accounts = TenantAccounts("m", TENANTS, A100, storage, charge)
    record = job()
    record.attempts = 1
    accounts.run_started(record)
    record.runs[0].started_at -= timedelta(seconds=10)  # it ran 10 s, then its replica died
    record.heartbeat_at = record.runs[0].started_at + timedelta(seconds=8)  # last heard from at 8 s
    assert accounts.run_ended(record, produced_result=False) == pytest.approx(8)
    record.attempts = 2
    accounts.run_started(record)
    record.runs[1].started_at -= timedelta(seconds=20)
    assert accounts.run_ended(record, produced_result=True) == pytest.approx(20, abs=0.5)
    record.status, record.completed_at = "completed", record.runs[1].ended_at
    accounts.close(record)
    assert record.usage is not None
    assert record.usage.gpu_s == pytest.approx(28, abs=0.5) and record.usage.billable_gpu_s == pytest.approx(
        20, abs=0.5
    )
    assert record.usage.cost == pytest.approx(0.02, abs=0.001)  # 20 s at 3.6 an hour
    asyncio.run(accounts.bill(record))
    asyncio.run(accounts.bill(record))  # the queue restarted before the terminal record was written
    day = record.created_at.date()
    entries = Ledger(storage).entries(day, day)
    assert [e.job_id for e in entries] == ["m-1"] and entries[0].usage == record.usage
    assert [e.job_id for e in charged] == ["m-1"]  # billed once by this replica (a restarted one: the limiter
    # counts each job id once)


def test_a_chains_usage_is_its_stages_and_its_stages_are_not_billed_alone(storage: LocalStorage) -> None:
    accounts = TenantAccounts("chain", TENANTS, PlacementArgs(), storage, chain=True)
    stages = Usage(queued_s=5, run_s=30, gpu_s=40, billable_gpu_s=30, accelerator="A100+rtx4090", attempts=3, cost=1)
    chain = job("chain-1")
    chain.status, chain.completed_at = "completed", chain.created_at + timedelta(seconds=50)
    accounts.close(chain, stages)
    assert chain.usage == stages.model_copy(update={"queued_s": 50})  # never ran itself: its wait is all of it
    stage = job("m-2", owner=None)
    stage.tenant, stage.status, stage.usage = "acme", "completed", Usage(gpu_s=40)
    asyncio.run(accounts.bill(stage))
    asyncio.run(accounts.bill(chain))
    day = chain.created_at.date()
    assert [e.job_id for e in Ledger(storage).entries(day, day)] == ["chain-1"]


def test_the_shares_survive_in_storage(storage: LocalStorage) -> None:
    first = TenantAccounts("m", TENANTS, A100, storage)
    assert asyncio.run(first.load_shares()) == {}
    asyncio.run(first.save_shares({"acme": 12.5, "beta": 3.0}))
    assert asyncio.run(TenantAccounts("m", TENANTS, A100, storage).load_shares()) == {"acme": 12.5, "beta": 3.0}
