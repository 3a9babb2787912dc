"""Object storage behind one small interface: a local directory or any S3 API (AWS, R2, MinIO, GCS interop).

Callers see only keys like `jobs/<id>/output.mp4`; buckets, prefixes and endpoints stay inside.
Every write is whole-object (S3 PUT, or write-then-rename locally), so a reader never sees half a file.
An unreachable S3 endpoint (refused, reset, timed out, 5xx, throttled) raises `StorageError` (503); callers that
must outlast an outage (a job's output and result, the queue's records) go through `RetryingStorage`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import itertools
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from serve_app.errors import NotFound, StorageError
from serve_app.metrics import STORAGE_OPERATIONS, timed_storage
from serve_app.settings import Secrets, StorageArgs

logger = logging.getLogger("serve_app.storage.backends")
# The calls that reach the endpoint (presigning is local); `ping` turns its own errors into StorageError.
NETWORK_OPERATIONS = tuple(operation for operation in STORAGE_OPERATIONS if operation != "ping")
RETRY_FIRST_DELAY_S = 0.5
RETRY_MAX_DELAY_S = 10.0
THROTTLING_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout"}


class Storage(Protocol):
    backend: str

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def read_head(self, key: str, size: int) -> bytes: ...
    def download(self, key: str, path: Path) -> None: ...
    def size(self, key: str) -> int | None: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def list_page(self, prefix: str, start_after: str, limit: int) -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def copy(self, src: str, dst: str) -> None: ...
    def presign_get(self, key: str, expires_s: int) -> str: ...
    def presign_put(self, key: str, content_type: str, size: int, expires_s: int) -> str: ...
    def ping(self) -> None: ...


def build_storage(args: StorageArgs, secrets: Secrets) -> Storage:
    """The configured backend; each process builds its own (boto3 clients do not cross processes)."""
    if args.backend == "s3":
        return S3Storage(args)
    signing = secrets.url_signing_secret.get_secret_value().encode() if secrets.url_signing_secret else None
    return LocalStorage(Path(args.local_dir), args.public_base_url, signing)


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid storage key {key!r}")
    return key


@timed_storage
class LocalStorage:
    """A directory. Signed URLs point at the gateway's `/files/...` routes and carry an HMAC."""

    backend = "local"

    def __init__(self, root: Path, public_base_url: str, signing_secret: bytes | None) -> None:
        self.root = root.expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._base = public_base_url.rstrip("/")
        self._secret = signing_secret or self._local_secret()

    def _local_secret(self) -> bytes:
        """With no URL_SIGNING_SECRET, one key file in the data dir serves every local replica."""
        path = self.root / ".signing-key"
        if not path.exists():
            tmp = path.with_name(f".signing-key.{uuid.uuid4().hex}")
            tmp.write_bytes(os.urandom(32).hex().encode())
            tmp.chmod(0o600)
            with contextlib.suppress(FileExistsError):  # atomic create-if-absent: replicas agree on one key
                os.link(tmp, path)
            tmp.unlink()
        return path.read_bytes()

    def local_path(self, key: str) -> Path:
        """Where `key` lives on disk; refuses keys that would leave the root."""
        return self.root / _check_key(key)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        target = self.local_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        target = self.local_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        shutil.copyfile(path, tmp)
        tmp.replace(target)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.local_path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no object {key}") from None

    def read_head(self, key: str, size: int) -> bytes:
        try:
            with self.local_path(key).open("rb") as f:
                return f.read(size)
        except FileNotFoundError:
            raise NotFound(f"no object {key}") from None

    def download(self, key: str, path: Path) -> None:
        try:
            shutil.copyfile(self.local_path(key), path)
        except FileNotFoundError:
            raise NotFound(f"no object {key}") from None

    def size(self, key: str) -> int | None:
        path = self.local_path(key)
        return path.stat().st_size if path.is_file() else None

    def list_keys(self, prefix: str) -> list[str]:
        base = self.root / prefix.rstrip("/")
        if not base.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(k for k in keys if not k.rsplit("/", 1)[-1].startswith("."))

    def list_page(self, prefix: str, start_after: str, limit: int) -> list[str]:
        """Up to `limit` keys directly under the folder `prefix`, in order, after the key `start_after`."""
        base = self.root / prefix.rstrip("/")
        names = sorted(n for n in os.listdir(base) if not n.startswith(".")) if base.is_dir() else []
        keys = (f"{prefix.rstrip('/')}/{n}" for n in names)
        return list(itertools.islice((k for k in keys if k > start_after), limit))

    def delete(self, key: str) -> None:
        self.local_path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.local_path(prefix.rstrip("/")), ignore_errors=True)

    def copy(self, src: str, dst: str) -> None:
        self.put_file(dst, self.local_path(src))

    def sign(self, method: str, key: str, expires_at: int, size: int | None = None) -> str:
        """HMAC-SHA256 over method, key, expiry and (a PUT's) body size; checked by `verify`."""
        msg = f"{method}\n{key}\n{expires_at}" + ("" if size is None else f"\n{size}")
        return hmac.new(self._secret, msg.encode(), hashlib.sha256).hexdigest()

    def verify(self, method: str, key: str, expires_at: int, signature: str, size: int | None = None) -> bool:
        """True when the signature matches (constant-time) and has not expired."""
        if expires_at < time.time():
            return False
        return hmac.compare_digest(self.sign(method, key, expires_at, size), signature)

    def _signed_url(self, method: str, key: str, expires_s: int, size: int | None = None) -> str:
        expires_at = int(time.time()) + expires_s
        sized = {} if size is None else {"size": size}
        query = urlencode({"expires": expires_at, **sized, "signature": self.sign(method, key, expires_at, size)})
        return f"{self._base}/files/{quote(_check_key(key))}?{query}"

    def presign_get(self, key: str, expires_s: int) -> str:
        return self._signed_url("GET", key, expires_s)

    def presign_put(self, key: str, content_type: str, size: int, expires_s: int) -> str:
        """A PUT URL for a body of exactly `size` bytes (the gateway's `/files` route refuses any other)."""
        return self._signed_url("PUT", key, expires_s, size)

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"storage directory {self.root} is not writable")


