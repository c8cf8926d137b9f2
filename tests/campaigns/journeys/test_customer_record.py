"""A customer's record in the admin names the journeys they are in and the journey that sent each message."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.customer_record import campaigns_export_sections, journeys_header_panel
from campaigns.delivery.progress import delivery_timeline_entries
from campaigns.journeys.tick import journeys_tick
from tests.factories.customers import PurchaseFactory

from .conftest import consented, live_journey

pytestmark = pytest.mark.django_db


@pytest.mark.postgres
def test_the_header_timeline_and_export_name_the_journey_and_its_step():
    # given a customer who entered a post-purchase journey and got its first mail
    start = timezone.now()
    journey = live_journey(now=start, name="Thank you")
    customer = consented()
    PurchaseFactory(customer=customer, occurred_at=start)
    journeys_tick(now=start + timedelta(minutes=1))

    # when staff open the record
    panel = journeys_header_panel(customer, [customer.pk])
    timeline = delivery_timeline_entries([customer.pk])
    export = campaigns_export_sections([customer.pk])

    # then the open journey, the step that sent the mail and the whole enrolment are there
    assert [(line.label, line.value) for line in panel.lines] == [("Thank you", "step wait")]
    assert "journey “Thank you” (step welcome)" in timeline[0].title
    assert export["deliveries"][0]["sent_by"] == "journey “Thank you” (step welcome)"
    (enrolment,) = export["journeys"]
    assert (enrolment["journey"], enrolment["status"]) == ("Thank you", "active")
    assert [step["step"] for step in enrolment["steps"]] == ["welcome", "wait"]
    assert journey.pk
