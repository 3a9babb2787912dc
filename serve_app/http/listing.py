"""A caller's job list, a page at a time, newest or oldest first, from the list indexes written at create: a page
reads about `limit` index entries, more only when filters skip some. Cursors are opaque: a page's last entry."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from serve_app.errors import InvalidInput
from serve_app.jobs.store import listing_entry, listing_prefix
from serve_app.schemas import Caller, JobListView, JobView
from serve_app.storage.backends import Storage

LIST_ENTRY = re.compile(r"\d{13}-[a-z][a-z0-9_]{0,31}-[0-9a-f]{32}")  # jobs.store.listing_entry

ViewOf = Callable[[str, Caller], Awaitable[JobView | None]]  # a job's view, None once it is gone


async def list_page(
    storage: Storage,
    caller: Caller,
    models: frozenset[str],
    status: str | None,
    limit: int,
    cursor: str | None,
    view_of: ViewOf,
    oldest_first: bool = False,
) -> JobListView:
    """A page of the caller's jobs (every job for an admin) of `models`, in `status` if given."""
    prefix = listing_prefix(caller.scope, oldest_first)
    start_after = prefix + decode_cursor(cursor) if cursor else ""
    jobs: list[JobView] = []
    while True:
        keys = await asyncio.to_thread(storage.list_page, prefix, start_after, limit)
        entries = [k.removeprefix(prefix) for k in keys]
        wanted = [e for e in entries if e.split("-")[1] in models]
        views = await asyncio.gather(*(view_of(e.partition("-")[2], caller) for e in wanted))
        for entry, view in zip(wanted, views, strict=True):
            if view is not None and (status is None or view.status == status):
                jobs.append(view)
                if len(jobs) == limit:
                    return JobListView(jobs=jobs, next_cursor=encode_cursor(entry))
        if len(keys) < limit:
            return JobListView(jobs=jobs, next_cursor=None)
        start_after = keys[-1]


def cursor_after(job_id: str, created_at: datetime, oldest_first: bool = False) -> str:
    """The cursor of the page that follows a job (as if that job ended the page before)."""
    return encode_cursor(listing_entry(job_id, created_at, oldest_first))


def encode_cursor(entry: str) -> str:
    """The opaque cursor of a list page: the last index entry it returned."""
    return base64.urlsafe_b64encode(entry.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The index entry a cursor stands for; a 422 on `cursor` for anything this server did not make."""
    try:
        entry = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        entry = ""
    if not LIST_ENTRY.fullmatch(entry):
        raise InvalidInput("cursor", "is not a cursor from a previous page of this list")
    return entry
