"""What callers see of a job record: the job view, its stream events, its webhook payload, and its queue place."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from serve_app.schemas import JobRecord, JobView


def job_view(record: JobRecord, queue_position: int | None, sign: Callable[[str], str]) -> JobView:
    """The view of `GET /api/v1/jobs/{id}`; `sign` makes a signed download URL of a storage key."""
    completed = record.status == "completed"
    previews = {kind: sign(key) for kind, key in (record.details.get("previews") or {}).items()} if completed else {}
    return JobView(
        job_id=record.job_id,
        model=record.model,
        status=record.status,
        progress=record.progress,
        stage=record.stage,
        queue_position=queue_position,
        result_url=sign(record.output_key) if completed else None,
        error_message=record.error.message if record.error else None,
        error_code=record.error.code if record.error else None,
        created_at=record.created_at,
        started_at=record.started_at,
        completed_at=record.completed_at,
        attempts=record.attempts,
        params=record.params,
        details=record.details,
        weights=record.weights,
        thumbnail_url=previews.get("thumbnail"),
        spritesheet_url=previews.get("spritesheet"),
        labels=record.labels,
        usage=record.usage,
    )


def stream_event(record: JobRecord, view: Callable[[JobRecord], JobView]) -> dict[str, Any]:
    """One event of the job's stream: its id (the record's revision), its name, and its data."""
    if record.terminal:
        return {"id": record.revision, "event": "done", "data": view(record).model_dump(mode="json")}
    data = {"status": record.status, "stage": record.stage, "progress": record.progress}
    return {"id": record.revision, "event": "progress", "data": data}


def webhook_payload(record: JobRecord, sign: Callable[[str], str]) -> dict[str, Any]:
    """The body of the job's terminal webhook (`sign`: a storage key's signed URL); a job created on /v1/videos
    gets OpenAI's event instead."""
    if record.labels.get("api") == "openai":
        return openai_event(record)
    payload: dict[str, Any] = {"job_id": record.job_id, "model": record.model, "status": record.status}
    if record.status == "completed":
        payload["video_url"] = sign(record.output_key)
    elif record.error is not None:
        payload["error"] = record.error.model_dump()
    return payload


def openai_event(record: JobRecord) -> dict[str, Any]:
    """OpenAI's video event: `video.completed`, or `video.failed` (a cancelled job too: the API has no cancel)."""
    ended = record.completed_at or record.created_at
    return {
        "id": f"evt_{record.job_id}",
        "object": "event",
        "created_at": int(ended.timestamp()),
        "type": "video.completed" if record.status == "completed" else "video.failed",
        "data": {"id": record.job_id},
    }


class QueuePlaces:
    """Each queued job's place (the jobs ahead of it). The places are computed once per change of the queue, not
    once per read: a scan per read would make polling cost (active jobs)^2."""

    def __init__(self) -> None:
        self._places: dict[str, int] = {}

    def changed(self, job_id: str, queued: bool) -> None:
        """A job changed; when it left or re-entered the queue, places are computed again at the next read."""
        if (job_id in self._places) != queued:
            self._places = {}

    def of(self, job_id: str, queued_in_order: Callable[[], Iterable[str]]) -> int | None:
        """The job's place, from `queued_in_order` (every queued job, first to run first) when a change made the
        places stale or the job is new; None when it is not queued."""
        if job_id not in self._places:
            self._places = {queued: place for place, queued in enumerate(queued_in_order())}
        return self._places.get(job_id)
