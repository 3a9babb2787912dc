"""Both storage backends behind one interface: a local directory, and S3 through boto3 against moto's
standalone server (a real HTTP S3 endpoint). moto does not check signatures, so tampering and expiry are
tested on the local backend, whose signed links this project verifies itself."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from serve_app.errors import NotFound
from serve_app.settings import Secrets, StorageArgs
from serve_app.storage.backends import LocalStorage, Storage, build_storage


@pytest.fixture
def s3_storage(s3_endpoint: str, s3_bucket: str) -> Storage:
    args = StorageArgs(
        backend="s3",
        bucket=s3_bucket,
        prefix="env/test",
        endpoint_url=s3_endpoint,
        region="us-east-1",
        multipart_threshold_mb=5,
    )
    return build_storage(args, Secrets())


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return build_storage(StorageArgs(local_dir=str(tmp_path / "store")), Secrets())
    return request.getfixturevalue("s3_storage")


def test_bytes_and_files_round_trip(storage: Storage, tmp_path: Path) -> None:
    storage.put_bytes("jobs/a/job.json", b'{"x": 1}', "application/json")
    assert storage.get_bytes("jobs/a/job.json") == b'{"x": 1}'
    assert storage.read_head("jobs/a/job.json", 4) == b'{"x"'
    assert storage.size("jobs/a/job.json") == 8 and storage.size("jobs/a/missing") is None

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))  # above the 5 MB multipart threshold on S3
    storage.put_file("jobs/a/output.mp4", big, "video/mp4")
    back = tmp_path / "back.bin"
    storage.download("jobs/a/output.mp4", back)
    assert back.read_bytes() == big.read_bytes()
    storage.copy("jobs/a/output.mp4", "jobs/b/inputs/face.mp4")
    assert storage.size("jobs/b/inputs/face.mp4") == big.stat().st_size


def test_listing_and_deleting_by_prefix(storage: Storage) -> None:
    for key in (
        "index/ltx2/active/j1",
        "index/ltx2/active/j2",
        "index/wav2lip/active/j3",
        "jobs/j1/job.json",
        "jobs/j1/inputs/image.png",
    ):
        storage.put_bytes(key, b"")
    assert storage.list_keys("index/ltx2/active/") == ["index/ltx2/active/j1", "index/ltx2/active/j2"]
    storage.delete("index/ltx2/active/j1")
    assert storage.list_keys("index/ltx2/active/") == ["index/ltx2/active/j2"]
    storage.delete_prefix("jobs/j1")
    assert storage.list_keys("jobs/") == []
    with pytest.raises(NotFound):
        storage.get_bytes("jobs/j1/job.json")


def test_s3_presigned_urls_work_with_a_plain_http_client(s3_storage: Storage) -> None:
    """(The local backend's links are gateway routes, tested over HTTP in test_jobs_api and test_delivery.)"""
    storage = s3_storage
    put_url = storage.presign_put("uploads/u1/audio.wav", "audio/wav", 12, 60)
    assert httpx.put(put_url, content=b"RIFF....WAVE", headers={"Content-Type": "audio/wav"}).status_code == 200
    assert storage.get_bytes("uploads/u1/audio.wav") == b"RIFF....WAVE"
    assert "X-Amz-Signature" in put_url  # SigV4, which R2 and current AWS regions require
    assert "content-length" in parse_qs(urlsplit(put_url).query)["X-Amz-SignedHeaders"][0].split(";")
    assert httpx.get(storage.presign_get("uploads/u1/audio.wav", 60)).content == b"RIFF....WAVE"


def test_keys_cannot_escape_the_store(storage: Storage) -> None:
    for key in ("../secrets", "jobs/../../etc/passwd", "/abs", "jobs//x", ""):
        with pytest.raises(ValueError):
            storage.put_bytes(key, b"x")


def test_local_signatures_refuse_tampering_and_expiry(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, "http://gw", b"k" * 32)
    expires = int(time.time()) + 60
    signature = storage.sign("GET", "jobs/a/output.mp4", expires)
    assert storage.verify("GET", "jobs/a/output.mp4", expires, signature)
    assert not storage.verify("GET", "jobs/b/output.mp4", expires, signature)  # other key
    assert not storage.verify("PUT", "jobs/a/output.mp4", expires, signature)  # other method
    assert not storage.verify("GET", "jobs/a/output.mp4", expires + 1, signature)  # other expiry
    past = int(time.time()) - 1
    assert not storage.verify("GET", "jobs/a/output.mp4", past, storage.sign("GET", "jobs/a/output.mp4", past))
    put = storage.sign("PUT", "uploads/a/image.png", expires, 100)  # an upload URL is signed for one body size
    assert storage.verify("PUT", "uploads/a/image.png", expires, put, 100)
    assert not storage.verify("PUT", "uploads/a/image.png", expires, put, 101)
    assert not storage.verify("PUT", "uploads/a/image.png", expires, put)


def test_local_replicas_share_one_generated_signing_key(tmp_path: Path) -> None:
    first, second = LocalStorage(tmp_path, "http://gw", None), LocalStorage(tmp_path, "http://gw", None)
    expires = int(time.time()) + 60
    assert second.verify("GET", "k/x", expires, first.sign("GET", "k/x", expires))
    assert (tmp_path / ".signing-key").stat().st_mode & 0o077 == 0  # readable by the owner only
