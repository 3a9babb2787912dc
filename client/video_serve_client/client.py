"""The synchronous client: `Client` and the `Job` handle it returns."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from video_serve_client._core import (
    RETRY_STATUSES,
    TERMINAL,
    SSEParser,
    Variant,
    check,
    new_idempotency_key,
    prepare,
    preview_url,
    resolve,
    retry_after,
    usage_params,
)
from video_serve_client.errors import JobFailedError, WaitTimeout
from video_serve_client.progress import ProgressBar


class Client:
    """The video-serve API: `Client(base_url, api_key)`, or from VIDEO_SERVE_URL / VIDEO_SERVE_API_KEY."""

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, timeout: float = 60, max_retries: int = 5
    ) -> None:
        base_url, api_key = resolve(base_url, api_key)
        self.max_retries = max_retries
        self._http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; 429 and 503 are retried after Retry-After (the same headers, so the same
        Idempotency-Key); other errors raise their typed exception."""
        for attempt in range(self.max_retries + 1):
            response = self._http.request(method, path, **kwargs)
            if response.status_code not in RETRY_STATUSES or attempt == self.max_retries:
                return check(response)
            time.sleep(retry_after(response, attempt))
        raise AssertionError("unreachable")

    def generate(self, model: str, idempotency_key: str | None = None, **fields: Any) -> Job:
        """Submit a job; local file paths given for `*_key`/`*_url` fields (or a bare `image=`) are uploaded."""
        prepared = prepare(model, fields)
        for upload in prepared.uploads:
            prepared.body[upload.field] = self.upload(upload.path, upload.kind, upload.content_type)
        headers = {"Idempotency-Key": idempotency_key or new_idempotency_key()}
        return Job(self, self.request("POST", "/api/v1/generate", json=prepared.body, headers=headers))

    def upload(self, path: Path, kind: str, content_type: str) -> str:
        """PUT a local file through a presigned URL; returns the key to pass as `*_key`."""
        with path.open("rb") as f:  # the URL is signed for the file's exact size; httpx sends it as Content-Length
            body = {"input_type": kind, "content_type": content_type, "size": os.fstat(f.fileno()).st_size}
            signed = self.request("POST", "/api/v1/presign/upload", json=body)
            check_put(httpx.put(signed["upload_url"], content=f, headers={"Content-Type": content_type}, timeout=600))
        return signed["key"]

    def job(self, job_id: str) -> Job:
        """A handle on an existing job (its current view loaded)."""
        return Job(self, self.request("GET", f"/api/v1/jobs/{job_id}"))

    def jobs(self, status: str | None = None, model: str | None = None, page_size: int = 50) -> Iterator[Job]:
        """The caller's jobs, newest first, fetched a page at a time as the iteration goes."""
        cursor: str | None = None
        while True:
            params = {k: v for k, v in {"status": status, "model": model, "cursor": cursor}.items() if v}
            page = self.request("GET", "/api/v1/jobs", params={**params, "limit": page_size})
            yield from (Job(self, view) for view in page["jobs"])
            cursor = page["next_cursor"]
            if not cursor:
                return

    def usage(
        self, start: str | None = None, end: str | None = None, group_by: str = "day", tenant: str | None = None
    ) -> dict[str, Any]:
        """The caller's usage from `start` to `end` (YYYY-MM-DD, UTC; default the last 30 days): jobs by status,
        seconds and cost per day or per model. An admin key may name a `tenant`, or gets every tenant."""
        return self.request("GET", "/api/v1/usage", params=usage_params(start, end, group_by, tenant))

    def run(self, model: str, out: str | Path | None = None, progress: bool = False, **fields: Any) -> Job:
        """Submit, wait, and (with `out`) download the mp4; raises JobFailedError if the job does not complete."""
        job = self.generate(model, **fields)
        job.wait(progress=progress)
        if job.status != "completed":
            raise JobFailedError(job.data)
        if out is not None:
            job.download(out)
        return job

    def stream_lines(self, path: str, headers: dict[str, str]) -> Iterator[str]:
        with self._http.stream("GET", path, headers=headers, timeout=httpx.Timeout(60, read=None)) as response:
            if not response.is_success:
                response.read()
                check(response)
            yield from response.iter_lines()


def check_put(response: httpx.Response) -> None:
    if not response.is_success:
        check(response)


class Job:
    """A job handle: its last seen view in `data`, and the calls that follow it."""

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self._client, self.data = client, data
        self.id: str = data["job_id"]

    def __repr__(self) -> str:
        return f"Job({self.id!r}, status={self.status!r})"

    @property
    def status(self) -> str:
        return self.data["status"]

    def refresh(self) -> Job:
        """Reload the job's view."""
        self.data = self._client.request("GET", f"/api/v1/jobs/{self.id}")
        return self

    def stream(self, last_event_id: str | None = None) -> Iterator[dict[str, Any]]:
        """The job's events (`progress`, then `done` with the job view) until it ends; a dropped connection
        is resumed with Last-Event-ID."""
        while True:
            headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
            parser = SSEParser()
            try:
                for line in self._client.stream_lines(f"/api/v1/jobs/{self.id}/events", headers):
                    for event in parser.feed(line):
                        last_event_id = event["id"]
                        self._apply(event)
                        yield event
                return
            except httpx.TransportError:
                if self.data["status"] in TERMINAL:
                    return
                time.sleep(1)

    def wait(self, progress: bool = False, timeout: float | None = None, poll_s: float = 2.0) -> Job:
        """Block until the job ends (from the event stream; polling if the stream is unavailable)."""
        bar = ProgressBar(self.id) if progress else None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            try:
                for event in self.stream():
                    _show(bar, self.data, event)
                    _check_deadline(deadline)
            except (httpx.HTTPError, ValueError):
                while self.refresh().status not in TERMINAL:  # the polling fallback
                    _show(bar, self.data, None)
                    _check_deadline(deadline)
                    time.sleep(poll_s)
            self.refresh()
            _show(bar, self.data, None)
        finally:
            if bar is not None:
                bar.close()
        return self

    def cancel(self) -> Job:
        """Cancel: a queued job never runs; a running one stops at its next step."""
        self.data = self._client.request("POST", f"/api/v1/jobs/{self.id}/cancel")
        return self

    def download(self, path: str | Path, variant: Variant = "video") -> Path:
        """Write the job's mp4 (`video`), its WebP poster (`thumbnail`) or its JPEG spritesheet to `path`, from a
        fresh signed URL."""
        if variant == "video":
            url = self._client.request("GET", f"/api/v1/presign/download/{self.id}")["download_url"]
        else:
            url = preview_url(self.refresh().data, variant)
        target = Path(path)
        with httpx.stream("GET", url, timeout=600) as response, target.open("wb") as out:
            if not response.is_success:
                response.read()
                check(response)
            for chunk in response.iter_bytes():
                out.write(chunk)
        return target

    def _apply(self, event: dict[str, Any]) -> None:
        self.data = event["data"] if event["event"] == "done" else {**self.data, **event["data"]}


def _show(bar: ProgressBar | None, view: dict[str, Any], event: dict[str, Any] | None) -> None:
    if bar is not None:
        bar.update(event["data"] if event else view)


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise WaitTimeout("the job did not end in the time given")
