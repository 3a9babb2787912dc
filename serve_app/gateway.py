"""Gateway: the HTTP API (ingress deployment, stateless). Auth, validation, input staging, routing by model."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import mimetypes
import re
import secrets as pysecrets
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPBearer
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.handle import DeploymentHandle

from deployments.ltx2.args import check_camera_lora, check_quality
from deployments.ltx2.params import LTX2Params, frames_for_duration, resolve_size
from serve_app import joblogs, metrics
from serve_app.errors import (
    InvalidInput,
    JobNotFound,
    JobNotReady,
    NotFound,
    QueueFull,
    Unauthorized,
    Unavailable,
    VideoServeError,
)
from serve_app.netguard import BlockedURL, pin_public_url
from serve_app.schemas import (
    CreatedView,
    GenerateRequest,
    JobView,
    LTX2Request,
    PresignDownloadView,
    PresignUploadRequest,
    PresignUploadView,
    Wav2LipRequest,
)
from serve_app.settings import AppArgs, Secrets
from serve_app.staging import InputStager
from serve_app.storage import LocalStorage, build_storage

logger = logging.getLogger("serve_app.gateway")
JOB_SUFFIX = re.compile(r"[0-9a-f]{32}")  # job ids are `<model>-<uuid4 hex>` (see generate)
bearer = HTTPBearer(auto_error=False, description="One of the keys in the API_KEYS environment variable.")
SECURED = [Depends(bearer)]  # documents the scheme in /docs; the check itself is Gateway._authorize

app = FastAPI(
    title="Video generation API",
    version="1.0",
    description="LTX-2 text/image-to-video and Wav2Lip lip-sync jobs on a Ray Serve cluster.",
)


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    """The one error envelope: `{"error": {"code", "message", ...}}`."""
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


@app.exception_handler(VideoServeError)
async def _on_app_error(request: Request, exc: VideoServeError) -> JSONResponse:
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidInput):
        extra["fields"] = [{"field": exc.field, "message": exc.message}]
        metrics.input_rejected(exc.field, "input_check")
    response = error_response(exc.status_code, exc.code, exc.message, **extra)
    if isinstance(exc, QueueFull):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def _field_of(error: dict) -> str:
    """Dotted field path of a validation error, without `body` and the `model` discriminator tag."""
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return "model"
    if error["type"] == "json_invalid":
        return "body"
    loc = [str(p) for p in error["loc"][1:]]
    if loc and loc[0] in ("ltx2", "wav2lip"):
        loc = loc[1:]
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if not loc and error["type"] == "value_error" and ": " in message:
        return message.split(": ", 1)[0]  # cross-field rules name their field first (schemas._exactly_one)
    return ".".join(loc) or "body"


@app.exception_handler(RequestValidationError)
async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    fields = [{"field": _field_of(e), "message": str(e["msg"]).removeprefix("Value error, ")} for e in exc.errors()]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    metrics.input_rejected(fields[0]["field"], exc.errors()[0]["type"])  # one count per request, by its first error
    return error_response(422, "invalid_request", summary, fields=fields)


@app.exception_handler(Exception)
async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error; the request id is in the server log")


async def call(response: Any) -> Any:
    """Await a handle call, re-raising the callee's own errors and mapping a dead replica to 503."""
    try:
        return await response
    except RayTaskError as exc:
        if isinstance(exc.cause, VideoServeError):
            raise exc.cause from None
        raise
    except RayActorError as exc:
        raise Unavailable("the job queue is restarting; retry shortly") from exc


