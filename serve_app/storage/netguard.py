"""Outbound URLs (inputs to fetch, webhooks to call) must not reach loopback, link-local or private hosts."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

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


@dataclass(frozen=True)
class PinnedURL:
    """A checked URL bound to the address its host resolved to at the check. Requests go to that address, so
    a second DNS answer (rebinding) cannot send them elsewhere; Host and the TLS name stay the URL's host, so
    virtual hosts and certificate checks work as if the name had been used."""

    address_url: str  # the same URL with its host replaced by the checked address
    host_header: str  # the URL's host[:port]
    hostname: str  # what TLS sends as SNI and checks the certificate against

    def request_options(self, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Keyword arguments for an httpx request to `address_url`, with `headers` added."""
        return {"headers": {**(headers or {}), "host": self.host_header}, "extensions": {"sni_hostname": self.hostname}}


async def pin_public_url(url: str, allow_networks: Iterable[IPNetwork] = ()) -> PinnedURL:
    """Resolve `url`'s host once; raise `BlockedURL` unless every address is public or explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedURL(f"{url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BlockedURL(f"host {parts.hostname!r} does not resolve ({exc.strerror})") from None
    allowed = tuple(allow_networks)
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for ip in addresses:
        label = _why_not_public(ip)
        if label and not any(ip in net for net in allowed):
            raise BlockedURL(f"host {parts.hostname!r} resolves to {ip}, {label} address")
    target = httpx.URL(url)
    return PinnedURL(
        address_url=str(target.copy_with(host=str(addresses[0]))),  # the resolver's preferred address
        host_header=target.netloc.decode("ascii"),
        hostname=parts.hostname,
    )


def redact_url(url: str) -> str:
    """Scheme, host and path only: query strings often carry tokens, and logs must not."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{parts.path}"
