"""Resolve a weights source (local path, hf://, s3://) to a directory or file on node-local disk.

Nothing here runs at import time: a replica calls `fetch_weights` once in its constructor.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def fetch_weights(source: str, cache_dir: str | Path) -> Path:
    """Return a local path holding the weights named by `source`, downloading them into `cache_dir` once."""
    cache = Path(cache_dir).expanduser()
    if source.startswith("hf://"):
        return _fetch_hf(source.removeprefix("hf://"), cache / "hf")
    if source.startswith("s3://"):
        return _fetch_s3(source.removeprefix("s3://"), cache / "s3")
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"weights path {path} does not exist")
    return path


def _fetch_hf(spec: str, cache: Path) -> Path:
    """`org/repo[@revision][/file-or-subfolder]`; HF_TOKEN from the environment for gated repos."""
    from huggingface_hub import snapshot_download

    parts = spec.split("/")
    repo, rest = "/".join(parts[:2]), "/".join(parts[2:])
    repo, _, revision = repo.partition("@")
    allow = [rest, f"{rest}/*"] if rest else None
    logger.info("fetching weights hf://%s (revision %s, files %s)", repo, revision or "main", rest or "all")
    root = snapshot_download(
        repo,
        revision=revision or None,
        cache_dir=cache,
        allow_patterns=allow,
        token=os.environ.get("HF_TOKEN"),
    )
    return Path(root) / rest if rest else Path(root)


def _fetch_s3(spec: str, cache: Path) -> Path:
    """`bucket/prefix`: a single object or every object under the prefix; skips files already cached whole."""
    import boto3

    bucket, _, prefix = spec.partition("/")
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    target = cache / bucket
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    objects = [o for page in pages for o in page.get("Contents", [])]
    if not objects:
        raise FileNotFoundError(f"no objects under s3://{spec}")
    for obj in objects:
        local = target / obj["Key"]
        if local.exists() and local.stat().st_size == obj["Size"]:
            continue
        local.parent.mkdir(parents=True, exist_ok=True)
        logger.info("fetching weights s3://%s/%s (%d bytes)", bucket, obj["Key"], obj["Size"])
        partial = local.with_suffix(local.suffix + ".partial")
        client.download_file(bucket, obj["Key"], str(partial))
        partial.replace(local)  # a crash mid-download never leaves a truncated file under the real name
    return target / prefix
