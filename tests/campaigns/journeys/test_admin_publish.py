"""Publishing from the admin: the draft goes to the engine's journey_publish, with where removed steps' people go."""

import sys
import types

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Enrolment, Journey, JourneyVersion
from tests.factories import CustomerFactory, MarketingUserFactory
from tests.factories.campaigns import MessageFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)
    return user


@pytest.fixture
def engine(monkeypatch):
    """The engine's publish service, recorded (the engine is tested on its own)."""
    calls = []
    module = types.ModuleType("campaigns.journeys.services")

    def journey_publish(*, journey, steps, moves, user):
        calls.append({"journey": journey, "steps": steps, "moves": moves, "user": user})

    module.journey_publish = journey_publish
    monkeypatch.setitem(sys.modules, "campaigns.journeys.services", module)
    return calls


@pytest.fixture
def live_journey():
    message = MessageFactory(name="Hello")
    journey = Journey.objects.create(name="Live", trigger="consent_confirmed", status=Journey.Status.LIVE)
    live = JourneyVersion.objects.create(
        journey=journey,
        number=1,
        published_at=timezone.now(),
        steps=[
            {"key": "hello", "kind": "send", "message": message.pk, "next": "wait"},
            {"key": "wait", "kind": "wait", "hours": 48, "next": "again"},
            {"key": "again", "kind": "send", "message": message.pk},
        ],
    )
    journey.live_version = live
    journey.save()
    for _ in range(3):
        Enrolment.objects.create(
            journey=journey, version=live, customer=CustomerFactory(), step_key="wait", entered_at=timezone.now()
        )
    JourneyVersion.objects.create(
        journey=journey,
        number=2,
        steps=[{"key": "hello", "kind": "send", "message": message.pk, "next": "again"}, live.steps[2]],
    )
    return journey


def test_removed_step_with_people_asks_where_they_go_and_passes_the_moves(client, marketer, engine, live_journey):
    url = reverse("admin:campaigns_journey_publish", args=[live_journey.pk])

    page = client.get(url).content.decode()
    assert "3 waiting there go to" in page
    assert 'name="move-wait"' in page

    response = client.post(url, {"move-wait": "again"})

    assert response.status_code == 302
    (call,) = engine
    assert call["journey"] == live_journey
    assert call["moves"] == {"wait": "again"}
    assert [step["key"] for step in call["steps"]] == ["hello", "again"]
    assert call["user"] == marketer
    assert not JourneyVersion.objects.filter(journey=live_journey, published_at__isnull=True).exists()


def test_a_move_to_a_step_that_is_not_in_the_new_version_is_refused(client, marketer, engine, live_journey):
    url = reverse("admin:campaigns_journey_publish", args=[live_journey.pk])

    response = client.post(url, {"move-wait": "wait"})

    assert response.status_code == 200
    assert engine == []
    assert JourneyVersion.objects.filter(journey=live_journey, published_at__isnull=True).exists()


def test_the_engine_refusing_keeps_the_draft(client, marketer, monkeypatch, live_journey):
    from campaigns.exceptions import CampaignError

    module = types.ModuleType("campaigns.journeys.services")

    def journey_publish(**kwargs):
        raise CampaignError("Step 2 sends a message with no variant.")

    module.journey_publish = journey_publish
    monkeypatch.setitem(sys.modules, "campaigns.journeys.services", module)

    response = client.post(
        reverse("admin:campaigns_journey_publish", args=[live_journey.pk]), {"move-wait": "exit"}, follow=True
    )

    assert "Step 2 sends a message with no variant." in response.content.decode()
    assert JourneyVersion.objects.filter(journey=live_journey, published_at__isnull=True).exists()


def test_without_the_engine_publishing_says_so(client, marketer, monkeypatch, live_journey):
    monkeypatch.setitem(sys.modules, "campaigns.journeys.services", None)  # import fails

    response = client.post(reverse("admin:campaigns_journey_publish", args=[live_journey.pk]), {"move-wait": "exit"})

    assert "not available" in response.content.decode()
    assert JourneyVersion.objects.filter(journey=live_journey, published_at__isnull=True).exists()


def test_save_and_publish_goes_to_the_publish_page(client, marketer, live_journey):
    from tests.campaigns.posted_form import form_fields

    url = reverse("admin:campaigns_journey_change", args=[live_journey.pk])
    fields = form_fields(client.get(url).content.decode(), "journey-form")
    data = {name: values if len(values) > 1 else values[0] for name, values in fields.items()}

    response = client.post(url, {**data, "_publish": "Save and publish…"})

    assert response["Location"] == reverse("admin:campaigns_journey_publish", args=[live_journey.pk])


def test_saving_the_live_steps_unchanged_leaves_no_draft(client, marketer, live_journey):
    JourneyVersion.objects.filter(journey=live_journey, published_at__isnull=True).delete()
    from tests.campaigns.posted_form import form_fields

    url = reverse("admin:campaigns_journey_change", args=[live_journey.pk])
    fields = form_fields(client.get(url).content.decode(), "journey-form")
    data = {name: values if len(values) > 1 else values[0] for name, values in fields.items()}

    client.post(url, {**data, "_save": "Save"})

    assert not JourneyVersion.objects.filter(journey=live_journey, published_at__isnull=True).exists()
