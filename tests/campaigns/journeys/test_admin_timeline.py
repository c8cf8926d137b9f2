"""A customer's 360° timeline shows their journeys and the steps they went through."""

import datetime as dt

import pytest
from django.urls import reverse

from campaigns.journeys.selectors_admin import journey_timeline_entries
from campaigns.models import Enrolment, Journey, JourneyStepRun, JourneyVersion
from tests.factories import CustomerFactory, MarketingUserFactory
from tests.factories.campaigns import MessageFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def enrolment():
    message = MessageFactory(name="Welcome <aboard>")
    journey = Journey.objects.create(name="Welcome series", trigger="consent_confirmed")
    version = JourneyVersion.objects.create(
        journey=journey,
        number=1,
        published_at=AT,
        steps=[
            {"key": "hello", "kind": "send", "message": message.pk, "next": "wait"},
            {"key": "wait", "kind": "wait", "hours": 48},
        ],
    )
    enrolment = Enrolment.objects.create(
        journey=journey, version=version, customer=CustomerFactory(), step_key="wait", entered_at=AT
    )
    JourneyStepRun.objects.create(
        enrolment=enrolment,
        step_key="hello",
        kind="send",
        version=version,
        outcome="sent",
        ran_at=AT + dt.timedelta(minutes=1),
    )
    return enrolment


def test_entries_for_the_enrolment_and_each_step_run(enrolment, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        entries = journey_timeline_entries([enrolment.customer_id])

    titles = [entry.title for entry in entries]
    assert "Entered journey “Welcome series”: next: 2. Wait 2 days" in titles
    assert "Journey “Welcome series”: 1. Send “Welcome <aboard>” — sent" in titles
    assert {entry.kind for entry in entries} == {"journey"}


def test_the_customer_page_shows_them_escaped(client, enrolment):
    user = MarketingUserFactory()
    user.is_superuser = True
    user.save()
    client.login(username=user.username, password=PASSWORD)

    page = client.get(reverse("admin:customers_customer_change", args=[enrolment.customer_id])).content.decode()

    assert "Entered journey “Welcome series”" in page
    assert "Welcome &lt;aboard&gt;" in page
    assert "Welcome <aboard>" not in page
