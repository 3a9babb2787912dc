"""Input staging: every input (URL, base64, uploaded key) is checked and copied under `jobs/{id}/inputs/`
before the job is queued, so a model replica only ever reads from storage.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import filetype
import httpx
from pydantic import BaseModel

from deployments.contract import ModelArgs, ModelSpec, StagedInput, VideoServeError
from deployments.contract.limits import MediaLimits
from deployments.limits import apply_decoder_limits, inspect_input
from deployments.media import MediaError, MediaInfo
from serve_app.errors import InvalidInput, NotFound
from serve_app.settings import InputArgs
from serve_app.storage.backends import Storage
from serve_app.storage.netguard import BlockedURL, pin_public_url, redact_url

logger = logging.getLogger("serve_app.storage.staging")
SNIFF_BYTES = 8192
# review(media, keys): a last check of all staged inputs together (input name -> what it holds / its key), run
# while the local copies still exist; raising InvalidInput refuses the job and removes what was staged.
Review = Callable[[dict[str, MediaInfo], dict[str, str]], None]


@dataclass(frozen=True)
class InputSource:
    """One input a request names: which of the model's inputs, and the field's value."""

    input: StagedInput
    value: str

    @property
    def field(self) -> str:
        return self.input.field

    @property
    def kind(self) -> str:
        return self.input.kind


def input_sources(spec: ModelSpec, request: BaseModel) -> list[InputSource]:
    """The inputs a request names, in the order its model declares them."""
    return [
        InputSource(staged, str(getattr(request, staged.field)))
        for staged in spec.inputs
        if getattr(request, staged.field) is not None
    ]


def upload_limit(kind: str, model_args: Iterable[ModelArgs], inputs: InputArgs) -> int:
    """The largest upload of input kind `kind`, in bytes: the most any of these models takes (each model's own
    limit is checked again at staging), within the spine's cap `inputs.max_input_mb`."""
    largest = max((args.limits.of(kind).max_bytes for args in model_args), default=0)
    return min(largest, int(inputs.max_input_mb * 1024 * 1024))


