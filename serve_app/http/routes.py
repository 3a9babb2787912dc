"""The HTTP surface: a FastAPI app built per gateway replica from the catalogue's request type.

Built at replica start (`Gateway.__serve_build_asgi_app__`), so the body of POST /api/v1/generate, and the
OpenAPI schema that documents it, come from the models' specs. No `from __future__ import annotations`
here: the generate route's annotation is a value computed at build time, and FastAPI must see the object.
"""

import logging
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPBearer

from serve_app.errors import InvalidInput
from serve_app.http.errors import add_error_handlers
from serve_app.http.gateway import Gateway
from serve_app.http.pages import add_pages
from serve_app.http.videos import add_video_routes
from serve_app.schemas import (
    TERMINAL,
    CreatedView,
    JobListView,
    JobStatus,
    JobView,
    PresignDownloadView,
    PresignUploadRequest,
    PresignUploadView,
    UsageView,
)
from serve_app.settings import StorageArgs

logger = logging.getLogger("serve_app.http.routes")
bearer = HTTPBearer(auto_error=False, description="One of the keys in the API_KEYS environment variable.")
MAX_WAIT_S = 60  # Prefer: wait=N; longer holds belong on the event stream
SECURED = [Depends(bearer)]  # documents the scheme in /docs; the check itself is Gateway.authorize


