"""The shared token bucket: batch grants, refill, blocking after a 429, and atomicity across processes.

Each test runs on both stores: Redis (the Lua script; marked ``postgres`` like the other tests that need
the services, so the embedded pass leaves it out) and the cache under a file lock (the embedded default).
"""

import multiprocessing
import os
import time
import uuid

import pytest
from django.conf import settings

from campaigns.delivery.ratelimit import CacheBuckets, Limit, RedisBuckets, limit_for, provider_class

T0 = 1_800_000_000.0


def _redis_buckets():
    import redis

    return RedisBuckets(redis.Redis.from_url(settings.REDIS_URL))


def _needs_redis():
    if not settings.REDIS_URL:
        message = "needs Redis (set REDIS_URL or run scripts/test)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.postgres), "cache"])
def store(request):
    if request.param == "redis":
        _needs_redis()
        return _redis_buckets
    return CacheBuckets


@pytest.fixture
def key():
    return f"test:{uuid.uuid4().hex}"


def test_a_batch_gets_the_burst_now_and_the_wait_for_the_next_token(store, key):
    buckets, limit = store(), Limit(rate=5, burst=5)

    first = buckets.acquire(key, limit, 20, now=T0)
    empty = buckets.acquire(key, limit, 15, now=T0)
    later = buckets.acquire(key, limit, 15, now=T0 + 0.6)
    full = buckets.acquire(key, limit, 15, now=T0 + 60)

    assert (first.granted, first.wait) == (5, pytest.approx(0.2))
    assert (empty.granted, empty.wait) == (0, pytest.approx(0.2))
    assert later.granted == 3  # 0.6 s at 5/s
    assert full.granted == 5  # never more than the burst, however long it rested
    assert buckets.acquire(key, limit, 1, now=T0 + 120) == type(full)(granted=1, wait=0.0)


def test_a_message_needing_several_tokens_waits_until_they_are_all_there(store, key):
    buckets, limit = store(), Limit(rate=1, burst=3)
    buckets.acquire(key, limit, 3, now=T0)

    refused = buckets.acquire(key, limit, 2, least=2, now=T0 + 1)
    granted = buckets.acquire(key, limit, 2, least=2, now=T0 + 2)

    assert (refused.granted, refused.wait) == (0, pytest.approx(1.0))
    assert granted.granted == 2


def test_a_throttled_provider_blocks_its_bucket_for_the_retry_after(store, key):
    buckets, limit = store(), Limit(rate=10, burst=10)
    buckets.acquire(key, limit, 1, now=T0)

    buckets.block(key, 30, now=T0)

    blocked = buckets.acquire(key, limit, 5, now=T0 + 10)
    assert (blocked.granted, blocked.wait) == (0, pytest.approx(20))
    assert buckets.acquire(key, limit, 5, now=T0 + 30).granted == 5
    assert buckets.acquire(key, limit, 1, now=T0 + 30, least=1).granted == 1


def _take_for(store_name: str, key: str, seconds: float, results) -> None:
    """In a child process: acquire small batches as fast as possible for ``seconds``; report the total granted."""
    buckets = _redis_buckets() if store_name == "redis" else CacheBuckets()
    limit = Limit(rate=50, burst=10)
    granted = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        granted += buckets.acquire(key, limit, 3).granted
    results.put(granted)


@pytest.mark.parametrize("store_name", [pytest.param("redis", marks=pytest.mark.postgres), "cache"])
def test_processes_sharing_a_bucket_never_get_more_than_rate_times_time_plus_burst(store_name, key):
    if store_name == "redis":
        _needs_redis()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    started = time.time()
    processes = [context.Process(target=_take_for, args=(store_name, key, 1.0, results)) for _ in range(6)]
    for process in processes:
        process.start()
    totals = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    elapsed = time.time() - started  # covers every grant, so the bound below is never too tight

    assert all(process.exitcode == 0 for process in processes)
    # + 1: the last grant may take a token short by less than the store's epsilon (repaid by the next)
    assert sum(totals) <= 50 * elapsed + 10 + 1
    assert sum(totals) >= 10  # the burst at least went out


def test_a_twilio_sender_is_limited_by_its_kind_unless_configured_itself(settings):
    settings.DELIVERY_RATE_LIMITS = {"twilio:+14155550100": {"rate": 30, "burst": 30}}

    assert provider_class("twilio:+14155550199") == "twilio:long-code"
    assert provider_class("twilio:+18885550100") == "twilio:toll-free"
    assert provider_class("twilio:12345") == "twilio:short-code"
    assert provider_class("twilio:MG0123456789abcdef") == "twilio:messaging-service"
    assert limit_for("twilio:+14155550199") == Limit(rate=1, burst=1)
    assert limit_for("twilio:12345") == Limit(rate=100, burst=100)
    assert limit_for("twilio:+14155550100") == Limit(rate=30, burst=30)
    assert limit_for("email:amazon-ses") == Limit(rate=10, burst=10)
    assert limit_for("email:some-other-esp") == Limit(rate=10, burst=10)
    assert limit_for("fcm") == Limit(rate=5000, burst=5000)
    assert limit_for("outbox") is None


def test_a_limit_without_a_positive_rate_is_refused(settings):
    settings.DELIVERY_RATE_LIMITS = {"fcm": {"rate": 0}}

    with pytest.raises(ValueError, match="rate > 0"):
        limit_for("fcm")
