"""Python client and CLI of the video-serve job API: `Client` / `AsyncClient`, job handles, typed errors."""

from video_serve_client.aio import AsyncClient, AsyncJob
from video_serve_client.client import Client, Job
from video_serve_client.errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    JobFailedError,
    NotFoundError,
    RateLimitError,
    UnavailableError,
    VideoServeError,
    WaitTimeout,
)

__all__ = [
    "APIError",
    "AsyncClient",
    "AsyncJob",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "InvalidRequestError",
    "Job",
    "JobFailedError",
    "NotFoundError",
    "RateLimitError",
    "UnavailableError",
    "VideoServeError",
    "WaitTimeout",
]
