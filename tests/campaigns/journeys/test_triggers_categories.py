"""Product categories in journeys: the purchase trigger filtered by category, and the replenishment
trigger on the day what was bought usually runs out in the customer's zone; days pass under time-machine."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from campaigns.journeys.tick import journeys_tick
from campaigns.journeys.triggers import journeys_enrol_due
from campaigns.models import Enrolment, Journey
from customers.services import purchase_record
from tests.factories.customers import ProductCategoryFactory, StoreFactory

from .conftest import consented, live_journey

pytestmark = pytest.mark.django_db
UTC = dt.UTC
START = dt.datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
EACH_TIME = Journey.Reentry.EACH_TIME
NEW_YORK = {"time_zone": "America/New_York", "time_zone_source": "explicit"}


def at(moment):
    return time_machine.travel(moment, tick=False)


def journey_of(trigger, params, **fields):
    fields.setdefault("reentry", EACH_TIME)
    with at(START):
        return live_journey(now=START, trigger=trigger, trigger_params=params, **fields)


def bought(customer, moment, *categories, store=None):
    """A purchase recorded at ``moment`` (its time too) through the service."""
    with at(moment):
        purchase, _ = purchase_record(
            customer=customer,
            channel="store" if store else "online",
            source="till" if store else "online_shop",
            external_ref=f"R-{moment.isoformat()}-{customer.pk}",
            amount=Decimal("10.00"),
            occurred_at=moment,
            store=store,
            categories=categories,
        )
    return purchase


def tick_at(*moments) -> list[int]:
    enrolled = []
    for moment in moments:
        with at(moment):
            enrolled.append(journeys_tick(now=moment).enrolled)
    return enrolled


def hourly(first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    hours = int((last - first) / dt.timedelta(hours=1))
    return [first + dt.timedelta(hours=h) for h in range(hours + 1)]


def keys(journey) -> list[str]:
    return sorted(Enrolment.objects.filter(journey=journey).values_list("entry_key", flat=True))


def minutes(n):
    return START + dt.timedelta(minutes=n)


# --- a purchase, by product category ---------------------------------------------------------------


def test_purchase_trigger_fires_once_per_purchase_of_a_chosen_category_never_for_others():
    shampoo, soap, coffee = (ProductCategoryFactory(name=name) for name in ("Shampoo", "Soap", "Coffee"))
    store = StoreFactory()
    journey = journey_of(
        Journey.Trigger.PURCHASE, {"channel": "any", "category_ids": [shampoo.pk, soap.pk]}, name="Care"
    )
    anyone = journey_of(Journey.Trigger.PURCHASE, {"channel": "store"}, name="Any store purchase")
    ann, bob, cat = consented(), consented(), consented()
    both = bought(ann, minutes(5), shampoo, soap, store=store)  # two chosen categories: one entry
    bought(bob, minutes(5), coffee, store=store)  # another category only
    bought(cat, minutes(5), store=store)  # no category at all
    before = bought(cat, minutes(-30), soap)  # before the journey went live (and its overlap)
    # when the tick runs, runs again a minute later (re-reading the overlap), then misses a day
    counts = tick_at(minutes(6), minutes(7))
    later = bought(bob, minutes(30), coffee, shampoo)
    online = bought(cat, minutes(40), soap)
    counts += tick_at(minutes(24 * 60), minutes(24 * 60 + 1))
    # then each purchase holding a chosen category entered once, whoever and wherever
    assert keys(journey) == sorted(f"purchase:{p.pk}" for p in (both, later, online))
    assert f"purchase:{before.pk}" not in keys(journey)
    assert len(keys(anyone)) == 3  # the store purchases, categories or not
    assert counts == [1 + 3, 0, 2, 0]


# --- replenishment due -----------------------------------------------------------------------------


def enrolled_at(journey, moments) -> dict[str, dt.datetime]:
    """entry key -> the tick that enrolled it, over ``moments``; fails on an entry enrolled twice."""
    seen: dict[str, dt.datetime] = {}
    for moment in moments:
        tick_at(moment)
        for key in keys(journey):
            seen.setdefault(key, moment)
    assert len(keys(journey)) == len(set(keys(journey)))
    return seen


def test_replenishment_fires_on_the_nth_local_day_at_the_journeys_time_once():
    shampoo = ProductCategoryFactory(name="Shampoo", replenish_after_days=30)
    coffee = ProductCategoryFactory(name="Coffee")  # no replenishment time: never a reminder
    retired = ProductCategoryFactory(name="Retired", replenish_after_days=30, is_active=False)
    journey = journey_of(Journey.Trigger.REPLENISHMENT_DUE, {"time": "09:00"})
    ann = consented(**NEW_YORK)
    # 22:00 on 10 January in New York is already the 11th in UTC: the local day counts
    purchase = bought(ann, dt.datetime(2027, 1, 11, 3, 0, tzinfo=UTC), shampoo, coffee, retired)
    # when the tick runs hourly from 8 to 11 February
    fired = enrolled_at(journey, hourly(dt.datetime(2027, 2, 8, tzinfo=UTC), dt.datetime(2027, 2, 11, tzinfo=UTC)))
    # then Ann entered once, at 09:00 New York time on 9 February (30 local days on), for shampoo only
    assert fired == {f"replenish:{shampoo.pk}:{purchase.pk}": dt.datetime(2027, 2, 9, 14, 0, tzinfo=UTC)}


def test_replenishment_keeps_the_local_time_across_the_dst_change():
    vitamins = ProductCategoryFactory(name="Vitamins", replenish_after_days=30)
    journey = journey_of(Journey.Trigger.REPLENISHMENT_DUE, {"time": "09:00"})
    ann = consented(**NEW_YORK)
    bought(ann, dt.datetime(2027, 2, 20, 15, 0, tzinfo=UTC), vitamins)  # EST; due 22 March, EDT
    fired = enrolled_at(journey, hourly(dt.datetime(2027, 3, 21, tzinfo=UTC), dt.datetime(2027, 3, 23, tzinfo=UTC)))
    assert list(fired.values()) == [dt.datetime(2027, 3, 22, 13, 0, tzinfo=UTC)]


def test_no_reminder_after_a_repurchase_and_one_for_the_next_cycle():
    shampoo = ProductCategoryFactory(name="Shampoo", replenish_after_days=30)
    soap = ProductCategoryFactory(name="Soap", replenish_after_days=30)
    journey = journey_of(Journey.Trigger.REPLENISHMENT_DUE, {"time": "09:00", "category_ids": [shampoo.pk]})
    ann = consented(**NEW_YORK)
    first = bought(ann, dt.datetime(2027, 1, 10, 17, 0, tzinfo=UTC), shampoo, soap)
    again = bought(ann, dt.datetime(2027, 1, 25, 17, 0, tzinfo=UTC), shampoo)  # before it ran out
    # when the first purchase's day comes (9 February) and the repurchase's (24 February)
    fired = enrolled_at(
        journey,
        [
            *hourly(dt.datetime(2027, 2, 9, 10, tzinfo=UTC), dt.datetime(2027, 2, 9, 16, tzinfo=UTC)),
            *hourly(dt.datetime(2027, 2, 24, 10, tzinfo=UTC), dt.datetime(2027, 2, 24, 16, tzinfo=UTC)),
        ],
    )
    # then only the latest purchase reminds, on its own day; soap is not among the journey's categories
    assert fired == {f"replenish:{shampoo.pk}:{again.pk}": dt.datetime(2027, 2, 24, 14, 0, tzinfo=UTC)}
    assert f"replenish:{shampoo.pk}:{first.pk}" not in fired
    # and after the next purchase, the next cycle reminds again: a second enrolment
    third = bought(ann, dt.datetime(2027, 2, 26, 17, 0, tzinfo=UTC), shampoo)
    fired = enrolled_at(
        journey, hourly(dt.datetime(2027, 3, 28, 10, tzinfo=UTC), dt.datetime(2027, 3, 28, 16, tzinfo=UTC))
    )
    assert fired[f"replenish:{shampoo.pk}:{third.pk}"] == dt.datetime(2027, 3, 28, 13, 0, tzinfo=UTC)
    assert Enrolment.objects.filter(journey=journey, customer=ann).count() == 2


def test_missed_ticks_catch_up_once_and_each_category_of_a_purchase_reminds():
    shampoo = ProductCategoryFactory(name="Shampoo", replenish_after_days=30)
    razors = ProductCategoryFactory(name="Razors", replenish_after_days=45)
    journey = journey_of(Journey.Trigger.REPLENISHMENT_DUE, {"time": "09:00"})
    ann, bob = consented(**NEW_YORK), consented(time_zone="Europe/Paris", time_zone_source="explicit")
    purchase = bought(ann, dt.datetime(2027, 1, 10, 17, 0, tzinfo=UTC), shampoo, razors)
    other = bought(bob, dt.datetime(2027, 1, 10, 17, 0, tzinfo=UTC), shampoo)
    # when nobody ticks from 1 February until 1 March, then twice
    counts = tick_at(dt.datetime(2027, 2, 1, tzinfo=UTC), dt.datetime(2027, 3, 1, tzinfo=UTC))
    counts += tick_at(dt.datetime(2027, 3, 1, 0, 1, tzinfo=UTC))
    # then each (customer, category, purchase) entered once
    assert keys(journey) == sorted(
        [
            f"replenish:{shampoo.pk}:{purchase.pk}",
            f"replenish:{razors.pk}:{purchase.pk}",
            f"replenish:{shampoo.pk}:{other.pk}",
        ]
    )
    assert counts == [0, 3, 0]


def test_replenishment_is_found_set_based(django_assert_max_num_queries):
    shampoo = ProductCategoryFactory(name="Shampoo", replenish_after_days=30)
    journey = journey_of(Journey.Trigger.REPLENISHMENT_DUE, {"time": "09:00"})
    people = [consented(**NEW_YORK) for _ in range(25)]
    for person in people:
        bought(person, dt.datetime(2027, 1, 10, 17, 0, tzinfo=UTC), shampoo)
    due = dt.datetime(2027, 2, 9, 14, 0, tzinfo=UTC)
    with at(due - dt.timedelta(minutes=5)):
        journeys_enrol_due(now=due - dt.timedelta(minutes=5))
    with at(due), django_assert_max_num_queries(12):  # the same few statements for 25 people as for one
        done = journeys_enrol_due(now=due)
    assert done == {journey.pk: 25}


def test_a_minute_in_which_no_zone_reaches_the_time_reads_no_customers(django_assert_max_num_queries):
    from campaigns.journeys.triggers import wall_time_reached_somewhere

    nine = dt.time(9, 0)
    assert wall_time_reached_somewhere(
        wall_time=nine, since=dt.datetime(2027, 2, 9, 13, 59, tzinfo=UTC), until=dt.datetime(2027, 2, 9, 14, tzinfo=UTC)
    )
    kathmandu = dt.datetime(2027, 2, 9, 3, 15, tzinfo=UTC)  # UTC+05:45
    assert wall_time_reached_somewhere(wall_time=nine, since=kathmandu - dt.timedelta(minutes=1), until=kathmandu)
    quiet = dt.datetime(2027, 2, 9, 14, 7, tzinfo=UTC)
    assert not wall_time_reached_somewhere(wall_time=nine, since=quiet - dt.timedelta(minutes=1), until=quiet)

    ProductCategoryFactory(name="Shampoo", replenish_after_days=30)
    journey = journey_of(Journey.Trigger.REPLENISHMENT_DUE, {"time": "09:00"})
    with at(quiet - dt.timedelta(minutes=1)):
        journeys_enrol_due(now=quiet - dt.timedelta(minutes=1))
    with at(quiet), django_assert_max_num_queries(6) as captured:
        assert journeys_enrol_due(now=quiet) == {journey.pk: 0}
    assert not any("customers_customer" in query["sql"] for query in captured.captured_queries)
