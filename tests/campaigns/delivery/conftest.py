from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign
from customers.models import ConsentState, Suppression
from customers.normalization import address_hmac
from tests.factories import CustomerFactory
from tests.factories.campaigns import CampaignFactory, EmailVariantFactory, SegmentFactory, SmsVariantFactory

ROOT = Path(__file__).resolve().parents[3]


def process_database_url() -> str:
    """The test database's URL, for worker and other processes started by a test."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def granted(customer, *channels):
    for channel in channels:
        ConsentState.objects.create(customer=customer, channel=channel, status="granted")
    return customer


def suppress(customer, channel="email"):
    address = customer.email if channel == "email" else customer.phone
    Suppression.objects.create(channel=channel, address_hmac=address_hmac(channel, address), reason="manual")


def sending_campaign(channels="email,sms", mode=Campaign.Mode.ALL, **kwargs):
    """A complete campaign (default email and SMS variants) to everyone, already due."""
    campaign = CampaignFactory(channels=channels, mode=mode, include=[SegmentFactory()], **kwargs)
    EmailVariantFactory(message=campaign.message)
    SmsVariantFactory(message=campaign.message)
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SCHEDULED, scheduled_at=timezone.now() - timedelta(seconds=1)
    )
    campaign.refresh_from_db()
    return campaign


@pytest.fixture
def audience():
    """Four customers: email only, email + SMS, no consent, suppressed email."""
    return {
        "email_only": granted(CustomerFactory(first_name="Ann"), "email"),
        "both": granted(CustomerFactory(first_name="Bob", phone="+14155550101"), "email", "sms"),
        "none": CustomerFactory(first_name="Cat", phone="+14155550102"),
        "suppressed": granted(CustomerFactory(first_name="Dan"), "email"),
    }


@pytest.fixture(autouse=True)
def _send_policies(request):
    """Quiet hours and frequency caps (seeded by migrations) would make these tests depend on the hour
    they run at and on each other; tests of the engine's policies opt in with ``send_policies``."""
    if request.node.get_closest_marker("send_policies") is not None:
        return
    uses_db = {"db", "transactional_db"} & set(request.node.fixturenames)  # asked by the test itself
    if not uses_db and request.node.get_closest_marker("django_db") is None:
        return
    request.getfixturevalue("_django_db_helper")  # the database as the test asked for it
    from campaigns.models import FrequencyRule, QuietHoursRule

    QuietHoursRule.objects.all().delete()
    FrequencyRule.objects.all().delete()


@pytest.fixture(autouse=True)
def _suppressed(request):
    if "audience" in request.fixturenames:
        suppress(request.getfixturevalue("audience")["suppressed"])
