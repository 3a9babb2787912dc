"""Webhook signing (Standard Webhooks) and one delivery, as units; delivery through the app is in
test_delivery.py."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from ipaddress import ip_network

import httpx

from serve_app.jobs.webhooks import Attempt, deliver, sign, verify
from serve_app.settings import WebhookArgs
from tests.conftest import WEBHOOK_SECRET
from tests.serve_app.conftest import REBINDING_HOST

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_signature_matches_the_standard_webhooks_construction() -> None:
    body, timestamp = b'{"job_id":"ltx2-1"}', 1_700_000_000
    expected = hmac.new(b"0123456789abcdef0123456789abcdef", b"msg_1.1700000000." + body, hashlib.sha256)
    assert sign(SECRET, "msg_1", timestamp, body) == "v1," + base64.b64encode(expected.digest()).decode()


def test_verify_accepts_a_fresh_signature_and_refuses_tampering_and_replays() -> None:
    body, now = b'{"status":"completed"}', int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(SECRET, "msg_1", now, body),
    }
    assert verify(SECRET, headers, body)
    assert not verify(SECRET, headers, body + b" ")
    assert not verify(SECRET, {**headers, "webhook-id": "msg_2"}, body)
    old = now - 3600
    stale = {**headers, "webhook-timestamp": str(old), "webhook-signature": sign(SECRET, "msg_1", old, body)}
    assert not verify(SECRET, stale, body)


def test_a_delivery_goes_to_the_address_its_check_resolved(rebinding_dns, webhook_receiver) -> None:
    port = httpx.URL(webhook_receiver.url).port
    args = WebhookArgs(max_attempts=1, timeout_s=2, allow_networks=[ip_network("127.0.0.0/8")])
    attempts: list[Attempt] = []

    async def record(attempt: Attempt) -> None:
        attempts.append(attempt)

    url = f"http://{REBINDING_HOST}:{port}/hook"
    delivered = deliver(url, {"job_id": "ltx2-1"}, "msg_1", WEBHOOK_SECRET, args, record, asyncio.Semaphore(1))
    assert asyncio.run(delivered), attempts
    [delivery] = webhook_receiver.deliveries
    assert delivery["valid"] and delivery["headers"]["host"] == f"{REBINDING_HOST}:{port}"
    assert rebinding_dns.lookups == 1  # the connection used the checked answer, not a second lookup


def test_deliveries_sharing_slots_never_have_more_in_flight(webhook_receiver) -> None:
    args = WebhookArgs(max_attempts=1, timeout_s=30, allow_networks=[ip_network("127.0.0.0/8")])
    webhook_receiver.delay_s = 0.2
    outcomes: list[Attempt] = []

    async def record(attempt: Attempt) -> None:
        outcomes.append(attempt)

    async def many() -> list[bool]:
        slots = asyncio.Semaphore(3)
        sends = (
            deliver(webhook_receiver.url, {"n": n}, f"msg_{n}", WEBHOOK_SECRET, args, record, slots) for n in range(9)
        )
        return await asyncio.gather(*sends)

    assert asyncio.run(many()) == [True] * 9, outcomes
    assert 2 <= webhook_receiver.most_in_flight <= 3, webhook_receiver.most_in_flight