class InputStager:
    """Fetches, checks and stores a job's inputs; on any failure nothing of the job is left behind."""

    def __init__(self, storage: Storage, args: InputArgs) -> None:
        self._storage = storage
        self._args = args
        self._max_bytes = int(args.max_input_mb * 1024 * 1024)

    async def stage(
        self, job_id: str, request: BaseModel, spec: ModelSpec, model_args: ModelArgs, review: Review | None = None
    ) -> dict[str, str]:
        """Copy every input `request` names to storage, checked by `spec` (and `review`); return input name -> key."""
        staged: dict[str, str] = {}
        media: dict[str, MediaInfo] = {}
        sources = input_sources(spec, request)
        if not sources and review is None:
            return staged
        apply_decoder_limits(model_args.limits)
        try:
            with tempfile.TemporaryDirectory(prefix="stage-") as tmp:
                for source in sources:
                    name = source.input.name
                    local = Path(tmp) / name
                    limits = model_args.limits.of(source.kind)
                    await self._obtain(source, local, limits)
                    ext = self._check_type(source, local)
                    info = await asyncio.to_thread(self._checked, source, local, limits, spec, request, model_args)
                    key = f"jobs/{job_id}/inputs/{name}.{ext}"
                    await asyncio.to_thread(self._storage.put_file, key, local, f"{source.kind}/{ext}")
                    staged[name], media[name] = key, info
                if review is not None:
                    await asyncio.to_thread(review, media, staged)
        except BaseException:
            await asyncio.to_thread(self._storage.delete_prefix, f"jobs/{job_id}")
            raise
        return staged

    async def _obtain(self, source: InputSource, target: Path, limits: MediaLimits) -> None:
        if source.field.endswith("_url"):
            await self._fetch(source.field, source.value, target)
        elif source.field.endswith("_base64"):
            target.write_bytes(self._decode_base64(source.field, source.value))
        else:
            await self._copy_upload(source.field, source.value, target, min(self._max_bytes, limits.max_bytes))

    async def _fetch(self, field: str, url: str, target: Path) -> None:
        """GET with a size cap and a total deadline; each redirect hop is checked and pinned like the first URL."""
        try:
            async with asyncio.timeout(self._args.fetch_timeout_s):
                for _ in range(self._args.max_redirects + 1):
                    pinned = await pin_public_url(url, self._args.allow_networks)
                    # a client per hop: a pooled connection must never carry a request for another host
                    async with (
                        httpx.AsyncClient() as client,
                        client.stream("GET", pinned.address_url, **pinned.request_options()) as response,
                    ):
                        if response.is_redirect:
                            url = str(httpx.URL(url).join(response.headers["location"]))
                            continue
                        if response.status_code != 200:
                            raise InvalidInput(field, f"fetching {redact_url(url)} answered {response.status_code}")
                        await self._save_capped(field, response, target)
                        return
                raise InvalidInput(field, f"more than {self._args.max_redirects} redirects")
        except BlockedURL as exc:
            raise InvalidInput(field, f"refused: {exc}") from None
        except TimeoutError:
            raise InvalidInput(field, f"fetch took over {self._args.fetch_timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise InvalidInput(field, f"fetch failed: {type(exc).__name__}") from None

    async def _save_capped(self, field: str, response: httpx.Response, target: Path) -> None:
        declared = int(response.headers.get("content-length") or 0)
        if declared > self._max_bytes:
            raise InvalidInput(field, f"{declared} bytes is over the {self._max_bytes} byte limit")
        size = 0
        with target.open("wb") as out:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise InvalidInput(field, f"over the {self._max_bytes} byte limit")
                out.write(chunk)

    def _decode_base64(self, field: str, value: str) -> bytes:
        data = value.split(",", 1)[1] if value.startswith("data:") else value
        if len(data) * 3 // 4 > self._max_bytes:
            raise InvalidInput(field, f"decodes to over the {self._max_bytes} byte limit")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(field, "is not valid base64") from None

    async def _copy_upload(self, field: str, key: str, target: Path, max_bytes: int) -> None:
        size = await asyncio.to_thread(self._storage.size, key)
        if size is None:
            raise InvalidInput(field, f"no upload at {key}; PUT the file to its upload_url first")
        if size > max_bytes:  # checked before the download: a huge upload is never copied
            raise InvalidInput(field, f"{size} bytes is over the {max_bytes} byte limit")
        try:
            await asyncio.to_thread(self._storage.download, key, target)
        except NotFound:
            raise InvalidInput(field, f"no upload at {key}") from None

    def _check_type(self, source: InputSource, path: Path) -> str:
        """Sniff the bytes (never trust a declared type); return the file extension to store under."""
        with path.open("rb") as f:
            guess = filetype.guess(f.read(SNIFF_BYTES))
        if guess is None:
            raise InvalidInput(source.field, f"content is not a recognised {source.kind} format")
        family = guess.mime.split("/")[0]
        # An audio track may come in a video container (mp4/m4a, webm); the probe checks it holds audio.
        accepted = {"image": {"image"}, "video": {"video"}, "audio": {"audio", "video"}}[source.kind]
        if family not in accepted:
            raise InvalidInput(source.field, f"content is {guess.mime}, expected {source.kind}")
        return guess.extension

    def _checked(
        self,
        source: InputSource,
        path: Path,
        limits: MediaLimits,
        spec: ModelSpec,
        request: BaseModel,
        model_args: ModelArgs,
    ) -> MediaInfo:
        """Probe, check against the limits, and run the model's own check; any failure is the input's 4xx."""
        try:
            info = inspect_input(source.field, source.kind, path, limits)
            if spec.check_input is not None:  # may run a face detector: off the event loop, as all of this
                spec.check_input(request, model_args, source.input, info)
            return info
        except VideoServeError:
            raise
        except MediaError as exc:
            raise InvalidInput(source.field, f"unreadable {source.kind}: {exc}") from None
        except Exception:  # a hostile file may break a decoder in ways no check foresaw: still the input's fault
            logger.warning("input %s could not be checked", source.field, exc_info=True)
            raise InvalidInput(source.field, f"cannot be read as {source.kind}") from None
