"""Gateway: the API's logic behind the ingress (stateless). Auth, planning, input staging, routing by model to its
queue. The routes that map HTTP onto it are in `serve_app.http.routes`; `serve_app.http.ingress` joins the two.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import mimetypes
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from ray.serve.handle import DeploymentHandle

from deployments.contract import InputTooLarge, ModelArgs, ModelSpec
from deployments.media import MediaInfo
from serve_app import joblogs, metrics
from serve_app.errors import (
    InvalidInput,
    JobNotFound,
    JobNotReady,
    NotFound,
    RateLimited,
    StorageError,
    Unauthorized,
    Unavailable,
)
from serve_app.http.listing import list_page
from serve_app.http.streams import call, sse_lines
from serve_app.http.videos_schemas import VideosContext
from serve_app.runs.chains import plan_stages
from serve_app.schemas import (
    TERMINAL,
    Caller,
    CreatedView,
    JobListView,
    JobView,
    PresignDownloadView,
    PresignUploadRequest,
    PresignUploadView,
    UsageView,
)
from serve_app.settings import Secrets, SpineArgs
from serve_app.storage.backends import LocalStorage, build_storage, retrying
from serve_app.storage.netguard import BlockedURL, pin_public_url
from serve_app.storage.staging import InputStager, Review, input_sources, upload_limit
from serve_app.tenants.ledger import GroupBy, Ledger

logger = logging.getLogger("serve_app.http.gateway")
DELETE_WAIT_S = 10.0  # a running job stops at its next step; a delete waits this long for it
JOB_SUFFIX = re.compile(r"[0-9a-f]{32}")  # job ids are `<model>-<uuid4 hex>` (see generate)


class Gateway:
    """The API's logic in front of one JobQueue per enabled model; `serve_app.http.routes` maps HTTP onto it."""

    def __init__(
        self,
        args: SpineArgs,
        secrets: Secrets,
        specs: tuple[ModelSpec, ...],
        request_type: Any,
        model_args: dict[str, ModelArgs],
        queues: dict[str, DeploymentHandle],
        limiter: DeploymentHandle | None = None,
    ) -> None:
        joblogs.route_logs_to_serve()
        self._args, self._secrets = args, secrets
        self._specs = {spec.name: spec for spec in specs}
        self._request_type = request_type
        self._model_args, self._queues = model_args, queues
        self._keys = [
            (k.key.get_secret_value().encode(), Caller(k.key_id, k.admin, k.tenant)) for k in secrets.api_keys
        ]
        self._limiter = limiter
        self._storage = build_storage(args.storage, secrets)  # requests fail fast in an outage: 503
        self._ledger = Ledger(self._storage)  # usage reports read the ledger; they fail fast in an outage
        self._cleanup_storage = retrying(self._storage, args.storage)  # cleanups wait storage out
        self._cleanups: set[asyncio.Task] = set()
        self._stager = InputStager(self._storage, args.inputs)
        if args.gateway.require_auth and not self._keys:
            logger.error("API_KEYS is empty and auth is required: every /api request will get 401")

    # ---- jobs -----------------------------------------------------------------------------------

    async def generate(
        self, body: BaseModel, caller: Caller, idempotency_key: str | None, labels: dict[str, str] | None = None
    ) -> tuple[CreatedView, bool]:
        """Plan, stage and queue a job; returns (view, created). The job is in storage before this returns;
        the same Idempotency-Key returns the same job with created False; `labels` go into its record."""
        model = body.model  # type: ignore[attr-defined]
        queue = self._queues.get(model)
        if queue is None:
            raise InvalidInput("model", f"{model} is not enabled on this deployment")
        spec = self._specs[model]
        params = spec.plan(body, self._model_args[model])
        webhook_url = body.webhook_url  # type: ignore[attr-defined]
        await self._check_webhook(webhook_url)
        self._check_upload_owner(spec, body, caller)
        idem = _digest(caller.key_id, idempotency_key) if idempotency_key else None
        body_hash = _digest(body.model_dump_json()) if idem else None
        if idem and (existing := await call(queue.find_idempotent.remote(idem, body_hash))):
            return CreatedView(**existing.model_dump()), False
        job_id = f"{model}-{uuid.uuid4().hex}"
        review = self._stage_planner(spec, body, params) if spec.stages else None
        try:
            inputs = await self._stager.stage(job_id, body, spec, self._model_args[model], review)
        except StorageError:  # storage went down while staging: 503, and what was staged goes once it is back
            self._clean_up_later(f"jobs/{job_id}")
            raise
        try:
            view, created = await call(
                queue.submit.remote(
                    job_id,
                    params,
                    inputs,
                    str(webhook_url) if webhook_url else None,
                    idem,
                    body_hash,
                    caller.key_id,
                    tenant=caller.tenant,
                    admin=caller.admin,
                    labels=labels or {},
                )
            )
        except (Unavailable, asyncio.CancelledError):
            # The queue died, or the client left, with the submit in flight, maybe after the job was stored: the
            # queue (or its restart) runs it, and a retry with the same Idempotency-Key returns it. Deleting files
            # here could half-delete a stored job.
            raise
        except StorageError:  # the queue could not store it: 503; what was written goes once storage is back
            self._clean_up_later(f"jobs/{job_id}")
            raise
        except BaseException:
            await asyncio.to_thread(self._storage.delete_prefix, f"jobs/{job_id}")  # no half-made job
            raise
        if not created:  # a concurrent duplicate won the race: drop this request's staged copy
            await asyncio.to_thread(self._storage.delete_prefix, f"jobs/{job_id}")
        return CreatedView(**view.model_dump()), created

    async def admit(self, caller: Caller, model: str) -> dict[str, str]:
        """Count a submission against the caller's tenant limits spanning models (429 over one); the RateLimit
        headers of the answer. With the limiter restarting, the job is let through: a few seconds unlimited are
        better than an API that refuses every job."""
        if self._limiter is None:
            return {}
        try:
            quota = await call(self._limiter.admit.remote(caller.tenant, caller.admin))
        except RateLimited as refused:
            metrics.tenant_rejected(model, caller.tenant, refused.limit)
            raise
        except Unavailable:
            logger.warning("tenant limiter unavailable: submission of %s let through unchecked", caller.tenant)
            return {}
        return quota.headers()

    async def usage(
        self, caller: Caller, start: str | None, end: str | None, group_by: GroupBy, tenant: str | None
    ) -> UsageView:
        """`GET /api/v1/usage`: the caller's tenant's totals from the ledger (an admin's: any tenant, or all)."""
        today = datetime.now(UTC).date()
        return await asyncio.to_thread(self._ledger.report_for, caller, start, end, group_by, tenant, today)

    async def get_job(self, job_id: str, caller: Caller) -> JobView:
        """The job's current view, from its model's queue; another key's job is a 404."""
        return await call(self._queue_of(job_id).get.remote(job_id, caller.scope))

    async def cancel_job(self, job_id: str, caller: Caller) -> JobView:
        """Cancel through the job's queue: a queued job never runs; a running one stops at its next step."""
        return await call(self._queue_of(job_id).cancel.remote(job_id, caller.scope))

    async def delete_job(self, job_id: str, caller: Caller) -> None:
        """Remove a job's record and files through its queue; an unfinished one is cancelled and waited for first
        (a 409 if it has not stopped within DELETE_WAIT_S: the caller asks again)."""
        queue = self._queue_of(job_id)
        view = await call(queue.cancel.remote(job_id, caller.scope))  # an ended job: no change
        if view.status not in TERMINAL:
            view = await call(queue.wait.remote(job_id, caller.scope, DELETE_WAIT_S))
        if view.status not in TERMINAL:
            raise JobNotReady(f"job {job_id} is still stopping; delete it again shortly")
        await call(queue.cancel.remote(job_id, caller.scope, remove=True))

    async def list_jobs(
        self, caller: Caller, status: str | None, model: str | None, limit: int, cursor: str | None
    ) -> JobListView:
        """A page of the caller's jobs (every job for an admin), newest first."""
        models = frozenset(self._queues) if model is None else frozenset(self._queues) & {model}
        return await list_page(self._storage, caller, models, status, limit, cursor, self._view_or_none)

    async def _view_or_none(self, job_id: str, caller: Caller) -> JobView | None:
        try:
            return await self.get_job(job_id, caller)
        except JobNotFound:  # deleted by retention between the listing and the read
            return None

    async def wait_job(self, job_id: str, caller: Caller, timeout_s: float) -> JobView:
        """The job's view once it ends or after `timeout_s` (`Prefer: wait`)."""
        return await call(self._queue_of(job_id).wait.remote(job_id, caller.scope, timeout_s))

    async def job_events(self, job_id: str, caller: Caller, after: int) -> AsyncIterator[str]:
        """The job's changes as Server-Sent Events, fed by its queue's stream, with a keep-alive comment
        whenever it is quiet; ends after the terminal event. Checks visibility before the first byte."""
        await self.get_job(job_id, caller)  # a 404 must be an HTTP answer, not a broken stream
        stream = self._queue_of(job_id).options(stream=True).events.remote(job_id, caller.scope, after)
        return sse_lines(stream, self._args.gateway.keepalive_s)

    # ---- uploads and downloads ------------------------------------------------------------------

    def presign_upload(self, body: PresignUploadRequest, caller: Caller) -> PresignUploadView:
        """A signed PUT URL under `uploads/{key_id}-{group}/`, named by input type and MIME subtype, for a body of
        exactly `body.size` bytes (both backends refuse any other length); a size over the limit is refused here."""
        limit = upload_limit(body.input_type, self._model_args.values(), self._args.inputs)
        if body.size > limit:
            raise InputTooLarge("size", f"{body.size} bytes is over the {limit} byte limit of {body.input_type} files")
        subtype = re.sub(r"[^a-z0-9]", "", body.content_type.split("/")[1].lower())[:10] or "bin"
        ext = (mimetypes.guess_extension(body.content_type) or subtype).lstrip(".")  # audio/wav is not in mimetypes
        group = f"{upload_prefix(caller.key_id)}{body.job_id or uuid.uuid4().hex}"
        key = f"{group}/{body.input_type}-{uuid.uuid4().hex[:8]}.{ext}"
        expires = self._args.storage.presign_expires_s
        url = self._storage.presign_put(key, body.content_type, body.size, expires)
        return PresignUploadView(upload_url=url, key=key, expires_in=expires)

    async def presign_download(self, job_id: str, caller: Caller) -> PresignDownloadView:
        """A fresh signed URL of a completed job's output."""
        view: JobView = await self.get_job(job_id, caller)
        if view.status != "completed" or view.result_url is None:
            raise JobNotReady(f"job {job_id} is {view.status}; only completed jobs have a video")
        return PresignDownloadView(download_url=view.result_url, expires_in=self._args.storage.presign_expires_s)

    def download_file(self, key: str, expires: int, signature: str) -> FileResponse:
        """The local backend's signed GET (S3 serves its own presigned URLs)."""
        storage = self._local_storage()
        if not storage.verify("GET", key, expires, signature):
            raise Unauthorized("bad or expired signature")
        path = storage.local_path(key)
        if not path.is_file():
            raise NotFound(f"no object {key}")
        return FileResponse(path, media_type=mimetypes.guess_type(key)[0] or "application/octet-stream")

    async def upload_file(self, key: str, expires: int, size: int, signature: str, request: Request) -> dict[str, Any]:
        """The local backend's signed PUT, for presigned uploads only: a body of exactly the signed `size` (checked
        at presign against the limit) is stored; a longer one is 413, a shorter one 422, and neither stores a byte."""
        storage = self._local_storage()
        if not key.startswith("uploads/") or not storage.verify("PUT", key, expires, signature, size):
            raise Unauthorized("bad or expired signature")
        declared = request.headers.get("content-length")
        if declared is not None and int(declared) != size:  # refused before a byte is read
            raise _wrong_length(int(declared), size)
        received = 0
        with tempfile.NamedTemporaryFile(prefix="upload-") as spool:  # on disk: an upload may be hundreds of MB
            async for chunk in request.stream():
                received += len(chunk)
                if received > size:  # a chunked body states no length: counted as it comes, nothing stored
                    raise _wrong_length(received, size)
                spool.write(chunk)
            if received != size:
                raise _wrong_length(received, size)
            spool.flush()
            await asyncio.to_thread(storage.put_file, key, Path(spool.name))
        return {"key": key, "size": size}

    # ---- what the OpenAI Videos surface (serve_app.http.videos) needs besides the calls above ----

    def videos_context(self) -> VideosContext:
        """The enabled models with their args, the storage, and the limits the `/v1/videos` answers show."""
        models = {name: (self._specs[name], args) for name, args in self._model_args.items() if name in self._queues}
        retention = self._args.queue.retention_days
        return VideosContext(
            models=models,
            storage=self._storage,
            max_input_bytes=int(self._args.inputs.max_input_mb * 1024 * 1024),
            retention_s=retention * 86400 if retention else None,
        )

    # ---- health ---------------------------------------------------------------------------------

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, body): storage reachable, and per-model job counts."""
        healthy, body = True, {"status": "ok", "storage": "ok", "models": {}}
        try:
            await asyncio.to_thread(self._storage.ping)
        except Exception as exc:
            healthy, body["status"], body["storage"] = False, "degraded", f"unreachable: {type(exc).__name__}"
        for model, queue in self._queues.items():
            try:
                body["models"][model] = await asyncio.wait_for(call(queue.counts.remote()), timeout=5)
            except Exception as exc:
                healthy, body["status"] = False, "degraded"
                body["models"][model] = {"error": type(exc).__name__}
        return healthy, body

    # ---- helpers --------------------------------------------------------------------------------

    def _clean_up_later(self, prefix: str) -> None:
        """Delete `prefix` in the background, waiting out a storage outage (the answer does not wait)."""

        async def clean_up() -> None:
            try:
                await asyncio.to_thread(self._cleanup_storage.delete_prefix, prefix)
            except StorageError:
                logger.error("could not delete %s after a failed submit; it is never run", prefix)

        task = asyncio.get_running_loop().create_task(clean_up())
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    def authorize(self, request: Request) -> Caller:
        """Check the Bearer key in constant time against every key; returns the caller (a key id, never the key)."""
        if not self._args.gateway.require_auth:
            return Caller("anonymous")  # tenant `default`
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        presented = token.strip().encode()
        if scheme.lower() == "bearer" and presented:
            matched = [caller for key, caller in self._keys if hmac.compare_digest(presented, key)]  # no early exit
            if matched:
                return matched[0]
        raise Unauthorized("missing or invalid API key; send Authorization: Bearer <key>")

    def _check_upload_owner(self, spec: ModelSpec, body: BaseModel, caller: Caller) -> None:
        """An uploaded input must be the caller's own upload (its key carries the uploader's key id)."""
        for source in input_sources(spec, body):
            if source.input.uploaded and not caller.admin and not source.value.startswith(upload_prefix(caller.key_id)):
                raise InvalidInput(source.field, f"no upload at {source.value[:200]} for this API key")

    def _stage_planner(self, spec: ModelSpec, body: BaseModel, params: dict[str, Any]) -> Review:
        """A chained job's stages are planned once its inputs are staged (a stage may depend on what they hold);
        the plans go into its params."""

        def review(media: dict[str, MediaInfo], keys: dict[str, str]) -> None:
            params["stages"] = plan_stages(spec, body, media, keys, self._specs, self._model_args)

        return review

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


def _wrong_length(length: int, size: int) -> InvalidInput:
    """A PUT body whose length is not the one its URL was signed for: 413 when longer."""
    if length > size:
        return InputTooLarge("body", f"over the {size} bytes this upload URL was signed for")
    return InvalidInput("body", f"{length} bytes, but this upload URL was signed for {size}")


def upload_prefix(key_id: str) -> str:
    """Where a key's uploads go: its id first, so staging can tell whose upload a key is."""
    return f"uploads/{key_id}-"


def _digest(*parts: str | None) -> str:
    return hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()
