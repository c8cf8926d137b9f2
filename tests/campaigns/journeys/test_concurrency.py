"""Two ticks at once, in two processes, never run a step twice."""

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Delivery, Enrolment, JourneyStepRun
from tests.concurrency import errors, race
from tests.factories.customers import PurchaseFactory

from .conftest import consented, live_journey

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_ticks_at_once_never_run_a_step_twice():
    from datetime import timedelta

    start = timezone.now()
    journey = live_journey(now=start)
    for _ in range(30):
        PurchaseFactory(customer=consented(), occurred_at=start)
    at = start + timedelta(minutes=1)

    def worker():
        from campaigns.journeys.tick import journeys_tick

        connection.close()
        return journeys_tick(now=at, batch_size=7).stepped

    outcomes = race(worker, worker)
    assert not errors(outcomes)
    assert Enrolment.objects.filter(journey=journey).count() == 30
    assert JourneyStepRun.objects.filter(enrolment__journey=journey, step_key="welcome").count() == 30
    assert Delivery.objects.filter(cause_type=Delivery.Cause.JOURNEY_STEP).count() == 30
    assert set(Enrolment.objects.filter(journey=journey).values_list("step_key", flat=True)) == {"wait"}
