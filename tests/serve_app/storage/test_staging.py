"""Input staging of URL inputs against a real HTTP server on loopback: a fetch, redirects (each hop checked),
the size cap, and DNS rebinding. Loopback is allowed here as `inputs.allow_networks` lets an internal CDN be."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np
import pytest

from deployments.ltx2.request import LTX2Request
from deployments.ltx2.spec import SPEC as LTX2
from serve_app.errors import InvalidInput
from serve_app.settings import InputArgs
from serve_app.storage.backends import LocalStorage
from serve_app.storage.staging import InputStager
from tests.serve_app.conftest import REBINDING_HOST

PNG = cv2.imencode(".png", np.full((64, 96, 3), 200, np.uint8))[1].tobytes()


class MediaServer:
    """Serves `/face.png`, `/big` (2 MiB streamed without a length) and `/redirect?to=URL` (a 302), and records
    the Host header of every request."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # no length needed: the body ends when the connection closes

            def do_GET(self) -> None:
                server.hosts.append(self.headers["host"])
                path = urlsplit(self.path)
                if path.path == "/face.png":
                    self._send(200, {"content-type": "image/png", "content-length": str(len(PNG))}, PNG)
                elif path.path == "/big":
                    self._send(200, {"content-type": "image/png"}, PNG + bytes(2 * 1024 * 1024))
                elif path.path == "/redirect":
                    self._send(302, {"location": parse_qs(path.query)["to"][0]}, b"")
                else:
                    self._send(404, {}, b"")

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture(scope="module")
def media_server() -> Iterator[MediaServer]:
    server = MediaServer()
    yield server
    server.close()


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "data", "http://127.0.0.1:1", b"k" * 32)


def stager(storage: LocalStorage, **inputs: Any) -> InputStager:
    return InputStager(storage, InputArgs.model_validate({"allow_networks": ["127.0.0.0/8"], **inputs}))


def stage(stager: InputStager, image_url: str, job_id: str = "ltx2-1") -> dict[str, str]:
    request = LTX2Request.model_validate({"model": "ltx2", "prompt": "x", "image_url": image_url})
    return asyncio.run(stager.stage(job_id, request, LTX2, LTX2.args()))


def refusal(stager: InputStager, image_url: str) -> str:
    """The message of the 422 for a job of its own; staged files of other jobs stay."""
    with pytest.raises(InvalidInput) as caught:
        stage(stager, image_url, job_id="ltx2-refused")
    assert caught.value.field == "image_url"
    return str(caught.value)


def test_a_url_input_is_fetched_sniffed_and_stored(storage, media_server) -> None:
    staged = stage(stager(storage), f"{media_server.url}/face.png")
    assert staged == {"image": "jobs/ltx2-1/inputs/image.png"}
    assert storage.get_bytes(staged["image"]) == PNG


def test_redirects_are_followed_and_each_hop_is_checked(storage, media_server) -> None:
    hop = f"{media_server.url}/redirect?to={media_server.url}/face.png"
    assert stage(stager(storage), hop) == {"image": "jobs/ltx2-1/inputs/image.png"}
    to_metadata = f"{media_server.url}/redirect?to=http://169.254.169.254/latest/meta-data"
    assert "169.254.169.254, a link-local address" in refusal(stager(storage), to_metadata)
    assert "more than 0 redirects" in refusal(stager(storage, max_redirects=0), hop)
    assert storage.list_keys("jobs/") == ["jobs/ltx2-1/inputs/image.png"]  # the refusals left nothing


def test_a_body_over_the_cap_is_refused_while_streaming(storage, media_server) -> None:
    message = refusal(stager(storage, max_input_mb=1), f"{media_server.url}/big")
    assert "over the 1048576 byte limit" in message
    assert storage.list_keys("jobs/") == []


def test_a_rebinding_host_is_fetched_from_the_address_that_was_checked(storage, media_server, rebinding_dns) -> None:
    staged = stage(stager(storage), f"http://{REBINDING_HOST}:{media_server.port}/face.png")
    assert storage.get_bytes(staged["image"]) == PNG
    assert rebinding_dns.lookups == 1
    assert media_server.hosts[-1] == f"{REBINDING_HOST}:{media_server.port}"
