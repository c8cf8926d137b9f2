"""Frequency caps: each rule kind, skip vs defer with the next free slot, release, bounded statements."""

import datetime
import importlib

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from campaigns.delivery.caps import REASON, CapRequest, caps_counters_prune, caps_release, caps_reserve
from campaigns.models import Campaign, FrequencyCounter, FrequencyRule
from customers.services.preferences import customer_frequency_set
from tests.factories import CustomerFactory

UTC = datetime.UTC
# A Wednesday, 10:00 UTC.
NOW = datetime.datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
def rules(db):
    """No seeded rule: each test states the rules it is about."""
    FrequencyRule.objects.all().delete()

    def make(**values):
        values.setdefault("name", "rule")
        return FrequencyRule.objects.create(**values)

    return make


def _request(delivery_id, customer, channel="email", category="promotional", zone="UTC", when_capped=""):
    return CapRequest(delivery_id, customer.pk, channel, category, zone, when_capped)


def _allowed(decisions):
    return sorted(delivery_id for delivery_id, decision in decisions.items() if decision.allowed)


def test_per_channel_rule_caps_that_channel_only(rules):
    # given one SMS a day
    rules(name="1 SMS a day", channel="sms", window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    customer = CustomerFactory()
    # when two SMS campaigns and one email reach the customer the same day
    first = caps_reserve(items=[_request(1, customer, "sms"), _request(2, customer, "email")], now=NOW)
    second = caps_reserve(items=[_request(3, customer, "sms")], now=NOW + datetime.timedelta(hours=2))
    # then the second SMS is refused, naming the rule; email is not counted
    assert _allowed(first) == [1, 2]
    assert not second[3].allowed
    assert second[3].reason == REASON
    assert second[3].rule == "1 SMS a day"


def test_across_channels_rule_counts_every_channel_and_one_chunk_in_delivery_order(rules):
    # given at most 2 messages a week on any channel
    rules(window=FrequencyRule.Window.CALENDAR_WEEK, limit=2)
    customer = CustomerFactory()
    # when one chunk carries email, SMS and push for the customer
    decisions = caps_reserve(
        items=[_request(7, customer, "push"), _request(5, customer, "email"), _request(6, customer, "sms")], now=NOW
    )
    # then the first two by delivery id pass, the third is refused
    assert _allowed(decisions) == [5, 6]
    assert FrequencyCounter.objects.get(bucket=datetime.date(2026, 3, 2)).used == 2


def test_calendar_day_follows_the_recipients_zone_where_the_local_day_differs_from_utc(rules):
    rules(window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    auckland = CustomerFactory()
    # given 20:00 UTC on 4 March, which is already 09:00 on 5 March in Auckland (UTC+13)
    evening = datetime.datetime(2026, 3, 4, 20, 0, tzinfo=UTC)
    first = caps_reserve(items=[_request(1, auckland, zone="Pacific/Auckland")], now=NOW)  # 23:00 on 4 March there
    # when a second message comes at 20:00 UTC, the same UTC day but the next Auckland day
    second = caps_reserve(items=[_request(2, auckland, zone="Pacific/Auckland")], now=evening)
    third = caps_reserve(items=[_request(3, auckland, zone="Pacific/Auckland")], now=evening)
    # then it passes; a third on that Auckland day is deferred to Auckland's next midnight
    assert first[1].allowed
    assert second[2].allowed
    assert not third[3].allowed
    assert third[3].retry_at == datetime.datetime(2026, 3, 5, 11, 0, tzinfo=UTC)  # 6 March 00:00 NZDT
    assert set(FrequencyCounter.objects.values_list("bucket", flat=True)) == {
        datetime.date(2026, 3, 4),
        datetime.date(2026, 3, 5),
    }


def test_rolling_window_counts_the_last_days_and_frees_when_the_oldest_day_leaves(rules):
    # given 2 emails in a rolling 3 days
    rules(channel="email", window=FrequencyRule.Window.ROLLING_DAYS, limit=2, days=3)
    customer = CustomerFactory()
    day = datetime.timedelta(days=1)
    assert caps_reserve(items=[_request(1, customer)], now=NOW)[1].allowed  # Wednesday
    assert caps_reserve(items=[_request(2, customer)], now=NOW + day)[2].allowed  # Thursday
    # when a third comes on Friday (Wednesday is still in the window)
    friday = caps_reserve(items=[_request(3, customer)], now=NOW + 2 * day)
    # then it is refused until Saturday 00:00 UTC, when Wednesday leaves the window
    assert not friday[3].allowed
    assert friday[3].retry_at == datetime.datetime(2026, 3, 7, tzinfo=UTC)
    assert caps_reserve(items=[_request(4, customer)], now=NOW + 3 * day)[4].allowed


def test_minimum_gap_spaces_two_messages(rules):
    rules(window=FrequencyRule.Window.MIN_GAP, gap_hours=48)
    customer = CustomerFactory()
    assert caps_reserve(items=[_request(1, customer)], now=NOW)[1].allowed
    # when the next comes 47 hours later, then 48
    early = caps_reserve(items=[_request(2, customer, "sms")], now=NOW + datetime.timedelta(hours=47))
    on_time = caps_reserve(items=[_request(3, customer)], now=NOW + datetime.timedelta(hours=48))
    # then the early one waits for the end of the gap
    assert not early[2].allowed
    assert early[2].retry_at == NOW + datetime.timedelta(hours=48)
    assert on_time[3].allowed


def test_customers_own_weekly_choice_is_honoured(rules):
    # given a generous house rule and a customer who asked for at most one a week
    rules(window=FrequencyRule.Window.CALENDAR_WEEK, limit=5)
    own = FrequencyRule.LimitSource.CUSTOMER
    rules(name="own choice", window=FrequencyRule.Window.ROLLING_DAYS, days=7, limit_source=own)
    choosy, other = CustomerFactory(), CustomerFactory()
    customer_frequency_set(customer=choosy, max_messages_per_week=1)
    # when two messages go to each
    decisions = caps_reserve(
        items=[_request(1, choosy), _request(2, choosy, "sms"), _request(3, other), _request(4, other, "sms")], now=NOW
    )
    # then the choosy customer gets one, the other both
    assert _allowed(decisions) == [1, 3, 4]
    assert decisions[2].rule == "own choice"


def test_transactional_messages_are_never_capped(rules, django_assert_num_queries):
    rules(window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    customer = CustomerFactory()
    caps_reserve(items=[_request(1, customer)], now=NOW)
    with django_assert_num_queries(0):
        decisions = caps_reserve(items=[_request(2, customer, category="transactional")], now=NOW)
    assert decisions[2].allowed
    assert decisions[2].reservations == ()


def test_category_rule_caps_only_its_category(rules):
    rules(category="event", window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    customer = CustomerFactory()
    decisions = caps_reserve(
        items=[
            _request(1, customer, category="event"),
            _request(2, customer, "sms", category="event"),
            _request(3, customer, "push", category="loyalty"),
        ],
        now=NOW,
    )
    assert _allowed(decisions) == [1, 3]


def test_capped_delivery_is_skipped_or_deferred_per_category_and_campaign_choice(rules):
    rules(window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    customer = CustomerFactory()
    caps_reserve(items=[_request(1, customer, category="event")], now=NOW)
    # when promotional, loyalty and event messages, and a promotional campaign that chose to defer, are capped
    decisions = caps_reserve(
        items=[
            _request(2, customer, category="promotional"),
            _request(3, customer, category="loyalty"),
            _request(4, customer, category="event"),
            _request(5, customer, category="promotional", when_capped="defer"),
        ],
        now=NOW,
    )
    # then promotional is skipped, loyalty and event deferred to the next local midnight, the choice wins
    assert [decisions[i].action for i in (2, 3, 4, 5)] == ["skip", "defer", "defer", "defer"]
    assert {decisions[i].retry_at for i in (2, 3, 4, 5)} == {datetime.datetime(2026, 3, 5, tzinfo=UTC)}


def test_next_free_slot_is_when_every_rule_has_room(rules):
    # given a daily SMS rule and a weekly rule, both full
    rules(channel="sms", window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    rules(window=FrequencyRule.Window.CALENDAR_WEEK, limit=1)
    customer = CustomerFactory()
    caps_reserve(items=[_request(1, customer, "sms")], now=NOW)
    # when another SMS is refused by the daily rule first
    decisions = caps_reserve(items=[_request(2, customer, "sms", category="loyalty")], now=NOW)
    # then it is deferred past the week, not just to tomorrow
    assert decisions[2].retry_at == datetime.datetime(2026, 3, 9, tzinfo=UTC)


def test_campaign_capped_action_defaults_from_category_and_can_be_chosen():
    assert Campaign(category="promotional").capped_action == "skip"
    assert Campaign(category="loyalty").capped_action == "defer"
    assert Campaign(category="event").capped_action == "defer"
    assert Campaign(category="promotional", when_capped="defer").capped_action == "defer"


def test_passing_one_rule_and_failing_the_next_releases_the_first(rules):
    weekly = rules(window=FrequencyRule.Window.CALENDAR_WEEK, limit=5)
    rules(channel="sms", window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    customer = CustomerFactory()
    caps_reserve(items=[_request(1, customer, "sms")], now=NOW)
    # when a second SMS passes the weekly rule but fails the daily one
    decisions = caps_reserve(items=[_request(2, customer, "sms")], now=NOW)
    # then the weekly counter holds only the first
    assert not decisions[2].allowed
    assert FrequencyCounter.objects.get(rule=weekly).used == 1


def test_release_frees_the_slot(rules):
    rules(window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    gap = rules(window=FrequencyRule.Window.MIN_GAP, gap_hours=24)
    customer = CustomerFactory()
    granted = caps_reserve(items=[_request(1, customer)], now=NOW)[1]
    assert len(granted.reservations) == 2
    # when the provider refuses it and the reservation is released
    caps_release(reservations=granted.reservations)
    # then the next message passes both rules
    assert caps_reserve(items=[_request(2, customer)], now=NOW + datetime.timedelta(minutes=5))[2].allowed
    assert FrequencyCounter.objects.get(rule=gap).previous_at is None


def test_no_rule_means_no_cap(rules):
    customer = CustomerFactory()
    decisions = caps_reserve(items=[_request(i, customer, c) for i, c in enumerate(["email", "sms", "push"])], now=NOW)
    assert _allowed(decisions) == [0, 1, 2]


@pytest.mark.parametrize(
    "bad",
    [
        {"category": "newsletter"},
        {"channel": "fax"},
        {"zone": "Mars/Olympus"},
        {"when_capped": "drop"},
    ],
)
def test_bad_request_is_refused_and_reserves_nothing(rules, bad):
    rules(window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    customer = CustomerFactory()
    values = {"delivery_id": 2, "customer_id": customer.pk, "channel": "email", "category": "promotional"} | bad
    with pytest.raises(ValueError):
        caps_reserve(items=[_request(1, customer), CapRequest(**values)], now=NOW)
    assert not FrequencyCounter.objects.exists()


def test_repeated_delivery_id_is_refused(rules):
    customer = CustomerFactory()
    with pytest.raises(ValueError, match="twice"):
        caps_reserve(items=[_request(1, customer), _request(1, customer, "sms")], now=NOW)


@pytest.mark.parametrize("size", [200, 1000])
def test_statements_per_chunk_are_bounded_whatever_its_size(db, size, django_assert_max_num_queries):
    # given the seeded default rules (SMS daily, email rolling, weekly across channels, own choice)
    FrequencyRule.objects.all().delete()
    _seed_defaults()
    customers = CustomerFactory.create_batch(size // 2)
    customer_frequency_set(customer=customers[0], max_messages_per_week=1)
    items = [_request(2 * i + k, c, ("email", "sms")[k]) for i, c in enumerate(customers) for k in (0, 1)]
    caps_reserve(items=items[: size // 4], now=NOW)  # some counters exist already, some are full
    # when a chunk with two channels per customer is reserved
    with django_assert_max_num_queries(20):
        decisions = caps_reserve(items=items, now=NOW)
    # then it took a bounded number of statements and every customer got both (limits not reached)
    assert len(_allowed(decisions)) >= size - size // 4 - 2


def _seed_defaults():
    migration = importlib.import_module("campaigns.migrations.0008_frequency_rules_default")
    migration.add_default_rules(django_apps, None)


def test_default_rules_are_seeded(db):
    FrequencyRule.objects.all().delete()
    _seed_defaults()
    rows = {(r.channel, r.window, r.limit, r.days, r.limit_source) for r in FrequencyRule.objects.all()}
    assert rows == {
        ("sms", "calendar_day", 1, 7, "rule"),
        ("email", "rolling_days", 3, 7, "rule"),
        ("", "calendar_week", 5, 7, "rule"),
        ("", "rolling_days", 1, 7, "customer"),
    }


def test_old_counters_are_pruned_but_gap_heads_kept(rules):
    rules(window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    rules(window=FrequencyRule.Window.MIN_GAP, gap_hours=1)
    customer = CustomerFactory()
    caps_reserve(items=[_request(1, customer)], now=NOW - datetime.timedelta(days=60))
    caps_reserve(items=[_request(2, customer)], now=NOW)
    assert caps_counters_prune(now=NOW) == 1
    assert FrequencyCounter.objects.count() == 2


def test_the_daily_prune_runs_from_beat_on_the_dispatch_queue(settings, rules):
    from campaigns.tasks import frequency_counters_prune_task

    rules(window=FrequencyRule.Window.CALENDAR_DAY, limit=1)
    caps_reserve(items=[_request(1, CustomerFactory())], now=timezone.now() - datetime.timedelta(days=60))
    assert FrequencyCounter.objects.exists()

    entry = settings.CELERY_BEAT_SCHEDULE["frequency-counters-prune"]
    assert entry["task"] == frequency_counters_prune_task.name
    assert settings.CELERY_TASK_ROUTES[entry["task"]] == {"queue": "dispatch"}
    frequency_counters_prune_task()

    assert not FrequencyCounter.objects.exists()  # a 60-day-old day counter counts in no window
