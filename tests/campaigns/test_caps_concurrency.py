"""Frequency caps hold across workers: real processes on PostgreSQL reserving for the same customers."""

import datetime
from collections import Counter

import pytest

from campaigns.delivery.caps import CapRequest, caps_reserve
from campaigns.models import FrequencyCounter, FrequencyRule
from customers.models import Customer, Source
from tests.concurrency import errors, race

NOW = datetime.datetime(2026, 3, 4, 10, 0, tzinfo=datetime.UTC)


def _customers(n):
    Customer.objects.bulk_create(Customer(email=f"race{i}@example.com", source=Source.WEB) for i in range(n))
    return list(Customer.objects.order_by("pk").values_list("pk", flat=True))


def _campaign_chunk(campaign, customer_ids, channels=("email",)):
    """What one campaign's chunk asks: delivery ids of its own, the same customers as everyone else."""

    def reserve():
        items = [
            CapRequest(campaign * 1_000_000 + i * 10 + k, customer_id, channel, "promotional", "Europe/Paris")
            for i, customer_id in enumerate(customer_ids)
            for k, channel in enumerate(channels)
        ]
        decisions = caps_reserve(items=items, now=NOW + datetime.timedelta(seconds=campaign))
        return [(item.customer_id, item.channel) for item in items if decisions[item.delivery_id].allowed]

    return reserve


@pytest.mark.postgres
def test_four_campaigns_at_once_never_exceed_one_a_day(transactional_db):
    # given a cap of one message a day and 1,000 customers
    FrequencyRule.objects.all().delete()
    FrequencyRule.objects.create(name="1 a day", window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    customer_ids = _customers(1000)
    # when four campaigns reserve for all of them at the same moment, each in its own process
    outcomes = race(*(_campaign_chunk(campaign, customer_ids) for campaign in range(1, 5)))
    # then exactly 1,000 reservations were granted, one per customer, none over the cap
    assert errors(outcomes) == []
    granted = [pair for outcome in outcomes for pair in outcome.value]
    assert len(granted) == 1000
    assert Counter(customer for customer, _channel in granted) == dict.fromkeys(customer_ids, 1)
    assert set(FrequencyCounter.objects.values_list("used", flat=True)) == {1}


@pytest.mark.postgres
def test_concurrent_chunks_hold_every_rule_kind_with_a_gap_without_deadlock(transactional_db):
    # given overlapping rules of every kind and 300 customers reached on two channels by four campaigns
    FrequencyRule.objects.all().delete()
    FrequencyRule.objects.create(name="2 a week", window=FrequencyRule.Window.CALENDAR_WEEK, limit=2)
    rolling = FrequencyRule.objects.create(name="3 in 7 days", window=FrequencyRule.Window.ROLLING_DAYS, limit=3)
    FrequencyRule.objects.create(name="1 SMS a day", channel="sms", window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    FrequencyRule.objects.create(name="gap", window=FrequencyRule.Window.MIN_GAP, gap_hours=1)
    customer_ids = _customers(300)
    # an earlier day already holds one rolling reservation for each
    FrequencyCounter.objects.bulk_create(
        FrequencyCounter(rule=rolling, customer_id=pk, bucket=datetime.date(2026, 3, 1), used=1, allowance=3)
        for pk in customer_ids
    )
    # when they all reserve at once
    outcomes = race(*(_campaign_chunk(c, customer_ids, ("email", "sms")) for c in range(1, 5)))
    # then no worker failed (no deadlock) and each customer got exactly one: the gap allows no second
    assert errors(outcomes) == []
    granted = Counter(customer for outcome in outcomes for customer, _channel in outcome.value)
    assert granted == dict.fromkeys(customer_ids, 1)
    rolling_used = Counter()
    for customer_id, used in FrequencyCounter.objects.filter(rule=rolling).values_list("customer_id", "used"):
        rolling_used[customer_id] += used
    assert set(rolling_used.values()) == {2}


@pytest.mark.postgres
def test_concurrent_chunks_never_exceed_a_rolling_window(transactional_db):
    # given 3 messages in 7 days, one SMS a day, and one message already sent three days ago
    FrequencyRule.objects.all().delete()
    FrequencyRule.objects.create(name="5 a week", window=FrequencyRule.Window.CALENDAR_WEEK, limit=5)
    rolling = FrequencyRule.objects.create(name="3 in 7 days", window=FrequencyRule.Window.ROLLING_DAYS, limit=3)
    FrequencyRule.objects.create(name="1 SMS a day", channel="sms", window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    customer_ids = _customers(300)
    FrequencyCounter.objects.bulk_create(
        FrequencyCounter(rule=rolling, customer_id=pk, bucket=datetime.date(2026, 3, 1), used=1, allowance=3)
        for pk in customer_ids
    )
    # when four campaigns reach them on email and SMS at once
    outcomes = race(*(_campaign_chunk(c, customer_ids, ("email", "sms")) for c in range(1, 5)))
    # then each customer gets exactly the two the window has room for, at most one of them an SMS
    assert errors(outcomes) == []
    granted = [pair for outcome in outcomes for pair in outcome.value]
    assert Counter(customer for customer, _channel in granted) == dict.fromkeys(customer_ids, 2)
    assert max(Counter(customer for customer, channel in granted if channel == "sms").values()) == 1
    rolling_used = Counter()
    for customer_id, used in FrequencyCounter.objects.filter(rule=rolling).values_list("customer_id", "used"):
        rolling_used[customer_id] += used
    assert set(rolling_used.values()) == {3}
