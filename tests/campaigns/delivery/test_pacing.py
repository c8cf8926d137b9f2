"""The send step under a provider's shared rate limit, its throttling and its transient failures.

Time is a fake clock (``pacing.clock``): the buckets read it and sleeping advances it, so nothing here
waits or depends on how fast the machine is.
"""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.channels import registry
from campaigns.channels.base import SendResult
from campaigns.delivery import pacing
from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.ratelimit import Limit, buckets
from campaigns.delivery.sending import RATE_LIMITED, delivery_chunk_send
from campaigns.models import Delivery
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.campaigns.esp import ESPS
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
S = Delivery.Status


class FakeClock:
    def __init__(self):
        self.t = 1_800_000_000.0
        self.slept: list[float] = []

    def bucket_time(self):
        return self.t

    def monotonic(self):
        return self.t

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.t += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(pacing, "clock", fake)
    return fake


class CountingBackend:
    """A provider behind the protocol with its own bucket key; records each batch it is handed."""

    channel = "email"

    def __init__(self, key, batches):
        self.key, self.batches = key, batches

    def rate_limit_key(self, payload):
        return self.key

    def build_payload(self, *, rendered, to, metadata, links):
        return {"to": to, "delivery_id": metadata["delivery_id"]}

    def send_many(self, payloads):
        # Only what is about to leave is marked handed over; the rest of the chunk is not.
        ids = [payload["delivery_id"] for payload in payloads]
        assert not Delivery.objects.filter(pk__in=ids, handed_at=None).exists()
        self.batches.append(ids)
        return [SendResult(provider_id=f"p-{delivery_id}") for delivery_id in ids]


@pytest.fixture
def limited(settings, monkeypatch):
    """Twenty email deliveries launched, sent through a provider limited to 5/s with a burst of 5."""
    settings.DELIVERY_OUTBOX_CHANNELS = []
    key = f"email:test-{uuid.uuid4().hex}"
    settings.DELIVERY_RATE_LIMITS = {key: {"rate": 5, "burst": 5}}
    batches: list[list[int]] = []
    registry.channel_get("sms")  # the defaults first
    monkeypatch.setitem(registry._factories, "email", lambda: CountingBackend(key, batches))
    for index in range(20):
        granted(CustomerFactory(first_name=f"C{index}"), "email")
    campaign = sending_campaign(channels="email")
    ranges = campaign_launch(campaign=campaign).ranges
    return campaign, (ranges[0][0], ranges[-1][1]), batches, key


def _send(campaign, ids, now):
    return delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=ids[0], last_id=ids[1], now=now)


def test_a_chunk_sends_the_burst_then_waits_in_the_task_for_the_rest(limited, clock, django_assert_max_num_queries):
    campaign, ids, batches, _key = limited

    # The chunk's usual statements (with the quiet-hours and cap rule reads) plus one "handed over"
    # mark per batch (and the stub's own check per batch): nothing per message.
    with django_assert_max_num_queries(24 + 4 + 4):
        result = _send(campaign, ids, timezone.now())

    assert [len(batch) for batch in batches] == [5, 5, 5, 5]
    assert clock.slept == [pytest.approx(1.0)] * 3  # a bucket's worth each time, not a round trip per message
    assert result.statuses == {"sent": 20}
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


def test_beyond_the_wait_budget_the_rest_is_queued_again_spread_out_and_then_sent(limited, clock, settings):
    settings.DELIVERY_RATE_LIMIT_BUDGET_SECONDS = 0
    campaign, ids, batches, _key = limited
    now = timezone.now()

    result = _send(campaign, ids, now)

    assert [len(batch) for batch in batches] == [5]
    assert clock.slept == []
    assert result.statuses == {"sent": 5, "queued": 15}
    waiting = list(Delivery.objects.filter(status=S.QUEUED).order_by("pk"))
    assert {(row.error, row.attempts, row.handed_at) for row in waiting} == {(RATE_LIMITED, 0, None)}
    due = [row.not_before for row in waiting]
    assert due[0] == now + timedelta(seconds=0.2)  # the next token
    assert due == sorted(due)
    assert due[-1] == now + timedelta(seconds=0.2 + 14 / 5)

    rounds = 0
    while Delivery.objects.filter(status=S.QUEUED).exists():
        rounds += 1
        clock.t += 1
        _send(campaign, ids, max(Delivery.objects.filter(status=S.QUEUED).values_list("not_before", flat=True)))
    assert rounds == 3
    assert Delivery.objects.filter(status=S.SENT).count() == 20
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}  # waiting cost no attempt
    assert sorted(pk for batch in batches for pk in batch) == list(
        Delivery.objects.order_by("pk").values_list("pk", flat=True)
    )


def test_a_wait_longer_than_allowed_in_one_go_queues_the_rest(limited, clock, settings):
    settings.DELIVERY_RATE_LIMIT_MAX_WAIT_SECONDS = 0.1  # below the 0.2 s until the next token
    campaign, ids, batches, _key = limited

    result = _send(campaign, ids, timezone.now())

    assert result.statuses == {"sent": 5, "queued": 15}
    assert [len(batch) for batch in batches] == [5]
    assert clock.slept == []


@pytest.fixture
def postmark(settings, http_stub):
    """The real Postmark backend through anymail, over the HTTP stub; its bucket is emptied first."""
    ESPS["postmark"].configure(settings, http_stub)
    settings.DELIVERY_OUTBOX_CHANNELS = []
    settings.DELIVERY_RATE_LIMITS = {"email:postmark": {"rate": 50, "burst": 50}}
    return http_stub


