"""The gateway as Serve's ingress: the `Gateway` with its FastAPI app. Serve calls `__serve_build_asgi_app__` once
the replica is constructed, so the routes are built from the catalogue the gateway was handed. The dependency
runs one way: this module joins `routes` (HTTP) and `gateway` (the API's logic); the gateway knows no route."""

from __future__ import annotations

from fastapi import FastAPI

from serve_app.http.gateway import Gateway
from serve_app.http.routes import build_api


class GatewayIngress(Gateway):
    """The ingress deployment class (bound by the app builder)."""

    def __serve_build_asgi_app__(self) -> FastAPI:
        """The routes, with this catalogue's request body; each request schema's upload-key fields are marked
        with their media kind in /openapi.json."""
        specs = self._specs.values()
        uploads = {spec.request.__name__: {i.field: i.kind for i in spec.inputs if i.uploaded} for spec in specs}
        return build_api(self, self._request_type, frozenset(self._specs), self._args.storage, uploads)
