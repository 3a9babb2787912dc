"""The OpenAI Videos API (`/v1/videos`): a second door onto the gateway's jobs, for the official `openai` SDK.

Same keys (`Authorization: Bearer`), same jobs, queues, ownership and webhooks as `/api/v1`; a video's id is its
job id. Each model's `ModelSpec.openai` says which `model` names it answers to and how the standard fields map
onto its request; this module names no model. Errors leave in OpenAI's envelope, on `/v1` only.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ValidationError

from deployments.contract import ModelArgs, ModelSpec, OpenAIMapping, Reference
from serve_app.errors import (
    BudgetExhausted,
    InvalidInput,
    JobNotFound,
    NotFound,
    QueueFull,
    RateLimited,
    VideoServeError,
)
from serve_app.http.gateway import Gateway
from serve_app.http.videos_create import CREATE_BODY, UploadLimits, read_create
from serve_app.http.videos_schemas import (
    Video,
    VideoDeleted,
    VideoList,
    VideosContext,
    openai_error,
    video_of,
)
from serve_app.jobs.store import INVERTED_MS_BASE, record_key
from serve_app.schemas import Caller, CreatedView, JobRecord, JobView

logger = logging.getLogger("serve_app.http.videos")
bearer = HTTPBearer(auto_error=False, description="One of the keys in the API_KEYS environment variable.")
POLL_AFTER_MS = "500"  # `openai-poll-after-ms`: how often the SDK's create_and_poll asks again
Variant = Literal["video", "thumbnail", "spritesheet"]


class OpenAIRoute(APIRoute):
    """A route whose every error leaves in OpenAI's envelope (the app's handlers keep /api/v1's own)."""

    def get_route_handler(self) -> Any:
        handle = super().get_route_handler()

        async def handle_in_envelope(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                error = exc.errors()[0]
                param = str(error["loc"][-1]) if error.get("loc") else None
                return openai_error(400, f"{param}: {error['msg']}", param, "invalid_value")
            except InvalidInput as exc:
                return openai_error(400, exc.message, exc.field, "invalid_value")
            except VideoServeError as exc:
                return _retry_hint(request, _error_of(exc))
            except HTTPException as exc:
                return openai_error(exc.status_code, str(exc.detail))
            except Exception:
                logger.exception("unhandled error on %s %s", request.method, request.url.path)
                response = openai_error(500, "internal error; the request id is in the server log", None, "internal")
                return _retry_hint(request, response)

        return handle_in_envelope


def _error_of(exc: VideoServeError) -> JSONResponse:
    """A spine error in OpenAI's envelope. A spent budget is OpenAI's `insufficient_quota`, not to be retried
    (`x-should-retry: false`); a full queue or a tenant limit says when to retry (`Retry-After`)."""
    quota = isinstance(exc, BudgetExhausted)
    response = openai_error(exc.status_code, exc.message, None, exc.code, "insufficient_quota" if quota else None)
    if isinstance(exc, (QueueFull, RateLimited)):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    if quota:
        response.headers["x-should-retry"] = "false"
    return response


def _retry_hint(request: Request, response: JSONResponse) -> JSONResponse:
    """The SDK retries a create on 5xx without an idempotency key: a create that may have stored its job says
    not to (`x-should-retry: false`) unless an `Idempotency-Key` makes the retry return the same job."""
    if response.status_code >= 500 and request.method == "POST" and "idempotency-key" not in request.headers:
        response.headers["x-should-retry"] = "false"
    return response


class VideosSurface:
    """The `/v1/videos` calls, on a gateway's jobs."""

    def __init__(self, jobs: Gateway, context: VideosContext) -> None:
        self._jobs, self._context = jobs, context
        self._limits = UploadLimits(context.storage, context.max_input_bytes)
        self._names: dict[str, tuple[ModelSpec, ModelArgs]] = {}
        for spec, args in context.models.values():
            if spec.openai is not None:
                for name in (*spec.openai.names(args), spec.name):
                    self._names.setdefault(name, (spec, args))

    async def create(self, request: Request, idempotency_key: str | None) -> Video:
        """Queue a job from an OpenAI create request (JSON or multipart)."""
        caller = self._jobs.authorize(request)
        name, fields = await read_create(request, caller, self._limits)
        spec, args, name = self._served(name)
        mapping = _mapping(spec)
        body = _checked(spec, mapping, mapping.request(fields, args))
        labels = {"api": "openai", "model": name, **({"prompt": fields.prompt} if fields.prompt else {})}
        return await self._submit(spec, mapping, body, caller, idempotency_key, labels)

    async def retrieve(self, video_id: str, request: Request) -> Video:
        """The Video object of one of the caller's jobs."""
        return self._video(await self._jobs.get_job(video_id, self._jobs.authorize(request)))

    async def list(self, request: Request, after: str | None, limit: int, order: str) -> VideoList:
        """A page of the caller's videos, newest first; `after` is the last id of the page before."""
        caller = self._jobs.authorize(request)
        if order != "desc":
            raise InvalidInput("order", "only desc (newest first) is served")
        cursor = None
        if after is not None:
            try:
                previous = await self._jobs.get_job(after, caller)
            except JobNotFound:
                raise InvalidInput("after", f"no video {after[:80]}") from None
            cursor = _cursor(previous)
        page = await self._jobs.list_jobs(caller, None, None, limit, cursor)
        data = [self._video(view) for view in page.jobs]
        first, last = (data[0].id, data[-1].id) if data else (None, None)
        return VideoList(data=data, first_id=first, last_id=last, has_more=page.next_cursor is not None)

    async def content(self, video_id: str, variant: Variant, request: Request) -> RedirectResponse:
        """A redirect to a fresh signed URL of the video, its thumbnail or its spritesheet."""
        view = await self._jobs.get_job(video_id, self._jobs.authorize(request))
        if view.status != "completed":
            raise NotFound(f"video {video_id} is {view.status}; its content exists once it is completed")
        url = {"video": view.result_url, "thumbnail": view.thumbnail_url, "spritesheet": view.spritesheet_url}[variant]
        if url is None:
            raise NotFound(f"video {video_id} has no {variant}")
        return RedirectResponse(url, status_code=302)

    async def delete(self, video_id: str, request: Request) -> VideoDeleted:
        """Remove the video, its previews, inputs and record; a running job is cancelled first."""
        await self._jobs.delete_job(video_id, self._jobs.authorize(request))
        return VideoDeleted(id=video_id)

    async def remix(self, video_id: str, request: Request, idempotency_key: str | None) -> Video:
        """A new video from a completed one and a new prompt, as its model's mapping defines a remix."""
        caller = self._jobs.authorize(request)
        name, fields = await read_create(request, caller, self._limits)
        for given, value in (("model", name), ("seconds", fields.seconds), ("size", fields.size)):
            if value is not None:
                raise InvalidInput(given, "a remix keeps the source video's; give only prompt (and extra fields)")
        if fields.prompt is None:
            raise InvalidInput("prompt", "is required: what the remix shows")
        source = await self._jobs.get_job(video_id, caller)
        spec, _ = self._context.models[source.model]
        mapping = _mapping(spec)
        if mapping.remix is None:
            raise InvalidInput("video_id", f"videos of {spec.name} cannot be remixed")
        if source.status != "completed":
            raise InvalidInput("video_id", f"video {video_id} is {source.status}; only a completed one can be remixed")
        # a copy under the caller's uploads (the model reads inputs from there), one per source: retries name it too
        upload = f"uploads/{caller.key_id}-v1/video-remix-{video_id}.mp4"
        await asyncio.to_thread(self._context.storage.copy, await self._output_key(video_id), upload)
        body = mapping.remix(fields.prompt, Reference(kind="video", key=upload), source.params, dict(fields.extra))
        labels = {"api": "openai", "model": self._video(source).model, "prompt": fields.prompt}
        labels["remixed_from"] = video_id
        return await self._submit(spec, mapping, _checked(spec, mapping, body), caller, idempotency_key, labels)

    async def _output_key(self, video_id: str) -> str:
        """Where a job's video is: its record says (the key is set at submit and never changes, so the record as
        first written will do; the caller's access was checked by reading the job through its queue)."""
        raw = await asyncio.to_thread(self._context.storage.get_bytes, record_key(video_id))
        return JobRecord.model_validate_json(raw).output_key

    async def _submit(
        self,
        spec: ModelSpec,
        mapping: OpenAIMapping,
        body: BaseModel,
        caller: Caller,
        idempotency_key: str | None,
        labels: dict[str, str],
    ) -> Video:
        try:
            created, _ = await self._jobs.generate(body, caller, idempotency_key, labels=labels)
        except InvalidInput as exc:  # the model's plan or input checks name its own fields
            field = mapping.fields.get(exc.field, exc.field)
            raise InvalidInput(field, exc.message.removeprefix(f"{exc.field}: ")) from None
        return self._video(_as_view(created, labels))

    def _served(self, name: str | None) -> tuple[ModelSpec, ModelArgs, str]:
        """The model a `model` name stands for; a 400 naming `model` and the served names otherwise."""
        served = ", ".join(self._names)
        if name is None:
            if len({spec.name for spec, _ in self._names.values()}) == 1:
                name = next(iter(self._names))
            else:
                raise InvalidInput("model", f"is required; this deployment serves {served}")
        if name not in self._names:
            raise InvalidInput("model", f"{name[:64]} is not served by this deployment; it serves {served}")
        spec, args = self._names[name]
        return spec, args, name

    def _video(self, view: JobView) -> Video:
        spec, args = self._context.models.get(view.model, (None, None))
        seconds = size = None
        name = view.model
        if spec is not None and spec.openai is not None:
            seconds, size = spec.openai.describe(view.params, view.details)
            name = spec.openai.names(args)[0]
        return video_of(view, name, seconds, size, int(self._context.retention_s or 0) or None)


def _mapping(spec: ModelSpec) -> OpenAIMapping:
    assert spec.openai is not None  # only models with a mapping are served here (VideosSurface.__init__)
    return spec.openai


def _checked(spec: ModelSpec, mapping: OpenAIMapping, body: dict[str, Any]) -> BaseModel:
    """The model's request from the mapped body; its first error names the OpenAI field (or the extra field)."""
    try:
        return spec.request.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        field = str(error["loc"][0]) if error["loc"] else "body"
        if not error["loc"] and ": " in message:  # a cross-field rule names its field first
            field, message = message.split(": ", 1)
        if error["type"] == "extra_forbidden":
            message = f"unknown field: neither an OpenAI field nor one of the {spec.name} model's"
        raise InvalidInput(mapping.fields.get(field, field), message) from None


def _cursor(view: JobView) -> str:
    """The list cursor that follows `view` (the gateway's list index entry, `jobstore.listing_keys`)."""
    entry = f"{INVERTED_MS_BASE - int(view.created_at.timestamp() * 1000):013d}-{view.job_id}"
    return base64.urlsafe_b64encode(entry.encode()).decode().rstrip("=")


def _as_view(created: CreatedView, labels: dict[str, str]) -> JobView:
    """A just-created job as a view, with no second call to its queue (a create never fails once stored)."""
    return JobView(
        job_id=created.job_id,
        model=created.model,
        status=created.status,
        progress=0,
        stage="queued",
        queue_position=None,
        result_url=None,
        error_message=None,
        error_code=None,
        created_at=created.created_at,
        started_at=None,
        completed_at=None,
        attempts=0,
        params=created.params,
        details={},
        weights=None,
        labels=labels,
    )


def add_video_routes(app: FastAPI, jobs: Gateway) -> None:
    """Mount `/v1/videos` on `app`, on `jobs` (the gateway)."""
    surface = VideosSurface(jobs, jobs.videos_context())
    router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute, dependencies=[Depends(bearer)])

    @router.post("/videos", response_model=Video, openapi_extra=CREATE_BODY)
    async def create_video(request: Request) -> Video:
        """Create a video (OpenAI `POST /v1/videos`): JSON or multipart; `Idempotency-Key` honoured."""
        return await surface.create(request, request.headers.get("idempotency-key"))

    @router.get("/videos", response_model=VideoList)
    async def list_videos(
        request: Request,
        after: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    ) -> VideoList:
        """The caller's videos, newest first."""
        return await surface.list(request, after, limit, order)

    @router.get("/videos/{video_id}", response_model=Video)
    async def retrieve_video(video_id: str, request: Request) -> JSONResponse:
        """A video's status and progress."""
        video = await surface.retrieve(video_id, request)
        return JSONResponse(video.model_dump(mode="json"), headers={"openai-poll-after-ms": POLL_AFTER_MS})

    @router.get("/videos/{video_id}/content", response_class=RedirectResponse, status_code=302)
    async def video_content(video_id: str, request: Request, variant: Variant = "video") -> RedirectResponse:
        """A redirect to the mp4 (`video`), its WebP poster (`thumbnail`) or its JPEG spritesheet."""
        return await surface.content(video_id, variant, request)

    @router.delete("/videos/{video_id}", response_model=VideoDeleted)
    async def delete_video(video_id: str, request: Request) -> VideoDeleted:
        """Delete a video and its stored assets; a job still running is cancelled first."""
        return await surface.delete(video_id, request)

    @router.post("/videos/{video_id}/remix", response_model=Video)
    async def remix_video(video_id: str, request: Request) -> Video:
        """A new video from a completed one and a new `prompt` (LTX-2: the video extended, conditioned on it)."""
        return await surface.remix(video_id, request, request.headers.get("idempotency-key"))

    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def no_such_route(path: str, request: Request) -> Response:
        """Anything else under /v1 is a 404 in OpenAI's envelope, as the SDK expects."""
        raise NotFound(f"no route {request.method} /v1/{path[:100]}")

    app.include_router(router)
