"""The pages' policies without a browser: which storage origins the playground may reach, and that the bundles the
docs load name no other host (the browser test, test_playground.py, checks the rendered pages)."""

from __future__ import annotations

import re

import pytest

from serve_app.http.pages import DOCS_ASSETS, REDOC_LOGO, page_policies, redoc_bundle, storage_origins
from serve_app.settings import StorageArgs


@pytest.mark.parametrize(
    ("storage", "origins"),
    [
        ({"backend": "local", "public_base_url": "http://10.0.0.5:8000/video"}, ["http://10.0.0.5:8000"]),
        (
            {"backend": "s3", "bucket": "b", "endpoint_url": "https://acct.r2.cloudflarestorage.com"},
            ["https://acct.r2.cloudflarestorage.com", "https://*.acct.r2.cloudflarestorage.com"],
        ),
        ({"backend": "s3", "bucket": "b"}, ["https://*.amazonaws.com"]),
    ],
)
def test_the_playground_may_reach_only_the_server_and_its_storage(storage, origins):
    assert storage_origins(StorageArgs(**storage)) == origins
    policy = page_policies(origins)["/playground"]
    for directive in ("connect-src", "media-src"):
        sources = re.search(rf"{directive} ([^;]+)", policy).group(1).split()
        assert sources == ["'self'", *origins], (directive, sources)
    assert "unsafe-inline" not in policy and "default-src 'self'" in policy


def test_the_redoc_bundle_is_served_without_its_cdn_logo():
    original = (DOCS_ASSETS / "redoc.standalone.js").read_text(encoding="utf-8")
    assert REDOC_LOGO in original, "the pinned ReDoc changed: check what its sidebar loads now"
    assert REDOC_LOGO.encode() not in redoc_bundle()
    assert len(redoc_bundle()) == len(original.encode()) - len(REDOC_LOGO) + len("data:,")