def _email_campaign(count):
    for index in range(count):
        granted(CustomerFactory(first_name=f"C{index}"), "email")
    campaign = sending_campaign(channels="email")
    ranges = campaign_launch(campaign=campaign).ranges
    return campaign, (ranges[0][0], ranges[-1][1])


def test_a_429_with_retry_after_requeues_not_before_it_and_blocks_the_provider_for_every_worker(postmark, clock):
    buckets().block("email:postmark", 0, now=clock.t)  # a fresh bucket whatever earlier tests left
    postmark.add(
        "POST",
        r"^https://api\.postmarkapp\.com/email$",
        answer=lambda seen: (429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, {"Retry-After": "120"}),
    )
    clock.t += 100  # the bucket is full again
    campaign, ids = _email_campaign(3)
    now = timezone.now()

    _send(campaign, ids, now)

    rows = list(Delivery.objects.all())
    assert {row.status for row in rows} == {S.QUEUED}
    assert all(row.not_before >= now + timedelta(seconds=120) for row in rows)
    assert {row.attempts for row in rows} == {1}
    assert {row.handed_at for row in rows} == {None}  # refused, so a worker lost on the retry sends it again
    after = buckets().acquire("email:postmark", Limit(rate=50, burst=50), 10, now=clock.t + 60)
    assert (after.granted, after.wait) == (0, pytest.approx(60))  # another worker is held back too


def test_a_429_mid_chunk_holds_back_the_rest_of_the_chunk_until_its_retry_after(postmark, clock, settings):
    settings.DELIVERY_RATE_LIMITS = {"email:postmark": {"rate": 2, "burst": 2}}
    buckets().block("email:postmark", 0, now=clock.t)
    clock.t += 100
    answers = iter([(200, None), (429, {"ErrorCode": 429, "Message": "slow down"}, {"Retry-After": "60"})])

    def answer(seen):
        status, *rest = next(answers, (200, None))
        if status == 200:
            return ESPS["postmark"].ok(seen)
        return (status, *rest)

    postmark.add("POST", r"^https://api\.postmarkapp\.com/email$", answer=answer)
    campaign, ids = _email_campaign(6)
    now = timezone.now()

    result = _send(campaign, ids, now)

    assert result.statuses == {"sent": 1, "queued": 5}
    assert len(postmark.to("postmarkapp")) == 2  # nothing more was tried during the pause
    held = Delivery.objects.filter(status=S.QUEUED, error=RATE_LIMITED)
    assert held.count() == 4
    assert all(row.not_before >= now + timedelta(seconds=60) for row in held)


def test_a_5xx_is_retried_after_a_jittered_backoff_and_fails_after_the_last_attempt(postmark, clock, settings):
    settings.DELIVERY_MAX_ATTEMPTS = 3
    settings.DELIVERY_RETRY_BASE_SECONDS = 60
    postmark.add("POST", r"^https://api\.postmarkapp\.com/email$", 500, {"ErrorCode": 500, "Message": "oops"})
    ceilings = []
    settings_uniform = pacing._random.uniform

    def uniform(low, high):
        ceilings.append((low, high))
        return settings_uniform(low, high)

    pacing._random.uniform = uniform
    try:
        campaign, ids = _email_campaign(2)
        now = timezone.now()
        for _attempt in range(3):
            clock.t += 100
            _send(campaign, ids, now)
            pending = Delivery.objects.filter(status=S.QUEUED)
            for row in pending:
                assert now < row.not_before <= now + timedelta(seconds=60 * 2 ** (row.attempts - 1))
            now = max([now, *pending.values_list("not_before", flat=True)])
    finally:
        pacing._random.uniform = settings_uniform

    assert ceilings == [(0, 60), (0, 60), (0, 120), (0, 120)]
    assert set(Delivery.objects.values_list("status", "reason", "attempts")) == {
        (S.FAILED, "provider_unavailable", 3)
    }


def test_retry_delays_use_full_jitter_up_to_a_cap_and_honour_retry_after(settings, monkeypatch):
    settings.DELIVERY_RETRY_BASE_SECONDS = 60
    settings.DELIVERY_RETRY_MAX_SECONDS = 600
    monkeypatch.setattr(pacing._random, "uniform", lambda low, high: high)

    assert [pacing.retry_delay(attempt=n) for n in range(1, 6)] == [60, 120, 240, 480, 600]
    assert pacing.retry_delay(attempt=1, retry_after=300) == 300
    assert pacing.retry_delay(attempt=3, retry_after=30) == 240

    monkeypatch.setattr(pacing._random, "uniform", lambda low, high: low)
    assert pacing.retry_delay(attempt=4) == 0
    assert pacing.retry_delay(attempt=4, retry_after=10**9) == 86_400


def test_with_the_limiter_unreachable_nothing_is_sent_blind_and_everything_comes_back_later(
    limited, clock, monkeypatch
):
    import redis

    class Down:
        def acquire(self, *args, **kwargs):
            raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(pacing, "buckets", lambda: Down())
    campaign, ids, batches, _key = limited
    now = timezone.now()

    result = _send(campaign, ids, now)

    assert batches == []
    assert result.statuses == {"queued": 20}
    rows = Delivery.objects.all()
    assert {(row.attempts, row.handed_at, row.error) for row in rows} == {(0, None, RATE_LIMITED)}
    assert min(row.not_before for row in rows) >= now + timedelta(seconds=60)
