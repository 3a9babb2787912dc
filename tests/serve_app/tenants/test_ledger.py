"""The usage ledger on a real local storage directory: written once per job, summed per day, model, tenant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from serve_app.errors import InvalidInput
from serve_app.schemas import Caller, JobRecord, Usage
from serve_app.storage.backends import LocalStorage
from serve_app.tenants.ledger import Ledger, LedgerEntry, entry_of, report_days

DAY = date(2026, 3, 14)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(LocalStorage(tmp_path, "http://127.0.0.1:1", b"k"))


def entry(job_id: str, tenant: str, model: str, day: date, gpu_s: float, status: str = "completed") -> LedgerEntry:
    created = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=23, minutes=59)
    usage = Usage(
        queued_s=1,
        run_s=gpu_s,
        gpu_s=gpu_s,
        billable_gpu_s=gpu_s,
        accelerator="A100",
        attempts=1,
        cost=round(gpu_s / 3600, 6),
    )
    return LedgerEntry(
        job_id=job_id,
        model=model,
        tenant=tenant,
        status=status,
        created_at=created,
        completed_at=created + timedelta(minutes=5),
        usage=usage,
    )


def test_a_job_is_filed_under_its_submission_day_and_counted_once(ledger: Ledger) -> None:
    job = entry("m-1", "acme", "m", DAY, 10)
    assert job.key == "usage/2026-03-14/acme/m-1.json"  # it ended on the 15th: still the 14th
    ledger.write(job)
    ledger.write(job)  # a queue restart writes it again
    assert ledger.entries(DAY, DAY) == [job]


def test_reports_group_by_day_or_model_per_tenant(ledger: Ledger) -> None:
    jobs = [
        entry("a-1", "acme", "ltx2", DAY, 10),
        entry("a-2", "acme", "wav2lip", DAY, 5, status="failed"),
        entry("a-3", "acme", "ltx2", DAY + timedelta(days=1), 20),
        entry("b-1", "beta", "ltx2", DAY, 7),
        entry("a-0", "acme", "ltx2", DAY - timedelta(days=1), 99),  # outside the window
    ]
    for job in jobs:
        ledger.write(job)
    window = (DAY, DAY + timedelta(days=1))
    by_day = ledger.report(*window, "acme", "day")
    assert [(r.tenant, r.group, r.jobs, r.gpu_s) for r in by_day.rows] == [
        ("acme", "2026-03-14", {"completed": 1, "failed": 1}, 15),
        ("acme", "2026-03-15", {"completed": 1}, 20),
    ]
    assert (by_day.totals.jobs, by_day.totals.gpu_s, by_day.totals.run_s) == ({"completed": 2, "failed": 1}, 35, 35)
    assert by_day.totals.cost == pytest.approx(35 / 3600, abs=1e-6)
    everyone = ledger.report(*window, None, "model")
    assert [(r.tenant, r.group, r.gpu_s) for r in everyone.rows] == [
        ("acme", "ltx2", 30),
        ("acme", "wav2lip", 5),
        ("beta", "ltx2", 7),
    ]
    in_window = [j for j in jobs if j.job_id != "a-0"]
    assert everyone.totals.gpu_s == sum(j.usage.gpu_s for j in in_window)
    assert sum(everyone.totals.jobs.values()) == len(in_window)


def test_only_owned_ended_jobs_with_usage_have_an_entry() -> None:
    job = JobRecord(job_id="m-1", model="m", params={}, output_key="k", owner="acme", tenant="acme")
    assert entry_of(job) is None  # not ended
    job.status, job.usage = "completed", Usage(gpu_s=3)
    assert entry_of(job).tenant == "acme"
    stage = job.model_copy(update={"owner": None})
    assert entry_of(stage) is None, "a chain's stage counts in its chain's entry"
    unnamed = job.model_copy(update={"tenant": None})
    assert entry_of(unnamed).tenant == "default"


def test_report_days_default_and_are_checked() -> None:
    assert report_days(None, None, DAY) == (DAY - timedelta(days=29), DAY)
    assert report_days("2026-03-01", "2026-03-02", DAY) == (date(2026, 3, 1), date(2026, 3, 2))
    with pytest.raises(InvalidInput, match=r"start: .*after end"):
        report_days("2026-03-03", "2026-03-02", DAY)
    with pytest.raises(InvalidInput, match="end: 'yesterday' is not a day"):
        report_days(None, "yesterday", DAY)
    with pytest.raises(InvalidInput, match="366 days"):
        report_days("2024-01-01", "2026-01-01", DAY)


def test_a_caller_sees_its_own_tenant_and_an_admin_any(ledger: Ledger) -> None:
    for job in (entry("a-1", "acme", "m", DAY, 10), entry("b-1", "beta", "m", DAY, 7)):
        ledger.write(job)
    acme, admin = Caller("acme", tenant="acme"), Caller("ops", admin=True, tenant="ops")
    assert [r.tenant for r in ledger.report_for(acme, None, None, "day", None, DAY).rows] == ["acme"]
    assert [r.tenant for r in ledger.report_for(acme, None, None, "day", "acme", DAY).rows] == ["acme"]
    with pytest.raises(InvalidInput, match="tenant: only an admin"):
        ledger.report_for(acme, None, None, "day", "beta", DAY)
    assert [r.tenant for r in ledger.report_for(admin, None, None, "day", None, DAY).rows] == ["acme", "beta"]
    assert [r.tenant for r in ledger.report_for(admin, None, None, "day", "beta", DAY).rows] == ["beta"]
