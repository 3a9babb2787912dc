"""Fixtures for the serve_app tests: a resolver that rebinds one name (no DNS server can be run here)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

REBINDING_HOST = "rebind.example"


class RebindingDNS:
    """Stands in for `socket.getaddrinfo`: REBINDING_HOST answers 127.0.0.1 on the first lookup (a network the
    tests allow) and 10.255.0.1 (private, refused) on every later one; every other name resolves for real."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.lookups = 0

    def __call__(self, host: str | bytes | None, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name != REBINDING_HOST:
            return self._real(host, port, *args, **kwargs)
        self.lookups += 1
        return self._real("127.0.0.1" if self.lookups == 1 else "10.255.0.1", port, *args, **kwargs)


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[RebindingDNS]:
    """The process's resolver replaced (asyncio, anyio and so httpx all go through socket.getaddrinfo)."""
    dns = RebindingDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    yield dns
