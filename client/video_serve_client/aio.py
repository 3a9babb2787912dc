"""The asyncio client: `AsyncClient` and `AsyncJob`, the same calls as `Client` and `Job`, awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
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


class AsyncClient:
    """The video-serve API for asyncio code: `AsyncClient(base_url, api_key)`, or from the environment."""

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, timeout: float = 60, max_retries: int = 5
    ) -> None:
        base_url, api_key = resolve(base_url, api_key)
        self.max_retries = max_retries
        headers = {"Authorization": f"Bearer {api_key}"}
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call, 429/503 retried after Retry-After with the same headers; typed errors otherwise."""
        for attempt in range(self.max_retries + 1):
            response = await self._http.request(method, path, **kwargs)
            if response.status_code not in RETRY_STATUSES or attempt == self.max_retries:
                return check(response)
            await asyncio.sleep(retry_after(response, attempt))
        raise AssertionError("unreachable")

    async def generate(self, model: str, idempotency_key: str | None = None, **fields: Any) -> AsyncJob:
        """Submit a job; local file paths given for `*_key`/`*_url` fields are uploaded first."""
        prepared = prepare(model, fields)
        for upload in prepared.uploads:
            prepared.body[upload.field] = await self.upload(upload.path, upload.kind, upload.content_type)
        headers = {"Idempotency-Key": idempotency_key or new_idempotency_key()}
        return AsyncJob(self, await self.request("POST", "/api/v1/generate", json=prepared.body, headers=headers))

    async def upload(self, path: Path, kind: str, content_type: str) -> str:
        """PUT a local file through a presigned URL; returns the key to pass as `*_key`."""
        data = path.read_bytes()  # the URL is signed for this exact size
        body = {"input_type": kind, "content_type": content_type, "size": len(data)}
        signed = await self.request("POST", "/api/v1/presign/upload", json=body)
        async with httpx.AsyncClient(timeout=600) as raw:
            headers = {"Content-Type": content_type}
            response = await raw.put(signed["upload_url"], content=data, headers=headers)
        if not response.is_success:
            check(response)
        return signed["key"]

    async def job(self, job_id: str) -> AsyncJob:
        """A handle on an existing job (its current view loaded)."""
        return AsyncJob(self, await self.request("GET", f"/api/v1/jobs/{job_id}"))

    async def jobs(
        self, status: str | None = None, model: str | None = None, page_size: int = 50
    ) -> AsyncIterator[AsyncJob]:
        """The caller's jobs, newest first, a page fetched at a time."""
        cursor: str | None = None
        while True:
            params = {k: v for k, v in {"status": status, "model": model, "cursor": cursor}.items() if v}
            page = await self.request("GET", "/api/v1/jobs", params={**params, "limit": page_size})
            for view in page["jobs"]:
                yield AsyncJob(self, view)
            cursor = page["next_cursor"]
            if not cursor:
                return

    async def usage(
        self, start: str | None = None, end: str | None = None, group_by: str = "day", tenant: str | None = None
    ) -> dict[str, Any]:
        """The caller's usage per day or per model (see `Client.usage`)."""
        return await self.request("GET", "/api/v1/usage", params=usage_params(start, end, group_by, tenant))

    async def run(self, model: str, out: str | Path | None = None, progress: bool = False, **fields: Any) -> AsyncJob:
        """Submit, wait, and (with `out`) download the mp4; raises JobFailedError if it does not complete."""
        job = await self.generate(model, **fields)
        await job.wait(progress=progress)
        if job.status != "completed":
            raise JobFailedError(job.data)
        if out is not None:
            await job.download(out)
        return job

    async def stream_lines(self, path: str, headers: dict[str, str]) -> AsyncIterator[str]:
        timeout = httpx.Timeout(60, read=None)
        async with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
            if not response.is_success:
                await response.aread()
                check(response)
            async for line in response.aiter_lines():
                yield line


class AsyncJob:
    """A job handle for asyncio code: its last seen view in `data`."""

    def __init__(self, client: AsyncClient, data: dict[str, Any]) -> None:
        self._client, self.data = client, data
        self.id: str = data["job_id"]

    def __repr__(self) -> str:
        return f"AsyncJob({self.id!r}, status={self.status!r})"

    @property
    def status(self) -> str:
        return self.data["status"]

    async def refresh(self) -> AsyncJob:
        """Reload the job's view."""
        self.data = await self._client.request("GET", f"/api/v1/jobs/{self.id}")
        return self

    async def stream(self, last_event_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """The job's events until it ends; a dropped connection is resumed with Last-Event-ID."""
        while True:
            headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
            parser = SSEParser()
            try:
                async for line in self._client.stream_lines(f"/api/v1/jobs/{self.id}/events", headers):
                    for event in parser.feed(line):
                        last_event_id = event["id"]
                        self.data = event["data"] if event["event"] == "done" else {**self.data, **event["data"]}
                        yield event
                return
            except httpx.TransportError:
                if self.data["status"] in TERMINAL:
                    return
                await asyncio.sleep(1)

    async def wait(self, progress: bool = False, timeout: float | None = None, poll_s: float = 2.0) -> AsyncJob:
        """Until the job ends (from the event stream; polling if the stream is unavailable)."""
        bar = ProgressBar(self.id) if progress else None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            try:
                async for event in self.stream():
                    if bar is not None:
                        bar.update(event["data"])
                    if deadline is not None and time.monotonic() > deadline:
                        raise WaitTimeout("the job did not end in the time given")
            except (httpx.HTTPError, ValueError):
                while (await self.refresh()).status not in TERMINAL:  # the polling fallback
                    if deadline is not None and time.monotonic() > deadline:
                        raise WaitTimeout("the job did not end in the time given") from None
                    await asyncio.sleep(poll_s)
            await self.refresh()
            if bar is not None:
                bar.update(self.data)
        finally:
            if bar is not None:
                bar.close()
        return self

    async def cancel(self) -> AsyncJob:
        """Cancel: a queued job never runs; a running one stops at its next step."""
        self.data = await self._client.request("POST", f"/api/v1/jobs/{self.id}/cancel")
        return self

    async def download(self, path: str | Path, variant: Variant = "video") -> Path:
        """Write the job's mp4 (`video`), its WebP poster (`thumbnail`) or its JPEG spritesheet to `path`."""
        if variant == "video":
            url = (await self._client.request("GET", f"/api/v1/presign/download/{self.id}"))["download_url"]
        else:
            url = preview_url((await self.refresh()).data, variant)
        target = Path(path)
        async with httpx.AsyncClient(timeout=600) as raw, raw.stream("GET", url) as response:
            if not response.is_success:
                await response.aread()
                check(response)
            with target.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
        return target
