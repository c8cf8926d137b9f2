import pytest

from campaigns.journeys.services import journey_publish
from campaigns.models import Journey
from customers.models import ConsentState
from tests.factories import CustomerFactory
from tests.factories.campaigns import EmailVariantFactory, MessageFactory


def granted(customer, *channels):
    for channel in channels:
        ConsentState.objects.create(customer=customer, channel=channel, status="granted")
    return customer


def consented(**kwargs):
    return granted(CustomerFactory(**kwargs), "email")


def email_message():
    message = MessageFactory()
    EmailVariantFactory(message=message)
    return message


def two_step_steps(message, *, wait_hours=48, second=None):
    second = second or email_message()
    return [
        {"key": "welcome", "kind": "send", "message": message.pk, "next": "wait"},
        {"key": "wait", "kind": "wait", "hours": wait_hours, "next": "offer"},
        {"key": "offer", "kind": "send", "message": second.pk},
    ]


def live_journey(*, steps=None, now=None, **fields):
    fields.setdefault("name", "Welcome")
    fields.setdefault("trigger", Journey.Trigger.PURCHASE)
    journey = Journey.objects.create(**fields)
    journey_publish(journey=journey, steps=steps or two_step_steps(email_message()), now=now)
    journey.refresh_from_db()
    return journey


@pytest.fixture(autouse=True)
def _send_policies(request):
    """Quiet hours and caps seeded by migrations would tie these tests to the hour they run at; tests
    of those policies opt in with ``send_policies``."""
    if request.node.get_closest_marker("send_policies") is not None:
        return
    if request.node.get_closest_marker("django_db") is None and not (
        {"db", "transactional_db"} & set(request.node.fixturenames)
    ):
        return
    request.getfixturevalue("_django_db_helper")
    from campaigns.models import FrequencyRule, QuietHoursRule

    QuietHoursRule.objects.all().delete()
    FrequencyRule.objects.all().delete()
