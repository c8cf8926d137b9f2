"""Ready-made journeys: each template creates a valid draft with its messages, from the admin too."""

import pytest
from django.urls import reverse

from campaigns.journeys.steps_form import raw_from_step, step_forms_bound, steps_clean
from campaigns.journeys.templates_library import TEMPLATES, journey_from_template
from campaigns.models import Journey, JourneyVersion, Message
from campaigns.validation import variant_check
from tests.factories import MarketingUserFactory
from tests.factories.customers import PASSWORD
from tests.factories.loyalty import OfferFactory

pytestmark = pytest.mark.django_db


def test_there_are_the_six_journeys_retailers_start_with():
    assert set(TEMPLATES) == {"welcome", "birthday", "win-back", "points-expiring", "replenishment", "first-visit"}


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_each_template_creates_a_valid_draft_with_its_messages(key):
    user = MarketingUserFactory()
    offer = OfferFactory()

    journey = journey_from_template(key=key, actor=user, offer=offer)

    assert journey.status == Journey.Status.DRAFT
    assert journey.live_version_id is None
    draft = JourneyVersion.objects.get(journey=journey)
    assert draft.published_at is None
    # the steps pass the editor's own checks, as if the marketer had built them
    steps, problems = steps_clean(step_forms_bound([raw_from_step(step) for step in draft.steps]))
    assert problems == []
    assert steps == draft.steps
    message_ids = [step["message"] for step in draft.steps if step["kind"] == "send"]
    assert message_ids
    for message in Message.objects.filter(pk__in=message_ids):
        assert {variant.channel for variant in message.variants.all()} == {"email", "sms"}
        for variant in message.variants.all():
            variant_check(variant)  # raises on an unknown placeholder or a text missing STOP


def test_the_welcome_template_is_send_wait_two_days_send():
    journey = journey_from_template(key="welcome", actor=None)

    steps = JourneyVersion.objects.get(journey=journey).steps

    assert [step["kind"] for step in steps] == ["send", "wait", "send"]
    assert steps[1]["hours"] == 48
    assert journey.trigger == "consent_confirmed"


def test_the_birthday_template_gives_the_chosen_offer_before_the_message():
    offer = OfferFactory()

    journey = journey_from_template(key="birthday", actor=None, offer=offer)

    steps = JourneyVersion.objects.get(journey=journey).steps
    assert steps[0] == {"key": "gift", "kind": "coupon", "offer": offer.pk, "next": "birthday"}
    assert journey.trigger_params == {"field": "birthday", "time": "09:00"}


def test_the_replenishment_template_reminds_when_what_was_bought_runs_out():
    journey = journey_from_template(key="replenishment", actor=None)

    steps = JourneyVersion.objects.get(journey=journey).steps
    assert (journey.trigger, journey.trigger_params) == ("replenishment_due", {"time": "09:00"})
    assert journey.reentry == Journey.Reentry.EACH_TIME  # once per purchase and category, every cycle
    assert [step["kind"] for step in steps] == ["send"]


def test_new_from_template_in_the_admin(client):
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)
    listing = client.get(reverse("admin:campaigns_journey_changelist")).content.decode()
    assert reverse("admin:campaigns_journey_templates") in listing

    page = client.get(reverse("admin:campaigns_journey_templates")).content.decode()
    assert "Win-back after 90 days" in page
    response = client.post(reverse("admin:campaigns_journey_templates"), {"template": "win-back"})

    journey = Journey.objects.get()
    assert response["Location"] == reverse("admin:campaigns_journey_change", args=[journey.pk])
    assert journey.name == "Win-back after 90 days"
    assert journey.exit_rules == ["purchase", "consent_withdrawn"]


def test_the_demo_loads_the_welcome_and_birthday_journeys_once():
    import io

    from django.core.management import call_command

    out = io.StringIO()
    for command in ("demo_seed", "loyalty_demo_seed", "campaigns_demo_seed"):
        call_command(command, stdout=out)
    journeys = {journey.name: journey for journey in Journey.objects.all()}
    assert set(journeys) == {"Welcome series", "Birthday gift"}
    for journey in journeys.values():  # live once the engine publishes them, else a draft to publish
        assert journey.live_version_id or JourneyVersion.objects.filter(journey=journey).exists()
    birthday = JourneyVersion.objects.filter(journey=journeys["Birthday gift"]).order_by("-number").first()
    assert birthday.steps[0]["kind"] == "coupon"
    messages = Message.objects.count()

    call_command("campaigns_demo_seed", stdout=out)

    assert Journey.objects.count() == 2
    assert Message.objects.count() == messages
    assert "journey 'Welcome series'" in out.getvalue()
