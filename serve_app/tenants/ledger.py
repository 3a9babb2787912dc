"""The usage ledger: one object per ended job, written by its queue at the terminal state, read by the usage API
and by the limiter when it restarts.

```
usage/{YYYY-MM-DD}/{tenant}/{job_id}.json    day = the UTC day the job was submitted
```
The key depends only on the job, so writing it again (a queue that restarts before it knew the write landed, a
retried write) replaces the same object: each job counts once. Jobs are filed under their submission day
because that never changes. A day's prefix holds every tenant (an admin's report), a day and tenant prefix one
tenant's (a caller's). A chain's stages have no entry of their own: their usage is in the chain's entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from serve_app.errors import InvalidInput, NotFound
from serve_app.schemas import Caller, JobRecord, JobStatus, Usage, UsageRow, UsageTotals, UsageView
from serve_app.storage.backends import Storage

LEDGER_PREFIX = "usage"
MAX_DAYS = 366  # a report reads every entry of its days: bound the work one request can ask for
DEFAULT_DAYS = 30
READ_THREADS = 16
GroupBy = Literal["day", "model"]


class LedgerEntry(BaseModel):
    """`usage/{day}/{tenant}/{job_id}.json`: what one ended job used, for whom."""

    job_id: str
    model: str
    tenant: str
    status: JobStatus
    created_at: datetime
    completed_at: datetime | None
    usage: Usage

    @property
    def day(self) -> date:
        return self.created_at.date()

    @property
    def key(self) -> str:
        return f"{LEDGER_PREFIX}/{self.day.isoformat()}/{self.tenant}/{self.job_id}.json"


def entry_of(record: JobRecord) -> LedgerEntry | None:
    """The ledger entry of an ended job; None for one that is not billed on its own (a chain's stage, which has
    no owner) or has no usage yet."""
    if not record.terminal or record.owner is None or record.usage is None:
        return None
    return LedgerEntry(
        job_id=record.job_id,
        model=record.model,
        tenant=record.tenant or "default",
        status=record.status,
        created_at=record.created_at,
        completed_at=record.completed_at,
        usage=record.usage,
    )


def report_days(start: str | None, end: str | None, today: date) -> tuple[date, date]:
    """The days a report covers: `start`..`end` (YYYY-MM-DD, both included), by default the last 30 days."""
    last = _parse_day("end", end) if end else today
    first = _parse_day("start", start) if start else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidInput("start", f"{first} is after end {last}")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput("start", f"{first}..{last} spans more than {MAX_DAYS} days; ask for less")
    return first, last


def _parse_day(field: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(field, f"{value[:40]!r} is not a day as YYYY-MM-DD") from None


class Ledger:
    """Writes and reads the ledger's entries. All calls block (boto3): run them in a thread."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def write(self, entry: LedgerEntry) -> None:
        """Write (or write again: the same key) one ended job's entry."""
        self._storage.put_bytes(entry.key, entry.model_dump_json().encode(), "application/json")

    def entries(self, first: date, last: date, tenant: str | None = None) -> list[LedgerEntry]:
        """Every entry of jobs submitted from `first` to `last`, of `tenant` (None: every tenant)."""
        keys: list[str] = []
        for offset in range((last - first).days + 1):
            day = (first + timedelta(days=offset)).isoformat()
            prefix = f"{LEDGER_PREFIX}/{day}/{tenant}/" if tenant else f"{LEDGER_PREFIX}/{day}/"
            keys += self._storage.list_keys(prefix)
        with ThreadPoolExecutor(READ_THREADS) as pool:
            found = list(pool.map(self._read, keys))
        return [entry for entry in found if entry is not None]

    def report(self, first: date, last: date, tenant: str | None, group_by: GroupBy) -> UsageView:
        """The totals of `tenant` (None: every tenant, one row each) per day or per model."""
        return aggregate(self.entries(first, last, tenant), first, last, group_by)

    def report_for(
        self, caller: Caller, start: str | None, end: str | None, group_by: GroupBy, tenant: str | None, today: date
    ) -> UsageView:
        """`GET /api/v1/usage`: the caller's tenant's totals; an admin key's: `tenant`'s, or every tenant's."""
        first, last = report_days(start, end, today)
        if not caller.admin and tenant not in (None, caller.tenant):
            raise InvalidInput("tenant", "only an admin key may ask for another tenant's usage")
        return self.report(first, last, tenant if caller.admin else caller.tenant, group_by)

    def _read(self, key: str) -> LedgerEntry | None:
        try:
            return LedgerEntry.model_validate_json(self._storage.get_bytes(key))
        except NotFound:  # deleted (a lifecycle rule) between the listing and the read
            return None


def aggregate(entries: Iterable[LedgerEntry], first: date, last: date, group_by: GroupBy) -> UsageView:
    """Sum entries per (tenant, day or model), sorted, and in all."""
    rows: dict[tuple[str, str], UsageRow] = {}
    totals = UsageTotals()
    for entry in entries:
        group = entry.day.isoformat() if group_by == "day" else entry.model
        row = rows.setdefault((entry.tenant, group), UsageRow(tenant=entry.tenant, group=group))
        for sums in (row, totals):
            _add(sums, entry)
    for sums in (*rows.values(), totals):
        _round(sums)
    ordered = [rows[key] for key in sorted(rows)]
    return UsageView(start=first.isoformat(), end=last.isoformat(), group_by=group_by, rows=ordered, totals=totals)


def _add(sums: UsageTotals, entry: LedgerEntry) -> None:
    usage = entry.usage
    sums.jobs[entry.status] = sums.jobs.get(entry.status, 0) + 1
    sums.queued_s += usage.queued_s
    sums.run_s += usage.run_s
    sums.gpu_s += usage.gpu_s
    sums.billable_gpu_s += usage.billable_gpu_s
    sums.cost += usage.cost


def _round(sums: UsageTotals) -> None:
    for name in ("queued_s", "run_s", "gpu_s", "billable_gpu_s"):
        setattr(sums, name, round(getattr(sums, name), 3))
    sums.cost = round(sums.cost, 6)