class Gateway:
    """HTTP API in front of one JobQueue per model."""

    def __init__(self, args: AppArgs, secrets: Secrets, queues: dict[str, DeploymentHandle]) -> None:
        joblogs.route_logs_to_serve()
        self._args, self._secrets, self._queues = args, secrets, queues
        self._keys = [k.get_secret_value().encode() for k in secrets.api_keys]
        self._storage = build_storage(args.storage, secrets)
        self._stager = InputStager(self._storage, args)
        if args.gateway.require_auth and not self._keys:
            logger.error("API_KEYS is empty and auth is required: every /api request will get 401")

    # ---- jobs -----------------------------------------------------------------------------------

    @app.post("/api/v1/generate", status_code=201, response_model=CreatedView, tags=["jobs"], dependencies=SECURED)
    async def generate(
        self,
        body: GenerateRequest,
        request: Request,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> JSONResponse:
        """Queue a job on its model's queue. Inputs are fetched and stored first; the job is in storage
        before this answers. The same Idempotency-Key returns the same job (200 instead of 201)."""
        key_id = self._authorize(request)
        queue = self._queues.get(body.model)
        if queue is None:
            raise InvalidInput("model", f"{body.model} is not enabled on this deployment")
        params = self._params(body)
        await self._check_webhook(body.webhook_url)
        idem = _digest(key_id, idempotency_key) if idempotency_key else None
        body_hash = _digest(body.model_dump_json()) if idem else None
        if idem and (existing := await call(queue.find_idempotent.remote(idem, body_hash))):
            return JSONResponse(CreatedView(**existing.model_dump()).model_dump(mode="json"), status_code=200)
        job_id = f"{body.model}-{uuid.uuid4().hex}"
        inputs = await self._stager.stage(job_id, body)
        try:
            view, created = await call(
                queue.submit.remote(
                    job_id,
                    params,
                    inputs,
                    str(body.webhook_url) if body.webhook_url else None,
                    idem,
                    body_hash,
                )
            )
        except BaseException:
            await asyncio.to_thread(self._storage.delete_prefix, f"jobs/{job_id}")  # no half-made job
            raise
        if not created:  # a concurrent duplicate won the race: drop this request's staged copy
            await asyncio.to_thread(self._storage.delete_prefix, f"jobs/{job_id}")
        return JSONResponse(
            CreatedView(**view.model_dump()).model_dump(mode="json"), status_code=201 if created else 200
        )

    @app.get("/api/v1/jobs/{job_id}", response_model=JobView, tags=["jobs"], dependencies=SECURED)
    async def get_job(self, job_id: str, request: Request) -> JobView:
        """The job's status, progress, queue position and, once completed, a signed result URL."""
        self._authorize(request)
        return await call(self._queue_of(job_id).get.remote(job_id))

    @app.post("/api/v1/jobs/{job_id}/cancel", response_model=JobView, tags=["jobs"], dependencies=SECURED)
    async def cancel_job(self, job_id: str, request: Request) -> JobView:
        """Cancel: a queued job never runs; a running one stops at its next step."""
        self._authorize(request)
        return await call(self._queue_of(job_id).cancel.remote(job_id))

    # ---- uploads and downloads ------------------------------------------------------------------

    @app.post("/api/v1/presign/upload", response_model=PresignUploadView, tags=["files"], dependencies=SECURED)
    async def presign_upload(self, body: PresignUploadRequest, request: Request) -> PresignUploadView:
        """A URL to PUT one input file to; pass the returned `key` as `image_key`/`video_key`/`audio_key`."""
        self._authorize(request)
        subtype = re.sub(r"[^a-z0-9]", "", body.content_type.split("/")[1].lower())[:10] or "bin"
        ext = (mimetypes.guess_extension(body.content_type) or subtype).lstrip(".")  # audio/wav is not in mimetypes
        key = f"uploads/{body.job_id or uuid.uuid4().hex}/{body.input_type}-{uuid.uuid4().hex[:8]}.{ext}"
        expires = self._args.storage.presign_expires_s
        url = self._storage.presign_put(key, body.content_type, expires)
        return PresignUploadView(upload_url=url, key=key, expires_in=expires)

    @app.get(
        "/api/v1/presign/download/{job_id}",
        response_model=PresignDownloadView,
        tags=["files"],
        dependencies=SECURED,
    )
    async def presign_download(self, job_id: str, request: Request) -> PresignDownloadView:
        """A fresh signed URL of a completed job's mp4."""
        self._authorize(request)
        view: JobView = await call(self._queue_of(job_id).get.remote(job_id))
        if view.status != "completed" or view.result_url is None:
            raise JobNotReady(f"job {job_id} is {view.status}; only completed jobs have a video")
        return PresignDownloadView(download_url=view.result_url, expires_in=self._args.storage.presign_expires_s)

    @app.get("/files/{key:path}", include_in_schema=False)
    async def download_file(self, key: str, expires: int, signature: str) -> FileResponse:
        """The local backend's signed GET (S3 serves its own presigned URLs)."""
        storage = self._local_storage()
        if not storage.verify("GET", key, expires, signature):
            raise Unauthorized("bad or expired signature")
        path = storage.local_path(key)
        if not path.is_file():
            raise NotFound(f"no object {key}")
        return FileResponse(path, media_type=mimetypes.guess_type(key)[0] or "application/octet-stream")

    @app.put("/files/{key:path}", include_in_schema=False)
    async def upload_file(self, key: str, expires: int, signature: str, request: Request) -> JSONResponse:
        """The local backend's signed PUT, for presigned uploads only, capped at the input size limit."""
        storage = self._local_storage()
        if not key.startswith("uploads/") or not storage.verify("PUT", key, expires, signature):
            raise Unauthorized("bad or expired signature")
        limit, size = int(self._args.inputs.max_input_mb * 1024 * 1024), 0
        with tempfile.NamedTemporaryFile(prefix="upload-") as spool:  # on disk: an upload may be hundreds of MB
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise InvalidInput("body", f"upload is over the {limit} byte limit")
                spool.write(chunk)
            spool.flush()
            await asyncio.to_thread(storage.put_file, key, Path(spool.name))
        return JSONResponse({"key": key, "size": size})

    # ---- health ---------------------------------------------------------------------------------

    @app.get("/health", tags=["ops"])
    async def health(self) -> JSONResponse:
        """Public: storage reachable, and per-model job counts."""
        status, body = 200, {"status": "ok", "storage": "ok", "models": {}}
        try:
            await asyncio.to_thread(self._storage.ping)
        except Exception as exc:
            status, body["status"], body["storage"] = 503, "degraded", f"unreachable: {type(exc).__name__}"
        for model, queue in self._queues.items():
            try:
                body["models"][model] = await asyncio.wait_for(call(queue.counts.remote()), timeout=5)
            except Exception as exc:
                status, body["status"] = 503, "degraded"
                body["models"][model] = {"error": type(exc).__name__}
        return JSONResponse(body, status_code=status)

    # ---- helpers --------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> str:
        """Check the Bearer key in constant time; returns a short id of the key (never the key)."""
        if not self._args.gateway.require_auth:
            return "anonymous"
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        presented = token.strip().encode()
        if scheme.lower() == "bearer" and presented:
            matches = [hmac.compare_digest(presented, key) for key in self._keys]  # no early exit
            if any(matches):
                return _digest(token.strip())[:12]
        raise Unauthorized("missing or invalid API key; send Authorization: Bearer <key>")

    def _queue_of(self, job_id: str) -> DeploymentHandle:
        """The queue that owns `job_id`, read from its `<model>-<hex>` shape; anything else never exists."""
        model, _, rest = job_id.partition("-")
        queue = self._queues.get(model)
        if queue is None or not JOB_SUFFIX.fullmatch(rest):
            raise JobNotFound(f"no job {job_id[:80]}")
        return queue

    def _local_storage(self) -> LocalStorage:
        if not isinstance(self._storage, LocalStorage):
            raise NotFound("signed file routes exist only with the local storage backend")
        return self._storage

    async def _check_webhook(self, url: Any) -> None:
        if url is None:
            return
        if self._secrets.webhook_secret is None:
            raise InvalidInput("webhook_url", "webhooks are not configured on this server (WEBHOOK_SECRET unset)")
        try:
            await pin_public_url(str(url), self._args.webhooks.allow_networks)
        except BlockedURL as exc:
            raise InvalidInput("webhook_url", f"refused: {exc}") from None

    def _params(self, body: LTX2Request | Wav2LipRequest) -> dict[str, Any]:
        """The parameters the model will use: LTX-2 sizes snapped and limits checked, before any staging."""
        if isinstance(body, Wav2LipRequest):
            face_kind = "video" if (body.video_url or body.video_key) else "image"
            return {
                "face_kind": face_kind,
                "fps": body.fps,
                "pads": list(body.pads),
                "smooth": body.smooth,
                "blend": body.blend,
                "on_no_face": body.on_no_face,
            }
        limits = self._args.ltx2
        if body.duration > limits.max_duration_s:
            raise InvalidInput("duration", f"{body.duration:g} s is over the {limits.max_duration_s:g} s limit")
        width, height = resolve_size(body.quality, body.width, body.height, body.resolution)
        if max(width, height) > limits.max_side:
            field = "width" if width >= height else "height"
            raise InvalidInput(field, f"{max(width, height)} px is over the {limits.max_side} px limit")
        check_quality(limits, body.quality)
        check_camera_lora(limits, body.camera_lora)
        has_image = any(v is not None for v in (body.image_url, body.image_base64, body.image_key))
        return LTX2Params(
            prompt=body.prompt,
            negative_prompt=body.negative_prompt,
            quality=body.quality,
            width=width,
            height=height,
            num_frames=frames_for_duration(body.duration, body.fps),
            fps=body.fps,
            seed=body.seed if body.seed is not None else pysecrets.randbelow(2**32),
            camera_lora=body.camera_lora,
            image_to_video=has_image,
        ).model_dump()


def _digest(*parts: str | None) -> str:
    return hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()
