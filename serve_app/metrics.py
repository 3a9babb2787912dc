"""Job metrics, recorded inside Serve replicas.

Metrics go through `ray.serve.metrics`, so every series also carries the `application`, `deployment` and
`replica` labels Serve adds, and each node's metrics agent exports it with a `ray_` prefix (see `SPECS` for
the exported names; docs/observability.md holds the same table, checked by a test). Metric objects are made
on first use inside a replica: the driver and the unit tests, which run no replica, record nothing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ray import serve
from ray.serve import metrics as serve_metrics
from ray.serve.exceptions import RayServeException

if TYPE_CHECKING:
    from serve_app.jobs.webhooks import Attempt
    from serve_app.schemas import JobRecord

MetricKind = Literal["counter", "gauge", "histogram"]

# GPU jobs take seconds (a short lip-sync) to many minutes (a pro LTX-2 clip); backlogs can hold them for hours.
JOB_SECONDS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
# Object storage calls: a local disk answers in milliseconds, a multipart S3 upload of a video in seconds.
STORAGE_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# Weights to GPU: seconds from a warm node cache, tens of minutes when a cold node downloads a checkpoint.
LOAD_SECONDS = (1, 5, 10, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600)


@dataclass(frozen=True)
class MetricSpec:
    """One metric: the name given to Ray, its type, our labels, and (histograms) bucket bounds."""

    name: str
    kind: MetricKind
    labels: tuple[str, ...]
    description: str
    buckets: tuple[float, ...] = ()

    @property
    def exported(self) -> str:
        """The name Prometheus sees: Ray prefixes every metric with `ray_`."""
        return f"ray_{self.name}"


SPECS: tuple[MetricSpec, ...] = (
    MetricSpec("video_jobs_submitted_total", "counter", ("model",), "Jobs accepted (stored and queued)."),
    MetricSpec(
        "video_jobs_finished_total",
        "counter",
        ("model", "status"),
        "Jobs that reached a terminal state: status is completed, failed or cancelled.",
    ),
    MetricSpec(
        "video_job_failures_total",
        "counter",
        ("model", "code"),
        "Failed jobs by error code (e.g. retries_exhausted, or the model's own code).",
    ),
    MetricSpec(
        "video_job_retries_total",
        "counter",
        ("model", "reason"),
        "Runs started again: reason is crash (the run raised or its replica died) or lost_heartbeat.",
    ),
    MetricSpec(
        "video_jobs_quarantined_total",
        "counter",
        ("model", "reason"),
        "Index entries a restarted queue could not recover (reason: no record, unreadable record), moved to "
        "index/{model}/quarantine/.",
    ),
    MetricSpec("video_jobs_queued", "gauge", ("model",), "Unfinished jobs not yet running (the backlog)."),
    MetricSpec("video_jobs_running", "gauge", ("model",), "Jobs running on a model replica now."),
    MetricSpec(
        "video_job_queue_wait_seconds",
        "histogram",
        ("model",),
        "Submission to first start, observed when the job ends (jobs that never started are not observed).",
        JOB_SECONDS,
    ),
    MetricSpec(
        "video_job_run_seconds",
        "histogram",
        ("model",),
        "First start to terminal state (includes retries), observed when the job ends.",
        JOB_SECONDS,
    ),
    MetricSpec(
        "video_job_e2e_seconds",
        "histogram",
        ("model", "status"),
        "Submission to terminal state, as the client sees it.",
        JOB_SECONDS,
    ),
    MetricSpec(
        "video_webhook_attempts_total",
        "counter",
        ("model", "outcome"),
        "Webhook delivery tries: outcome is delivered (2xx), rejected (other status) or error (no answer).",
    ),
    MetricSpec(
        "video_webhooks_abandoned_total",
        "counter",
        ("model",),
        "Webhooks given up after their last try: the client was never told.",
    ),
    MetricSpec(
        "video_storage_operation_seconds",
        "histogram",
        ("operation", "backend"),
        "Object storage call latency: operation is the Storage method, backend local or s3.",
        STORAGE_SECONDS,
    ),
    MetricSpec(
        "video_model_load_seconds",
        "histogram",
        ("model",),
        "Time a model replica took to load its runner (weights to device).",
        LOAD_SECONDS,
    ),
    MetricSpec(
        "video_input_rejections_total",
        "counter",
        ("field", "reason"),
        "Requests refused with 422: the field at fault (unknown for extra keys) and the rule "
        "(a pydantic error type, or input_check for the server's own checks).",
    ),
    MetricSpec(
        "video_gpu_seconds_total",
        "counter",
        ("model", "tenant"),
        "GPU-seconds used by ended jobs, every attempt counted (a replica without a GPU counts as one device); "
        "tenant is the key's configured name, `default` for unnamed keys.",
    ),
    MetricSpec(
        "video_billable_gpu_seconds_total",
        "counter",
        ("model", "tenant"),
        "GPU-seconds of the runs that produced the jobs' results (what callers are billed for).",
    ),
    MetricSpec(
        "video_job_cost_total",
        "counter",
        ("model", "tenant"),
        "Cost of ended jobs: billable GPU-hours x tenants.gpu_hour_price of the accelerator.",
    ),
    MetricSpec(
        "video_tenant_jobs_finished_total",
        "counter",
        ("model", "tenant", "status"),
        "Ended jobs by tenant: status is completed, failed or cancelled.",
    ),
    MetricSpec(
        "video_tenant_rejections_total",
        "counter",
        ("model", "tenant", "reason"),
        "Jobs refused with 429 by a tenant limit: reason is max_queued, max_running, submissions_per_minute or "
        "daily_gpu_seconds.",
    ),
)
_BY_NAME = {spec.name: spec for spec in SPECS}
_metrics: dict[str, Any] = {}


def _in_replica() -> bool:
    try:
        serve.get_replica_context()
    except RayServeException:
        return False
    return True


def _metric(name: str) -> Any | None:
    """The named metric of this process, made on first use; None outside a Serve replica."""
    if name in _metrics:
        return _metrics[name]
    if not _in_replica():
        return None
    spec = _BY_NAME[name]
    if spec.kind == "counter":
        metric = serve_metrics.Counter(spec.name, spec.description, spec.labels)
    elif spec.kind == "gauge":
        metric = serve_metrics.Gauge(spec.name, spec.description, spec.labels)
    else:
        metric = serve_metrics.Histogram(spec.name, spec.description, list(spec.buckets), spec.labels)
    _metrics[name] = metric
    return metric


def _inc(name: str, **tags: str) -> None:
    if (metric := _metric(name)) is not None:
        metric.inc(1, tags)


def _add(name: str, value: float, **tags: str) -> None:
    if (metric := _metric(name)) is not None and value > 0:
        metric.inc(value, tags)


def _set(name: str, value: float, **tags: str) -> None:
    if (metric := _metric(name)) is not None:
        metric.set(value, tags)


def _observe(name: str, value: float, **tags: str) -> None:
    if (metric := _metric(name)) is not None:
        metric.observe(max(value, 0.0), tags)  # clocks of two replicas may disagree by a little


# ---- recording, one call per event ----------------------------------------------------------------


def job_submitted(model: str) -> None:
    """A job was stored and queued."""
    _inc("video_jobs_submitted_total", model=model)


def job_finished(record: JobRecord) -> None:
    """A job reached its terminal state: count it and observe its wait, run and end-to-end times."""
    model, status = record.model, record.status
    _inc("video_jobs_finished_total", model=model, status=status)
    if status == "failed":
        _inc("video_job_failures_total", model=model, code=record.error.code if record.error else "unknown")
    end = record.completed_at
    if end is None:
        return
    if record.started_at is not None:
        _observe("video_job_queue_wait_seconds", (record.started_at - record.created_at).total_seconds(), model=model)
        _observe("video_job_run_seconds", (end - record.started_at).total_seconds(), model=model)
    _observe("video_job_e2e_seconds", (end - record.created_at).total_seconds(), model=model, status=status)


def job_usage(record: JobRecord, gpu: bool = True) -> None:
    """An ended job of a tenant: its status and (`gpu`: not a chain, whose stages count theirs) its GPU-seconds,
    billable GPU-seconds and cost."""
    tenant, model = record.tenant or "default", record.model
    _inc("video_tenant_jobs_finished_total", model=model, tenant=tenant, status=record.status)
    if record.usage is None or not gpu:
        return
    _add("video_gpu_seconds_total", record.usage.gpu_s, model=model, tenant=tenant)
    _add("video_billable_gpu_seconds_total", record.usage.billable_gpu_s, model=model, tenant=tenant)
    _add("video_job_cost_total", record.usage.cost, model=model, tenant=tenant)


def tenant_rejected(model: str, tenant: str, reason: str) -> None:
    """A job refused with 429 by a tenant limit (`reason`: the limit's name)."""
    _inc("video_tenant_rejections_total", model=model, tenant=tenant, reason=reason)


def job_retried(model: str, reason: Literal["crash", "lost_heartbeat"]) -> None:
    """A job's run is started again."""
    _inc("video_job_retries_total", model=model, reason=reason)


def job_quarantined(model: str, reason: str) -> None:
    """A restarted queue moved an index entry without a usable record aside."""
    _inc("video_jobs_quarantined_total", model=model, reason=reason)


def queue_state(model: str, counts: Mapping[str, int]) -> None:
    """The backlog and the running jobs of one model's queue, from `JobQueue.counts()`."""
    _set("video_jobs_queued", counts["pending"], model=model)
    _set("video_jobs_running", counts["processing"], model=model)


def webhook_attempt(model: str, attempt: Attempt, max_attempts: int) -> None:
    """One delivery try; the last failed try also counts the webhook as abandoned."""
    outcome = "delivered" if attempt.delivered else "rejected" if attempt.status_code is not None else "error"
    _inc("video_webhook_attempts_total", model=model, outcome=outcome)
    if not attempt.delivered and attempt.number >= max_attempts:
        _inc("video_webhooks_abandoned_total", model=model)


def model_loaded(model: str, seconds: float) -> None:
    """A model replica finished loading its runner."""
    _observe("video_model_load_seconds", seconds, model=model)


def input_rejected(field: str, reason: str) -> None:
    """A request was refused with 422, for `field` by rule `reason` (a pydantic error type or input_check)."""
    # Labels must stay few: an unknown key is the client's own text, and list positions count up.
    if reason == "extra_forbidden":
        field = "unknown"
    field = ".".join(part for part in field.split(".") if not part.isdigit()) or "body"
    _inc("video_input_rejections_total", field=field, reason=reason)


StorageT = TypeVar("StorageT", bound=type)
STORAGE_OPERATIONS = (  # every Storage call that reaches the backend, timed
    "put_bytes",
    "put_file",
    "get_bytes",
    "read_head",
    "download",
    "size",
    "list_keys",
    "list_page",
    "delete",
    "delete_prefix",
    "copy",
    "ping",
)


def timed_storage(cls: StorageT) -> StorageT:
    """Class decorator for a Storage backend: each call that reaches storage observes its latency."""
    for operation in STORAGE_OPERATIONS:
        setattr(cls, operation, _timed(operation, getattr(cls, operation)))
    return cls


def _timed(operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:  # failed calls too: a slow timeout is exactly what the histogram should show
            elapsed = time.perf_counter() - started
            _observe("video_storage_operation_seconds", elapsed, operation=operation, backend=self.backend)

    return timed


def metric_table() -> str:
    """The Markdown table of every metric, as docs/observability.md shows it."""
    rows = ["| Metric (as exported) | Type | Labels | Meaning |", "|---|---|---|---|"]
    for spec in SPECS:
        labels = ", ".join(f"`{label}`" for label in spec.labels)
        rows.append(f"| `{spec.exported}` | {spec.kind} | {labels} | {spec.description} |")
    return "\n".join(rows)