def prefer_wait(prefer: str | None) -> int | None:
    """Seconds asked for by `Prefer: wait=N` (RFC 7240; other preferences are ignored), or None."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() != "wait":
            continue
        seconds = value.strip().strip('"')
        if not seconds.isdigit() or not 1 <= int(seconds) <= MAX_WAIT_S:
            raise InvalidInput("Prefer", f"wait={seconds[:20]} must be a whole number of seconds, 1 to {MAX_WAIT_S}")
        return int(seconds)
    return None


def mark_uploads(app: FastAPI, uploads: dict[str, dict[str, str]]) -> None:
    """Tag each upload-key field of a request schema in /openapi.json with `x-media-kind` (image, video or
    audio: the presign `input_type`), so a client (the playground) can offer a file input for it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = build()["components"]["schemas"]  # build() caches the dict it returns in app.openapi_schema
            for schema_name, fields in uploads.items():
                properties = schemas.get(schema_name, {}).get("properties", {})
                for field, kind in fields.items():
                    if field in properties:
                        properties[field]["x-media-kind"] = kind
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build_api(
    gateway: Gateway,
    request_type: Any,
    model_names: frozenset[str],
    storage: StorageArgs,
    uploads: dict[str, dict[str, str]],
) -> FastAPI:
    """The FastAPI app of one gateway replica: every route delegates to `gateway`; the pages are local files.
    `uploads` names the upload-key fields of each request schema and their media kind."""
    app = FastAPI(
        title="Video generation API",
        version="1.0",
        description="Video jobs (" + ", ".join(sorted(model_names)) + ") on a Ray Serve cluster. "
        "Try them in the browser at [/playground](playground).",
        docs_url=None,  # served by add_pages from installed files, not from a CDN
        redoc_url=None,
    )
    add_error_handlers(app, model_names)
    add_pages(app, storage)
    mark_uploads(app, uploads)
    add_video_routes(app, gateway)

    @app.post("/api/v1/generate", status_code=201, response_model=CreatedView, tags=["jobs"], dependencies=SECURED)
    async def generate(
        body: request_type,
        request: Request,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
        prefer: Annotated[str | None, Header(description="`wait=N` (1-60): answer when the job ends.")] = None,
    ) -> JSONResponse:
        """Queue a job on its model's queue. Inputs are fetched and stored first; the job is in storage
        before this answers. The same Idempotency-Key returns the same job (200 instead of 201).
        With `Prefer: wait=N` it answers the job view when the job ends (200) or after N seconds (202)."""
        caller = gateway.authorize(request)
        wait_s = prefer_wait(prefer)
        limits = await gateway.admit(caller, body.model)  # RateLimit headers; 429 over a tenant limit
        created_view, created = await gateway.generate(body, caller, idempotency_key)
        if wait_s is None:
            status = 201 if created else 200
            return JSONResponse(created_view.model_dump(mode="json"), status_code=status, headers=limits)
        view = await gateway.wait_job(created_view.job_id, caller, wait_s)
        status = 200 if view.status in TERMINAL else 202
        response = JSONResponse(view.model_dump(mode="json"), status_code=status, headers=limits)
        response.headers["Preference-Applied"] = f"wait={wait_s}"
        return response

    @app.get("/api/v1/usage", response_model=UsageView, tags=["usage"], dependencies=SECURED)
    async def usage(
        request: Request,
        start: Annotated[str | None, Query(max_length=10, description="First day, YYYY-MM-DD (UTC).")] = None,
        end: Annotated[str | None, Query(max_length=10, description="Last day, YYYY-MM-DD (UTC), included.")] = None,
        group_by: Annotated[Literal["day", "model"], Query(description="One row per day or per model.")] = "day",
        tenant: Annotated[str | None, Query(max_length=32, description="Admin keys: one tenant's usage.")] = None,
    ) -> UsageView:
        """Ended jobs of the caller's tenant by status, their seconds, GPU-seconds and cost, from the usage ledger
        (default: the last 30 days). An admin key gets every tenant, or the one named by `tenant`."""
        return await gateway.usage(gateway.authorize(request), start, end, group_by, tenant)

    @app.get("/api/v1/jobs", response_model=JobListView, tags=["jobs"], dependencies=SECURED)
    async def list_jobs(
        request: Request,
        status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
        model: Annotated[str | None, Query(description="Only jobs of this model.", max_length=32)] = None,
        limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page.")] = 20,
        cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the page before.")] = None,
    ) -> JobListView:
        """The caller's jobs (every job, for an admin key), newest first, a page at a time."""
        return await gateway.list_jobs(gateway.authorize(request), status, model, limit, cursor)

    @app.get("/api/v1/jobs/{job_id}", response_model=JobView, tags=["jobs"], dependencies=SECURED)
    async def get_job(job_id: str, request: Request) -> JobView:
        """The job's status, progress, queue position and, once completed, a signed result URL."""
        return await gateway.get_job(job_id, gateway.authorize(request))

    @app.post("/api/v1/jobs/{job_id}/cancel", response_model=JobView, tags=["jobs"], dependencies=SECURED)
    async def cancel_job(job_id: str, request: Request) -> JobView:
        """Cancel: a queued job never runs; a running one stops at its next step."""
        return await gateway.cancel_job(job_id, gateway.authorize(request))

    @app.get(
        "/api/v1/jobs/{job_id}/events",
        tags=["jobs"],
        dependencies=SECURED,
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def job_events(
        job_id: str,
        request: Request,
        last_event_id: Annotated[str | None, Header(description="Resume after this event id.")] = None,
    ) -> StreamingResponse:
        """Server-Sent Events of the job: `progress` (status, stage, progress) on each change, then `done`
        with the job view, and the stream ends. A comment every 15 s keeps idle connections open."""
        after = int(last_event_id) if last_event_id and last_event_id.isdigit() else -1  # -1: from the current state
        lines = await gateway.job_events(job_id, gateway.authorize(request), after)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # nginx would hold events back
        return StreamingResponse(lines, media_type="text/event-stream", headers=headers)

    @app.post("/api/v1/presign/upload", response_model=PresignUploadView, tags=["files"], dependencies=SECURED)
    async def presign_upload(body: PresignUploadRequest, request: Request) -> PresignUploadView:
        """A URL to PUT one input file to; pass the returned `key` as `image_key`/`video_key`/`audio_key`."""
        return gateway.presign_upload(body, gateway.authorize(request))

    @app.get(
        "/api/v1/presign/download/{job_id}",
        response_model=PresignDownloadView,
        tags=["files"],
        dependencies=SECURED,
    )
    async def presign_download(job_id: str, request: Request) -> PresignDownloadView:
        """A fresh signed URL of a completed job's mp4."""
        return await gateway.presign_download(job_id, gateway.authorize(request))

    @app.get("/files/{key:path}", include_in_schema=False)
    async def download_file(key: str, expires: int, signature: str) -> FileResponse:
        """The local backend's signed GET (S3 serves its own presigned URLs)."""
        return gateway.download_file(key, expires, signature)

    @app.put("/files/{key:path}", include_in_schema=False)
    async def upload_file(key: str, expires: int, size: int, signature: str, request: Request) -> JSONResponse:
        """The local backend's signed PUT, for presigned uploads only: a body of exactly the signed size."""
        return JSONResponse(await gateway.upload_file(key, expires, size, signature, request))

    @app.get("/health", tags=["ops"])
    async def health() -> JSONResponse:
        """Public: storage reachable, and per-model job counts."""
        healthy, body = await gateway.health()
        return JSONResponse(body, status_code=200 if healthy else 503)

    return app