def is_outage(exc: BaseException) -> bool:
    """True for an S3 error that a later try may not get: no connection, a timeout, a 5xx, throttling."""
    from boto3.exceptions import RetriesExceededError, S3UploadFailedError
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, IncompleteReadError

    if isinstance(exc, (ConnectionError, HTTPClientError, IncompleteReadError, RetriesExceededError)):
        return True
    if isinstance(exc, S3UploadFailedError):  # boto3 wraps the ClientError of an upload, keeping it as context
        return exc.__context__ is not None and is_outage(exc.__context__)
    if isinstance(exc, ClientError):
        error, meta = exc.response.get("Error", {}), exc.response.get("ResponseMetadata", {})
        return meta.get("HTTPStatusCode", 0) >= 500 or error.get("Code") in THROTTLING_CODES
    return False


def outage_as_storage_error(cls: type) -> type:
    """Class decorator for the S3 backend: an outage leaves each network call as `StorageError` (503)."""
    for operation in NETWORK_OPERATIONS:
        setattr(cls, operation, _outage_checked(getattr(cls, operation)))
    return cls


def _outage_checked(method: Any) -> Any:
    @functools.wraps(method)
    def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if is_outage(exc):
                raise StorageError(f"storage unreachable: {type(exc).__name__}") from exc
            raise

    return checked


