"""The outbound URL guard: refused targets, allowed networks, and pinning against DNS rebinding."""

from __future__ import annotations

import asyncio
import time
from ipaddress import ip_network

import httpx
import pytest

from serve_app.jobs.webhooks import sign
from serve_app.storage.netguard import BlockedURL, pin_public_url, redact_url
from tests.conftest import WEBHOOK_SECRET
from tests.serve_app.conftest import REBINDING_HOST, RebindingDNS

LOOPBACK = [ip_network("127.0.0.0/8")]


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
        asyncio.run(pin_public_url(url))


def test_public_addresses_and_allowed_networks_pass() -> None:
    from ipaddress import ip_network

    asyncio.run(pin_public_url("http://93.184.215.14/video.mp4"))
    asyncio.run(pin_public_url("http://127.0.0.1:9000/hook", [ip_network("127.0.0.0/8")]))
    with pytest.raises(BlockedURL):
        asyncio.run(pin_public_url("http://10.0.0.1/hook", [ip_network("127.0.0.0/8")]))


def test_redacted_urls_keep_no_query_string() -> None:
    assert redact_url("https://hooks.example.com/a/b?token=s3cret#x") == "https://hooks.example.com/a/b"


def test_a_pinned_url_keeps_the_host_for_http_and_tls_and_targets_the_checked_address() -> None:
    pinned = asyncio.run(pin_public_url("https://user:pw@93.184.215.14:8443/a/b?token=1"))
    assert pinned.address_url == "https://user:pw@93.184.215.14:8443/a/b?token=1"
    assert pinned.request_options({"x-a": "1"}) == {
        "headers": {"x-a": "1", "host": "93.184.215.14:8443"},
        "extensions": {"sni_hostname": "93.184.215.14"},
    }


def test_a_rebinding_host_is_reached_at_the_address_that_was_checked(rebinding_dns: RebindingDNS, webhook_receiver):
    port = httpx.URL(webhook_receiver.url).port
    pinned = asyncio.run(pin_public_url(f"http://{REBINDING_HOST}:{port}/hook", LOOPBACK))
    assert pinned.address_url == f"http://127.0.0.1:{port}/hook"
    assert pinned.host_header == f"{REBINDING_HOST}:{port}"
    # The name now answers a private address; a request that resolved it again would go there.
    with pytest.raises(BlockedURL, match=r"10\.255\.0\.1, a private"):
        asyncio.run(pin_public_url(f"http://{REBINDING_HOST}:{port}/hook", LOOPBACK))
    now = int(time.time())
    signed = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(WEBHOOK_SECRET, "msg_1", now, b"{}"),
    }
    with httpx.Client() as client:
        response = client.post(pinned.address_url, content=b"{}", **pinned.request_options(signed))
    assert response.status_code == 200
    assert webhook_receiver.deliveries[0]["headers"]["host"] == f"{REBINDING_HOST}:{port}"
    assert rebinding_dns.lookups == 2
