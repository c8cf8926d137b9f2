"""The date trigger fires at the local time in each customer's zone, once, across days and DST."""

import datetime as dt

import pytest

from campaigns.journeys.tick import journeys_tick
from campaigns.models import Enrolment, Journey

from .conftest import consented, live_journey

pytestmark = pytest.mark.django_db
UTC = dt.UTC


@pytest.mark.postgres
def test_birthday_fires_at_nine_local_once_across_a_dst_change():
    # given a birthday journey (each year) and a New Yorker born on 3 November, the day after DST ends
    start = dt.datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    journey = live_journey(
        now=start,
        trigger=Journey.Trigger.DATE,
        trigger_params={"field": "birthday", "time": "09:00"},
        reentry=Journey.Reentry.EACH_TIME,
    )
    new_yorker = consented(time_zone="America/New_York", time_zone_source="explicit", birthday=dt.date(1990, 11, 2))
    other = consented(time_zone="Europe/Paris", time_zone_source="explicit", birthday=dt.date(1985, 11, 3))
    # when the tick runs every 30 minutes for four days (09:00 EST on 2 Nov is 14:00 UTC)
    fired = {}
    at = start
    while at < start + dt.timedelta(days=4):
        at += dt.timedelta(minutes=30)
        before = set(Enrolment.objects.filter(journey=journey).values_list("customer_id", flat=True))
        journeys_tick(now=at)
        for customer_id in (
            set(Enrolment.objects.filter(journey=journey).values_list("customer_id", flat=True)) - before
        ):
            fired[customer_id] = at
    # then each entered once, at the first tick after 09:00 in their zone
    assert Enrolment.objects.filter(journey=journey).count() == 2
    assert fired[new_yorker.pk] == dt.datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    assert fired[other.pk] == dt.datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
    assert Enrolment.objects.get(customer=new_yorker).entry_key == "date:2026-11-02"


@pytest.mark.postgres
def test_a_missed_day_of_ticks_catches_up_once():
    start = dt.datetime(2026, 3, 7, 0, 0, tzinfo=UTC)
    journey = live_journey(
        now=start, trigger=Journey.Trigger.DATE, trigger_params={"time": "09:00"}, reentry=Journey.Reentry.EACH_TIME
    )
    consented(time_zone="America/New_York", time_zone_source="explicit", birthday=dt.date(2000, 3, 8))
    # DST starts on 8 March 2026 in New York; nobody ticks until the 9th
    journeys_tick(now=dt.datetime(2026, 3, 9, 12, 0, tzinfo=UTC))
    journeys_tick(now=dt.datetime(2026, 3, 9, 12, 1, tzinfo=UTC))
    assert list(Enrolment.objects.filter(journey=journey).values_list("entry_key", flat=True)) == ["date:2026-03-08"]