@timed_storage
@outage_as_storage_error
class S3Storage:
    """Any S3 API through boto3. SigV4 presigning, which R2 and current AWS regions require."""

    backend = "s3"

    def __init__(self, args: StorageArgs) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        if not args.bucket:
            raise ValueError("storage.bucket is required with the s3 backend")
        # A few quick tries here: a request answers 503 within seconds; RetryingStorage outlasts longer outages.
        config = Config(
            signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=args.connect_timeout_s,
        )
        self._s3 = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=args.region, config=config)
        self._bucket = args.bucket
        self._prefix = args.prefix.strip("/")
        self._transfer = TransferConfig(multipart_threshold=args.multipart_threshold_mb * 1024 * 1024)

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._s3.put_object(Bucket=self._bucket, Key=self._key(key), Body=data, ContentType=content_type)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        self._s3.upload_file(
            str(path),
            self._bucket,
            self._key(key),
            ExtraArgs={"ContentType": content_type},
            Config=self._transfer,
        )

    def get_bytes(self, key: str) -> bytes:
        return self._get(key).read()

    def read_head(self, key: str, size: int) -> bytes:
        return self._get(key, byte_range=f"bytes=0-{size - 1}").read()

    def _get(self, key: str, byte_range: str | None = None):
        extra = {"Range": byte_range} if byte_range else {}
        try:
            return self._s3.get_object(Bucket=self._bucket, Key=self._key(key), **extra)["Body"]
        except self._s3.exceptions.NoSuchKey:
            raise NotFound(f"no object {key}") from None

    def download(self, key: str, path: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            self._s3.download_file(self._bucket, self._key(key), str(path), Config=self._transfer)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise NotFound(f"no object {key}") from None
            raise

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return self._s3.head_object(Bucket=self._bucket, Key=self._key(key))["ContentLength"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def list_keys(self, prefix: str) -> list[str]:
        strip = len(self._prefix) + 1 if self._prefix else 0
        full = self._key(prefix.rstrip("/")) + ("/" if prefix.endswith("/") else "")
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=full)
        return [o["Key"][strip:] for page in pages for o in page.get("Contents", [])]

    def list_page(self, prefix: str, start_after: str, limit: int) -> list[str]:
        """Up to `limit` keys under `prefix`, in order, after the key `start_after`: one request."""
        strip = len(self._prefix) + 1 if self._prefix else 0
        options = {"StartAfter": self._key(start_after)} if start_after else {}
        folder = self._key(prefix.rstrip("/")) + "/"
        page = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=folder, MaxKeys=limit, **options)
        return [o["Key"][strip:] for o in page.get("Contents", [])]

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> None:
        keys = [self._key(k) for k in self.list_keys(prefix.rstrip("/") + "/")]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True})

    def copy(self, src: str, dst: str) -> None:
        source = {"Bucket": self._bucket, "Key": self._key(src)}
        self._s3.copy(source, self._bucket, self._key(dst), Config=self._transfer)

    def presign_get(self, key: str, expires_s: int) -> str:
        params = {"Bucket": self._bucket, "Key": self._key(key)}
        return self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)

    def presign_put(self, key: str, content_type: str, size: int, expires_s: int) -> str:
        """A PUT URL for a body of exactly `size` bytes: Content-Length is a signed header (X-Amz-SignedHeaders),
        so S3 refuses a body of any other length with 403 and stores nothing."""
        params = {"Bucket": self._bucket, "Key": self._key(key), "ContentType": content_type, "ContentLength": size}
        return self._s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_s)

    def ping(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3.head_bucket(Bucket=self._bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"bucket {self._bucket} unreachable: {exc}") from exc


class RetryingStorage:
    """A Storage whose network calls wait out an outage: a `StorageError` is tried again with backoff
    (0.5 s doubling to 10 s) until `window_s` has passed, then raised. Calls block; run them in threads."""

    def __init__(self, storage: Storage, window_s: float) -> None:
        self.direct = storage  # the same backend without waiting, for calls that answer a request
        self._window_s = window_s

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.direct, name)
        if name not in NETWORK_OPERATIONS:
            return attribute
        return functools.partial(self._retried, name, attribute)

    def _retried(self, name: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        started, delay, failures = time.monotonic(), RETRY_FIRST_DELAY_S, 0
        while True:
            try:
                result = call(*args, **kwargs)
            except StorageError as exc:
                failures += 1
                waited = time.monotonic() - started
                if waited + delay > self._window_s:
                    logger.error("storage %s failed for %.0f s (%d tries), giving up: %s", name, waited, failures, exc)
                    raise
                if failures == 1:
                    logger.warning("storage %s failed (%s); retrying for up to %g s", name, exc, self._window_s)
                time.sleep(delay)
                delay = min(2 * delay, RETRY_MAX_DELAY_S)
                continue
            if failures:
                logger.info("storage %s succeeded after %.1f s of outage", name, time.monotonic() - started)
            return result


def retrying(storage: Storage, args: StorageArgs) -> Storage:
    """`storage` waiting out outages for up to `args.retry_window_s`."""
    return RetryingStorage(storage, args.retry_window_s)  # type: ignore[return-value]
