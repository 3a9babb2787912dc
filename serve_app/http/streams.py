"""The gateway's calls to the queues: their errors as the callers' errors, and a job's event stream as SSE lines."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from ray.exceptions import RayActorError, RayTaskError

from serve_app.errors import Unavailable, VideoServeError

logger = logging.getLogger("serve_app.http.streams")


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


async def sse_lines(stream: Any, keepalive_s: float) -> AsyncIterator[str]:
    """Each queue event as an SSE message; a comment when none came for `keepalive_s` (proxies drop idle
    connections). The pending read is kept across keep-alives: cancelling it would end the handle stream."""
    events = aiter(stream)
    next_event = asyncio.ensure_future(anext(events))
    try:
        while True:
            done, _ = await asyncio.wait({next_event}, timeout=keepalive_s)
            if not done:
                yield ": keep-alive\n\n"
                continue
            try:
                event = next_event.result()
            except StopAsyncIteration:
                return
            except (RayActorError, RayTaskError) as exc:  # the client reconnects with Last-Event-ID
                logger.warning("event stream ended early: %s", type(exc).__name__)
                return
            yield f"id: {event['id']}\nevent: {event['event']}\ndata: {json.dumps(event['data'])}\n\n"
            next_event = asyncio.ensure_future(anext(events))
    finally:
        next_event.cancel()
        stream.cancel()
