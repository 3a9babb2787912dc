"""What the sync and async clients share: settings, request preparation, retries, and SSE parsing."""

from __future__ import annotations

import json
import mimetypes
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from video_serve_client.errors import ConflictError, error_from

TERMINAL = frozenset({"completed", "failed", "cancelled"})
RETRY_STATUSES = frozenset({429, 503})
UPLOAD_KINDS = ("image", "video", "audio")
DEFAULT_CONTENT_TYPES = {"image": "image/png", "video": "video/mp4", "audio": "audio/wav"}
Variant = Literal["video", "thumbnail", "spritesheet"]  # what `download` writes: the mp4 or one of its previews
VARIANTS: tuple[str, ...] = ("video", "thumbnail", "spritesheet")


def preview_url(job: dict[str, Any], variant: str) -> str:
    """The signed URL of a completed job's `thumbnail` (WebP) or `spritesheet` (JPEG) from its view."""
    url = job.get(f"{variant}_url")
    if url is None:
        raise ConflictError(409, "job_not_ready", f"job {job['job_id']} is {job['status']}; it has no {variant} yet")
    return url


def resolve(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    """The base URL and key, from the arguments or else VIDEO_SERVE_URL / VIDEO_SERVE_API_KEY."""
    base_url = base_url or os.environ.get("VIDEO_SERVE_URL") or "http://127.0.0.1:8000"
    api_key = api_key or os.environ.get("VIDEO_SERVE_API_KEY")
    if not api_key:
        raise ValueError("no API key: pass api_key or set VIDEO_SERVE_API_KEY")
    return base_url.rstrip("/"), api_key


@dataclass
class Upload:
    """A local file a request names, to upload through presign and pass as `field` (a `*_key`)."""

    field: str
    path: Path
    kind: str
    content_type: str


@dataclass
class PreparedRequest:
    body: dict[str, Any]
    uploads: list[Upload] = field(default_factory=list)


def prepare(model: str, fields: dict[str, Any]) -> PreparedRequest:
    """The request body, with every local file path moved out to an upload: `image_url="face.png"`,
    `image_key="face.png"` and `image="face.png"` all become `image_key` once uploaded."""
    prepared = PreparedRequest(body={"model": model})
    for name, value in fields.items():
        if value is None:
            continue
        path = Path(value) if isinstance(value, (str, Path)) else None
        is_file = path is not None and not str(value).startswith(("http://", "https://", "uploads/")) and path.is_file()
        if not is_file or name.endswith("_base64"):
            prepared.body[name] = str(value) if isinstance(value, Path) else value
            continue
        assert path is not None
        stem = name.removesuffix("_url").removesuffix("_key")
        guessed = mimetypes.guess_type(path.name)[0]
        kind = stem if stem in UPLOAD_KINDS else (guessed or "image/").split("/")[0]
        content_type = guessed if guessed and guessed.startswith(kind + "/") else DEFAULT_CONTENT_TYPES.get(kind, "")
        if kind == "audio" and content_type == "audio/x-wav":
            content_type = "audio/wav"
        prepared.uploads.append(Upload(f"{stem}_key", path, kind, content_type))
    return prepared


def retry_after(response: httpx.Response, attempt: int) -> float:
    """Seconds to wait before retrying a 429/503: the server's Retry-After, else a short backoff."""
    try:
        return min(float(response.headers.get("retry-after", "")), 60.0)
    except ValueError:
        return min(0.5 * 2**attempt, 10.0)


def check(response: httpx.Response) -> Any:
    """The JSON body of a 2xx answer; a typed error otherwise."""
    if response.is_success:
        return response.json()
    try:
        body = response.json()
    except ValueError:
        body = response.text
    raise error_from(response.status_code, body)


def usage_params(start: str | None, end: str | None, group_by: str, tenant: str | None) -> dict[str, str]:
    """Query parameters of GET /api/v1/usage; days as YYYY-MM-DD (UTC), both included."""
    given = {"start": start, "end": end, "group_by": group_by, "tenant": tenant}
    return {name: value for name, value in given.items() if value}


def usage_table(report: dict[str, Any]) -> str:
    """A usage report as a fixed-width table: one row per tenant and day (or model), then the totals."""
    header = ("TENANT", report["group_by"].upper(), "JOBS", "FAILED", "QUEUED_S", "RUN_S", "GPU_S", "BILLED_S", "COST")
    rows = [header] + [_usage_cells(row["tenant"], row["group"], row) for row in report["rows"]]
    rows.append(_usage_cells("total", f"{report['start']}..{report['end']}", report["totals"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _usage_cells(tenant: str, group: str, sums: dict[str, Any]) -> tuple[str, ...]:
    jobs = sums["jobs"]
    return (
        tenant,
        group,
        str(sum(jobs.values())),
        str(jobs.get("failed", 0)),
        f"{sums['queued_s']:.1f}",
        f"{sums['run_s']:.1f}",
        f"{sums['gpu_s']:.1f}",
        f"{sums['billable_gpu_s']:.1f}",
        f"{sums['cost']:.4f}",
    )


def new_idempotency_key() -> str:
    return f"vsc-{uuid.uuid4().hex}"


class SSEParser:
    """Server-Sent Events from lines: `{"id", "event", "data"}` per message; comments are dropped."""

    def __init__(self) -> None:
        self._message: dict[str, str] = {}

    def feed(self, line: str) -> Iterator[dict[str, Any]]:
        if line.startswith(":"):
            return
        if line:
            name, _, value = line.partition(":")
            self._message[name] = value.removeprefix(" ")
            return
        message, self._message = self._message, {}
        if "data" in message:
            data = json.loads(message["data"])
            yield {"id": message.get("id"), "event": message.get("event", "message"), "data": data}
