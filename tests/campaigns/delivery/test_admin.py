"""Marketing staff see every delivery and the demo outbox, read-only, with the message as sent."""

import pytest
from django.urls import reverse

from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.models import Delivery, OutboxMessage
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.factories import CustomerFactory, MarketingUserFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)
    return user


@pytest.fixture
def sent_campaign():
    granted(CustomerFactory(first_name="<script>alert(1)</script>", phone="+14155550199"), "email", "sms")
    campaign = sending_campaign()
    result = campaign_launch(campaign=campaign)
    delivery_chunk_send(
        cause_type="campaign", cause_id=campaign.pk, first_id=result.ranges[0][0], last_id=result.ranges[-1][1]
    )
    return campaign


def test_the_outbox_shows_the_rendered_email_escaped_and_sandboxed(marketer, client, sent_campaign):
    email = OutboxMessage.objects.get(channel="email")

    listing = client.get(reverse("admin:campaigns_outboxmessage_changelist"))
    page = client.get(reverse("admin:campaigns_outboxmessage_change", args=[email.pk]))

    assert listing.status_code == 200
    assert page.status_code == 200
    body = page.content.decode()
    assert '<iframe sandbox=""' in body
    assert "<script>alert(1)</script>" not in body
    assert 'name="subject"' not in body  # read-only: no form fields


def test_deliveries_are_listed_read_only(marketer, client, sent_campaign):
    listing = client.get(reverse("admin:campaigns_delivery_changelist"), {"status": "sent"})
    row = Delivery.objects.first()
    page = client.get(reverse("admin:campaigns_delivery_change", args=[row.pk]))

    assert listing.status_code == 200
    assert page.status_code == 200
    assert client.get(reverse("admin:campaigns_delivery_add")).status_code == 403
    delete_url = reverse("admin:campaigns_outboxmessage_delete", args=[OutboxMessage.objects.first().pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert OutboxMessage.objects.count() == 2
