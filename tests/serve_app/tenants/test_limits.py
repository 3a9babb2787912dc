"""Tenant settings and the limits spanning models, on a fake clock (no Ray)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from serve_app.catalogue import AppArgs
from serve_app.errors import BudgetExhausted, RateLimited
from serve_app.settings import Secrets, TenantLimits, TenantsArgs
from serve_app.tenants.limits import TenantLimiter, check_submit, seconds_to_next_utc_day

NOON = datetime(2026, 3, 14, 12, 0, tzinfo=UTC).timestamp()
TODAY = date(2026, 3, 14)


class FakeClock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_named_key_is_its_tenant_and_unnamed_keys_share_default() -> None:
    acme, plain, ops = Secrets.from_env({"API_KEYS": "acme:k1,k2", "ADMIN_API_KEYS": "ops:k3"}).api_keys
    assert (acme.tenant, plain.tenant, ops.tenant) == ("acme", "default", "ops")


def test_an_override_replaces_only_the_fields_it_names() -> None:
    args = AppArgs.model_validate(
        {
            "tenants": {
                "defaults": {"max_queued": 10, "submissions_per_minute": 30},
                "overrides": {"acme": {"weight": 3, "max_running": {"ltx2": 2}}},
            }
        }
    ).tenants
    acme, other = args.limits_for("acme"), args.limits_for("other")
    assert (acme.weight, acme.max_queued, acme.submissions_per_minute) == (3, 10, 30)
    assert (acme.max_running_for("ltx2"), acme.max_running_for("wav2lip")) == (2, None)
    assert (other.weight, other.max_running_for("ltx2"), other.max_queued_for("wav2lip")) == (1, None, 10)


def test_a_typo_in_the_tenants_section_fails_and_names_the_key() -> None:
    with pytest.raises(ValidationError, match="max_runing"):
        AppArgs.model_validate({"tenants": {"overrides": {"acme": {"max_runing": 2}}}})
    with pytest.raises(ValidationError, match="weight"):
        AppArgs.model_validate({"tenants": {"defaults": {"weight": 0}}})


def test_prices_are_per_accelerator_and_unlisted_ones_cost_nothing() -> None:
    args = TenantsArgs(gpu_hour_price={"A100": 1.9, "rtx4090": 0.5})
    assert (args.price_per_gpu_hour("A100"), args.price_per_gpu_hour("H100")) == (1.9, 0.0)


def test_submissions_per_minute_slide_and_answer_with_headers() -> None:
    clock = FakeClock()
    limiter = TenantLimiter(TenantsArgs(defaults=TenantLimits(submissions_per_minute=3)), clock)
    quotas = []
    for _ in range(3):
        quotas.append(limiter.admit("acme"))
        clock.now += 10
    assert [q.remaining for q in quotas] == [2, 1, 0]
    assert quotas[0].headers() == {"RateLimit-Policy": '"minute";q=3;w=60', "RateLimit": '"minute";r=2;t=60'}
    with pytest.raises(RateLimited) as refused:
        limiter.admit("acme")
    assert (refused.value.code, refused.value.limit, refused.value.value) == (
        "rate_limited",
        "submissions_per_minute",
        3,
    )
    assert refused.value.retry_after_s == 30  # the first of the three leaves the window 60 s after it came
    assert limiter.admit("other").remaining == 2, "another tenant has its own minute"
    clock.now += 30
    assert limiter.admit("acme").remaining == 0


def test_admin_keys_are_exempt_unless_configured() -> None:
    strict = TenantLimits(submissions_per_minute=1)
    exempt = TenantLimiter(TenantsArgs(defaults=strict), FakeClock())
    assert [exempt.admit("ops", admin=True).limit for _ in range(3)] == [None, None, None]
    bound = TenantLimiter(TenantsArgs(defaults=strict, admin_exempt=False), FakeClock())
    bound.admit("ops", admin=True)
    with pytest.raises(RateLimited):
        bound.admit("ops", admin=True)


def test_the_daily_budget_refuses_until_the_next_utc_day_and_counts_each_job_once() -> None:
    clock = FakeClock()
    limiter = TenantLimiter(TenantsArgs(overrides={"acme": TenantLimits(daily_gpu_seconds=100)}), clock)
    limiter.admit("acme")
    limiter.charge("job-1", "acme", TODAY, 60.0)
    limiter.charge("job-1", "acme", TODAY, 60.0)  # a queue restart reports the same job again
    limiter.charge("old", "acme", date(2026, 3, 13), 500.0)  # yesterday's job counts on yesterday
    assert limiter.spent("acme") == 60.0
    limiter.admit("acme")
    limiter.charge("job-2", "acme", TODAY, 45.0)
    with pytest.raises(BudgetExhausted) as refused:
        limiter.admit("acme")
    assert (refused.value.code, refused.value.limit, refused.value.value, refused.value.used) == (
        "budget_exhausted",
        "daily_gpu_seconds",
        100,
        105.0,
    )
    assert refused.value.retry_after_s == 12 * 3600
    limiter.admit("other")  # no budget for the others
    clock.now += 12 * 3600
    assert limiter.admit("acme").limit is None and limiter.spent("acme") == 0.0


def test_a_restarted_limiter_rebuilds_the_days_spending() -> None:
    limiter = TenantLimiter(TenantsArgs(defaults=TenantLimits(daily_gpu_seconds=10)), FakeClock())
    limiter.seed([("j1", "acme", TODAY, 6.0), ("j2", "acme", TODAY, 6.0), ("j1", "acme", TODAY, 6.0)])
    assert limiter.spent("acme") == 12.0
    with pytest.raises(BudgetExhausted):
        limiter.admit("acme")


def test_seconds_to_the_next_utc_day() -> None:
    assert seconds_to_next_utc_day(NOON) == 12 * 3600
    assert seconds_to_next_utc_day(NOON + 12 * 3600 - 0.5) == 1


def test_max_queued_per_model_and_the_concurrency_form() -> None:
    limits = TenantLimits(max_queued={"m": 2})
    check_submit(limits, "acme", "m", waiting=1, running=5, retry_after_s=30)
    check_submit(limits, "acme", "other", waiting=50, running=0, retry_after_s=30)
    with pytest.raises(RateLimited) as refused:
        check_submit(limits, "acme", "m", waiting=2, running=0, retry_after_s=30)
    assert (refused.value.limit, refused.value.value, refused.value.retry_after_s) == ("max_queued", 2, 30)
    concurrency = TenantLimits(max_queued=0, max_running=2)
    check_submit(concurrency, "acme", "m", waiting=0, running=1, retry_after_s=5)
    with pytest.raises(RateLimited) as refused:
        check_submit(concurrency, "acme", "m", waiting=0, running=2, retry_after_s=5)
    assert (refused.value.limit, refused.value.value) == ("max_running", 2)
    with pytest.raises(RateLimited, match="max_queued=0"):
        check_submit(TenantLimits(max_queued=0), "acme", "m", waiting=0, running=0, retry_after_s=5)


def test_limit_errors_cross_processes_with_their_fields() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(BudgetExhausted("spent", 100, 105.0, 60)))
    assert error.body() == {"limit": "daily_gpu_seconds", "value": 100, "retry_after_s": 60, "used": 105.0}
