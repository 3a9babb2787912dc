"""Job-tagged JSON logs inside Serve replicas.

Serve's JSON log files take records only from its own `ray.serve` logger, and it drops a `job_id` attribute
(Ray's own job id). `route_logs_to_serve` forwards this project's loggers there, with our job id as
`video_job_id` and the model as `model`, taken from `extra=` or from the job the current task works on.
"""

from __future__ import annotations

import contextvars
import logging

SERVE_LOGGER = "ray.serve"
APP_LOGGERS = ("serve_app", "deployments")
_job: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("video_job", default=None)


class _ToServeLogs(logging.Handler):
    """Hands a record to Serve's logger, whose handlers write the replica's (JSON) log file."""

    def emit(self, record: logging.LogRecord) -> None:
        # Serve strips `job_id` (it means Ray's job there), so ours travels as `video_job_id`.
        job_id = record.__dict__.pop("job_id", None)
        current = _job.get()
        if job_id is None and current is not None:
            job_id, record.model = current
        if job_id is not None:
            record.video_job_id = job_id
        logging.getLogger(SERVE_LOGGER).handle(record)


def route_logs_to_serve() -> None:
    """In a replica: send this project's log records to Serve's log files, at Serve's configured level."""
    serve_logger = logging.getLogger(SERVE_LOGGER)
    for name in APP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _ToServeLogs) for h in logger.handlers):
            logger.addHandler(_ToServeLogs())
        logger.setLevel(serve_logger.level)
        logger.propagate = False  # otherwise warnings also reach stderr through Python's last-resort handler


def tag_job_logs(job_id: str, model: str) -> None:
    """Tag the log lines of the rest of the current asyncio task (and its to_thread calls) with this job.

    Call it first thing in a task that works on one job only: each task has its own copy of the context."""
    _job.set((job_id, model))
