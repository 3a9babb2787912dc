"""Outbound URLs (inputs to fetch, webhooks to call) must not reach loopback, link-local or private hosts."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedURL(ValueError):
    """The URL is not http(s), does not resolve, or resolves to an address that is not public."""


def _why_not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for attribute, label in (
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local"),
        ("is_unspecified", "an unspecified"),
        ("is_multicast", "a multicast"),
        ("is_reserved", "a reserved"),
        ("is_private", "a private"),
    ):
        if getattr(ip, attribute):
            return label
    return None


async def check_public_url(url: str, allow_networks: Iterable[IPNetwork] = ()) -> None:
    """Raise `BlockedURL` unless every address `url`'s host resolves to is public or explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedURL(f"{url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BlockedURL(f"host {parts.hostname!r} does not resolve ({exc.strerror})") from None
    allowed = tuple(allow_networks)
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        label = _why_not_public(ip)
        if label and not any(ip in net for net in allowed):
            raise BlockedURL(f"host {parts.hostname!r} resolves to {ip}, {label} address")


def redact_url(url: str) -> str:
    """Scheme, host and path only: query strings often carry tokens, and logs must not."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{parts.path}"
