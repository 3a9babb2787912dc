"""TenantLedger (the one-replica limiter deployment) outside Serve: its budget survives a restart through the
ledger on a real local storage directory."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from serve_app.errors import BudgetExhausted
from serve_app.schemas import Usage
from serve_app.settings import Secrets, SpineArgs, StorageArgs, TenantLimits, TenantsArgs
from serve_app.storage.backends import build_storage
from serve_app.tenants.ledger import Ledger, LedgerEntry
from serve_app.tenants.service import TenantLedger

NOON = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def started(args: SpineArgs) -> TenantLedger:
    """A TenantLedger constructed as Serve would (its constructor is async)."""
    service = object.__new__(TenantLedger)
    asyncio.run(TenantLedger.__init__(service, args, Secrets(), lambda: NOON.timestamp()))
    return service


def test_a_restarted_limiter_keeps_the_days_spending(tmp_path: Path) -> None:
    args = SpineArgs(
        storage=StorageArgs(local_dir=str(tmp_path)),
        tenants=TenantsArgs(defaults=TenantLimits(daily_gpu_seconds=60)),
    )
    spent = LedgerEntry(
        job_id="m-1",
        model="m",
        tenant="acme",
        status="completed",
        created_at=NOON,
        completed_at=NOON,
        usage=Usage(gpu_s=90, billable_gpu_s=61),
    )
    first = started(args)
    asyncio.run(first.admit("acme"))
    Ledger(build_storage(args.storage, Secrets())).write(spent)  # what the job's queue does, then it tells:
    asyncio.run(first.charge(spent))
    with pytest.raises(BudgetExhausted):
        asyncio.run(first.admit("acme"))
    again = started(args)  # the replica restarted: the ledger tells it what was spent
    assert asyncio.run(again.spent("acme")) == 61
    with pytest.raises(BudgetExhausted):
        asyncio.run(again.admit("acme"))
    asyncio.run(again.admit("beta"))
