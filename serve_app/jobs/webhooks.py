"""Terminal-state webhooks, signed per the Standard Webhooks spec and retried with backoff."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from serve_app.settings import WebhookArgs
from serve_app.storage.netguard import BlockedURL, pin_public_url, redact_url

logger = logging.getLogger("serve_app.jobs.webhooks")


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (a secret without the prefix is used as raw bytes)."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance_s: int = 300) -> bool:
    """Receiver side of `sign`: constant-time compare, timestamp within `tolerance_s`."""
    msg_id, timestamp = headers["webhook-id"], int(headers["webhook-timestamp"])
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    expected = sign(secret, msg_id, timestamp, body).encode()
    return any(hmac.compare_digest(expected, s.encode()) for s in headers["webhook-signature"].split())


@dataclass
class Attempt:
    """The outcome of one delivery try, handed to the caller to persist."""

    number: int
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def deliver(
    url: str,
    payload: dict,
    msg_id: str,
    secret: str,
    args: WebhookArgs,
    on_attempt: Callable[[Attempt], Awaitable[None]],
    slots: asyncio.Semaphore,
    first_attempt: int = 1,
) -> bool:
    """POST `payload` until a 2xx or `args.max_attempts` tries; `on_attempt` sees every try. True if delivered.
    Each try holds one of `slots` (shared by a queue's deliveries); the waits between tries hold none."""
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    async with httpx.AsyncClient(timeout=args.timeout_s, follow_redirects=False) as client:
        for number in range(first_attempt, args.max_attempts + 1):
            async with slots:
                attempt = await _try_once(client, url, body, msg_id, secret, number, args)
            await on_attempt(attempt)
            if attempt.delivered:
                return True
            if number < args.max_attempts:
                await asyncio.sleep(min(args.backoff_s * 2 ** (number - 1), args.backoff_max_s))
    logger.warning("webhook %s to %s gave up after %d tries", msg_id, redact_url(url), args.max_attempts)
    return False


async def _try_once(
    client: httpx.AsyncClient, url: str, body: bytes, msg_id: str, secret: str, number: int, args: WebhookArgs
) -> Attempt:
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
    try:
        pinned = await pin_public_url(url, args.allow_networks)  # again at send time: DNS may have changed
        response = await client.post(pinned.address_url, content=body, **pinned.request_options(headers))
    except (BlockedURL, httpx.HTTPError) as exc:
        logger.info("webhook %s try %d to %s failed: %s", msg_id, number, redact_url(url), type(exc).__name__)
        return Attempt(number, None, f"{type(exc).__name__}: {exc}"[:300])
    logger.info("webhook %s try %d to %s answered %d", msg_id, number, redact_url(url), response.status_code)
    return Attempt(number, response.status_code, None)
