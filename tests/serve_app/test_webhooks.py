"""Webhook signing (Standard Webhooks) and the outbound URL guard, as units; delivery end to end is in
test_delivery.py."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time

import pytest

from serve_app.netguard import BlockedURL, check_public_url, redact_url
from serve_app.webhooks import sign, verify

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


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/x", "loopback"),
        ("http://localhost:8080/x", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.5/x", "private"),
        ("http://192.168.1.1/x", "private"),
        ("http://[::1]/x", "loopback"),
        ("http://[::ffff:127.0.0.1]/x", "loopback"),
        ("http://0.0.0.0/x", "unspecified"),
        ("file:///etc/passwd", "not an http"),
        ("gopher://example.com/", "not an http"),
    ],
)
def test_internal_targets_are_refused(url: str, reason: str) -> None:
    with pytest.raises(BlockedURL, match=reason):
        asyncio.run(check_public_url(url))


def test_public_addresses_and_allowed_networks_pass() -> None:
    from ipaddress import ip_network

    asyncio.run(check_public_url("http://93.184.215.14/video.mp4"))
    asyncio.run(check_public_url("http://127.0.0.1:9000/hook", [ip_network("127.0.0.0/8")]))
    with pytest.raises(BlockedURL):
        asyncio.run(check_public_url("http://10.0.0.1/hook", [ip_network("127.0.0.0/8")]))


def test_redacted_urls_keep_no_query_string() -> None:
    assert redact_url("https://hooks.example.com/a/b?token=s3cret#x") == "https://hooks.example.com/a/b"
